"""Benchmark plumbing shared by scripts/bench_*.py: timing loops, sides in their own processes
run alternately, device splitting, the printed ratios, and genjax weights copied into PyTorch.

The peers and checks the scripts run live beside it, each script being their command line:
torch_peers (the PyTorch twins of the autoencoder, DCGAN, VAE and face-swap (a) / (c) models and
their training steps; bench_autoencoder, bench_gan, bench_vae, bench_faceswap), cam_pytorch
(pytorch-grad-cam on a ResNet-18; bench_explain), cam_keras (tf-keras-vis; bench_cam), device (the
GPU-machine check; device_check) and install (per-platform pip resolution; check_install).

A benchmark side is a command that prints one line "RESULT <json>" with at least "images_per_s";
run_sides runs every side `repeats` times, alternating, so a change in the machine's load hits all
sides alike, and keeps each side's median run.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np


def timeit(step, seconds: float, batch: int) -> dict:
  """Times step() (after one first call, timed apart as compilation, and 3 warm-up calls) for at
  least `seconds` and 10 calls; images/s for `batch` images per call, ms per step, peak RSS."""
  t0 = time.perf_counter()
  step()  # first call: compilation (jax) or allocator warm-up (torch)
  compile_s = time.perf_counter() - t0
  for _ in range(3):
    step()
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds or n < 10:
    step()
    n += 1
  dt = time.perf_counter() - t0
  peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return {"images_per_s": n * batch / dt, "ms_per_step": 1e3 * dt / n, "first_step_s": compile_s,
          "peak_rss_mb": peak_mb, "steps": n}  # fmt: skip


def torch_timeit(step, seconds: float, batch: int, **extra) -> dict:
  """timeit of a PyTorch side's step(), with `extra` (e.g. its largest difference from genjax) and
  torch's thread count added to the result."""
  import torch

  return timeit(step, seconds, batch) | extra | {"threads": torch.get_num_threads()}


def alternating_ms(fns: dict, args: tuple, repeats: int) -> dict[str, list[float]]:
  """In-process timing: calls each (compiled) function once per round, alternating, `repeats`
  rounds; the milliseconds of every call per function (jax results are waited for)."""
  import jax

  times: dict[str, list[float]] = {k: [] for k in fns}
  for _ in range(repeats):
    for k, f in fns.items():
      t = time.perf_counter()
      jax.block_until_ready(f(*args))
      times[k].append(1e3 * (time.perf_counter() - t))
  return times


def run_child(cmd: list[str], label: str) -> dict | None:
  """Runs one side of a benchmark in its own process (`cmd` prints "RESULT <json>"); returns the
  parsed result, or prints the child's error under `label` and returns None."""
  out = subprocess.run(cmd, capture_output=True, text=True)
  line = [s for s in out.stdout.splitlines() if s.startswith("RESULT ")]
  if out.returncode or not line:
    print(f"{label}: failed\n{out.stderr[-3000:]}")
    return None
  return json.loads(line[0][7:])


def run_sides(cmds: dict[str, list[str]], repeats: int = 1, label: str = "") -> dict[str, dict]:
  """Runs every side `repeats` times, alternating (a, b, a, b, ...) so that a change in the machine's
  load hits all sides alike; each side's row is its median run by images/s, with every run's
  images/s under "runs"."""
  runs: dict[str, list[dict]] = {name: [] for name in cmds}
  for _ in range(repeats):
    for name, cmd in cmds.items():
      r = run_child(cmd, f"{label}{name}")
      if r is not None:
        runs[name].append(r)
  rows = {}
  for name, rs in runs.items():
    if rs:
      median = sorted(rs, key=lambda r: r["images_per_s"])[(len(rs) - 1) // 2]
      rows[name] = median | {"runs": [round(r["images_per_s"], 1) for r in rs]}  # in run order
  return rows


def host_devices(n: int) -> None:
  """Splits the CPU into n XLA devices; call before jax is imported. A mesh over them splits each
  batch n ways (data parallel, as on n accelerators: gradients are averaged over the whole batch).
  Small models, whose many small ops XLA:CPU does not spread over the cores by itself, train faster
  this way; experiments do the same when started with this XLA flag (their meshes take every device)."""
  if n > 1:
    if "jax" in sys.modules:
      raise RuntimeError("host_devices() must run before jax is imported.")
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def genjax_sides(devices: str, cmd: list[str]) -> dict[str, list[str]]:
  """--devices "1,2" -> {"genjax": cmd + ["--devices", "1"], "genjax-2dev": cmd + [..., "2"]}."""
  counts = [int(d) for d in devices.split(",")]
  if not counts or min(counts) < 1:
    raise SystemExit(f"--devices: positive device counts, comma-separated; got {devices!r}")
  name = lambda n: "genjax" if n == 1 else f"genjax-{n}dev"
  return {name(n): [*cmd, "--devices", str(n)] for n in counts}


def print_runs(rows: dict[str, dict], reference: str = "pytorch") -> None:
  """With --repeats > 1: every run's images/s per side (the table shows the median run), and each
  side's runs against the `reference` side's run of the same round."""
  for name, r in rows.items():
    if len(r["runs"]) > 1:
      print(f"  {name} images/s over {len(r['runs'])} alternating runs: {r['runs']}")
  ref = rows.get(reference)
  for name, r in rows.items():
    if ref is None or name == reference or not len(r["runs"]) == len(ref["runs"]) > 1:
      continue
    # Each run against the reference run of the same round: robust to the machine's speed
    # drifting between runs (shared hosts), which the ratio of the two medians is not.
    pairs = [a / b for a, b in zip(r["runs"], ref["runs"], strict=True)]
    print(f"  {name} / {reference} per alternating round: {[round(p, 2) for p in pairs]}, "
          f"median {float(np.median(pairs)):.2f}x")  # fmt: skip


def print_ratios(rows: dict[str, dict], label: str = "", reference: str = "pytorch") -> None:
  """One line per side: the ratio of its median run's images/s to the `reference` side's."""
  if reference in rows:
    for name in [n for n in rows if n != reference]:
      ratio = rows[name]["images_per_s"] / rows[reference]["images_per_s"]
      print(f"ratio {name} / {reference}{label}: {ratio:.2f}x")


def arguments(doc: str, *, batch: int, seconds: float = 20.0, devices: str = "1",
              sides: tuple[str, ...] = ("genjax", "pytorch"), models: str | None = None,
              models_help: str = "comma-separated") -> argparse.ArgumentParser:  # fmt: skip
  """The command line every training-step benchmark shares: --batch, --seconds, --repeats,
  --devices (genjax sides: XLA CPU devices the batch is split over), --model when `models` is
  given (its default), and the hidden --only SIDE with which compare() starts one side."""
  p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
  if models is not None:
    p.add_argument("--model", default=models, help=models_help)
  p.add_argument("--batch", type=int, default=batch)
  p.add_argument("--seconds", type=float, default=seconds)
  p.add_argument("--repeats", type=int, default=1, help="alternating runs per side; median kept")
  p.add_argument("--devices", default=devices, help="genjax sides: XLA CPU devices the batch is split over")  # fmt: skip
  p.add_argument("--only", choices=sides, help=argparse.SUPPRESS)
  return p


def side(args, run: Callable[[], dict]) -> None:
  """In a side's own process (--only): the XLA devices first, then run() and its RESULT line."""
  host_devices(int(args.devices))
  print("RESULT " + json.dumps(run()))


def compare(args, script: str, title: str, *, extra: tuple[str, ...] = (), label: str = "",
            others: tuple[str, ...] = ("pytorch",),
            note: Callable[[dict], str] | None = None) -> dict[str, dict]:  # fmt: skip
  """Runs `script`'s sides in their own processes, alternating --repeats times: one genjax side per
  --devices count, then `others` on one device; `extra` arguments go to every side. Prints the
  table (images/s, ms per step, first step, peak RSS of each side's median run), every run, note(rows)
  when the reference side ran, and the ratios; returns the rows."""
  cmd = lambda name: [sys.executable, script, "--only", name, "--batch", str(args.batch),
                      "--seconds", str(args.seconds), *extra]  # fmt: skip
  cmds = genjax_sides(args.devices, cmd("genjax"))
  cmds |= {name: [*cmd(name), "--devices", "1"] for name in others}
  rows = run_sides(cmds, args.repeats, f"{label} " if label else "")
  print(f"\n{title}")
  print(f"{'':14s} {'images/s':>10s} {'ms/step':>9s} {'1st step s':>10s} {'peak RSS MB':>11s}")
  for name, r in rows.items():
    print(f"{name:14s} {r['images_per_s']:10.1f} {r['ms_per_step']:9.2f} "
          f"{r['first_step_s']:10.2f} {r['peak_rss_mb']:11.0f}")  # fmt: skip
  print_runs(rows)
  if note is not None and "pytorch" in rows:
    print(note(rows))
  print_ratios(rows, f" ({label})" if label else "")
  return rows


def map_pearson(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
  """Mean over maps of the Pearson r between maps a and b ([..., H, W], the leading axes matched
  pairwise), over the pairs where neither map is constant, in float64; and that count."""
  a = np.asarray(a, np.float64).reshape(-1, a.shape[-2] * a.shape[-1])
  b = np.asarray(b, np.float64).reshape(-1, b.shape[-2] * b.shape[-1])
  keep = (a.std(-1) > 0) & (b.std(-1) > 0)
  a, b = a[keep], b[keep]
  a = (a - a.mean(-1, keepdims=True)) / a.std(-1, keepdims=True)
  b = (b - b.mean(-1, keepdims=True)) / b.std(-1, keepdims=True)
  return float((a * b).mean(-1).mean()) if keep.any() else float("nan"), int(keep.sum())


# --- genjax weights into a PyTorch peer (NHWC / HWIO / [in, out] -> NCHW / OIHW / [out, in]) -----


def to_torch(a):
  """A contiguous float32 torch tensor holding the array's values."""
  import torch

  return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def _copy(dst, weight, bias) -> None:
  import torch

  with torch.no_grad():
    dst.weight.copy_(to_torch(weight))
    dst.bias.copy_(to_torch(bias))


def copy_conv(dst, src) -> None:
  """An nnx / genjax convolution (kernel [kh, kw, in, out]) into torch's Conv2d ([out, in, kh, kw])."""
  _copy(dst, np.asarray(src.kernel[...]).transpose(3, 2, 0, 1), src.bias[...])


def copy_up(dst, src) -> None:
  """A transposed convolution (kernel [kh, kw, in, out]) into torch's ConvTranspose2d ([in, out,
  kh, kw])."""
  _copy(dst, np.asarray(src.kernel[...]).transpose(2, 3, 0, 1), src.bias[...])


def copy_norm(dst, src) -> None:
  """A normalization's scale and bias into torch's weight and bias."""
  _copy(dst, src.scale[...], src.bias[...])


def copy_linear(dst, src, *, rows: tuple[int, int, int] | None = None,
                cols: tuple[int, int, int] | None = None) -> None:  # fmt: skip
  """nnx.Linear ([in, out]) into torch's Linear ([out, in]). rows=(h, w, c): its input is a feature
  map flattened in genjax's (h, w, c) order, which torch flattens as (c, h, w); cols=(h, w, c): its
  output is reshaped to such a map (columns and bias reordered the same way)."""
  k, b = np.asarray(src.kernel[...]), np.asarray(src.bias[...])
  if rows is not None:
    k = k.reshape(*rows, -1).transpose(2, 0, 1, 3).reshape(-1, k.shape[-1])
  if cols is not None:
    k = k.reshape(k.shape[0], *cols).transpose(0, 3, 1, 2).reshape(k.shape[0], -1)
    b = b.reshape(cols).transpose(2, 0, 1).ravel()
  _copy(dst, k.T, b)
