"""genjax.explain.cam against pytorch-grad-cam on torchvision's ResNet-18 (scripts/bench_explain.py
is its command line, and its docstring says what is measured and how the maps are defined).

Each side runs in its own process and talks to the others through files in a shared folder `tmp`:
run_weights writes the torch weights and the inputs, run_genjax and run_pytorch time their maps and
write them, agreement compares them. torch, torchvision, pytorch_grad_cam and cv2 are imported inside
the functions that need them (pip install -e .[bench]), so importing this module needs none of them.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from genjax.bench import map_pearson

LAYER = "layer4.1"
METHODS = ("gradcam", "gradcam++", "scorecam")
SIZE = 224
SIDES = ("weights", "genjax", "pytorch")
_TORCHVISION_OPS = None  # keeps the op schemas defined by import_torchvision alive


def import_torchvision():
  """torchvision, also beside a CPU build of torch (torch==2.13.0+cpu).

  PyPI's torchvision wheels are CUDA builds: beside a CPU torch their C++ ops fail to load, and
  `import torchvision` then stops with "operator torchvision::nms does not exist" (it registers fake
  kernels for nms and qnms without checking that the ops loaded). Defining those two schemas first
  lets the pure-Python part import (models, transforms: all that pytorch-grad-cam and this module
  use); torchvision.ops then raise. Raises ImportError where torchvision is not installed.
  """
  global _TORCHVISION_OPS
  import torch

  try:
    import torchvision
  except RuntimeError as e:
    if "torchvision::nms" not in str(e):
      raise
    for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
      del sys.modules[name]
    _TORCHVISION_OPS = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
      _TORCHVISION_OPS.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision
  return torchvision


def torch_resnet18(seed: int = 0):
  """torchvision's resnet18 (random init from torch.manual_seed(seed)) with random batch norm
  weights and statistics, in eval mode."""
  import torch

  torch.manual_seed(seed)
  model = import_torchvision().models.resnet18()
  g = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5, generator=g)
        m.bias.normal_(0.0, 0.1, generator=g)
        m.running_mean.normal_(0.0, 0.1, generator=g)
        m.running_var.uniform_(0.5, 1.5, generator=g)
  return model.eval()


def use_threads(n: int) -> None:
  """Keeps this process on its first n allowed cores (CPU affinity, which XLA's pool follows)."""
  os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])


def timed(call, warm, repeats: int) -> tuple[np.ndarray, dict]:
  """warm() once (timed as first_call_s), then call() `repeats` times: the last call's maps and
  the seconds per call (median), every call's seconds and the warm-up's."""
  t0 = time.perf_counter()
  warm()
  first = time.perf_counter() - t0
  runs = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    maps = call()
    runs.append(time.perf_counter() - t0)
  return maps, {"s_per_call": statistics.median(runs), "runs_s": runs, "first_call_s": first}


def sizes(methods, batch: int, scorecam_batch: int) -> dict[str, int]:
  """Images per method: scorecam_batch for Score-CAM, batch for the others."""
  return {m: (scorecam_batch if m == "scorecam" else batch) for m in methods}


def run_weights(tmp: Path, images: int) -> dict:
  """torch_resnet18()'s weights (tmp/weights.npz) and `images` inputs x ~ N(0, 1) with the class
  torchvision's model predicts for each and its logits (tmp/inputs.npz)."""
  import torch

  model = torch_resnet18()
  x = np.random.default_rng(0).normal(size=(images, SIZE, SIZE, 3)).astype(np.float32)
  with torch.no_grad():
    logits = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  np.savez(tmp / "weights.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
  np.savez(tmp / "inputs.npz", x=x, targets=logits.argmax(-1), logits=logits)
  return {"images": images, "distinct_targets": int(len(set(logits.argmax(-1).tolist())))}


def run_pytorch(tmp: Path, sizes: dict[str, int], *, threads: int, repeats: int,
                scorecam_repeats: int, scorecam_chunk: int) -> dict:  # fmt: skip
  """pytorch-grad-cam's maps of sizes[m] images per method m, timed (tmp/pytorch.npz)."""
  os.environ["TQDM_DISABLE"] = "1"  # ScoreCAM's progress bars
  import torch

  torch.set_num_threads(threads)
  import_torchvision()
  from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
  from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

  model = torch_resnet18()
  inp = np.load(tmp / "inputs.npz")
  xt = torch.from_numpy(inp["x"].transpose(0, 3, 1, 2).copy())
  classes = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}
  res, maps = {"threads": torch.get_num_threads(), "torch": torch.__version__}, {}
  for m, n in sizes.items():
    cam = classes[m](model=model, target_layers=[model.layer4[-1]])
    cam.batch_size = scorecam_chunk  # masked passes per forward (Score-CAM only)
    targets = [ClassifierOutputTarget(int(c)) for c in inp["targets"][:n]]
    call = lambda n=n, cam=cam, targets=targets: cam(input_tensor=xt[:n], targets=targets[:n])
    warm = (lambda call=call: call(1)) if m == "scorecam" else call
    maps[m], res[m] = timed(call, warm, scorecam_repeats if m == "scorecam" else repeats)
    cam.activations_and_grads.release()  # its hooks would fire in the next method's passes
    res[m]["maps_per_s"] = n / res[m]["s_per_call"]
    res[m]["images"] = n
  np.savez(tmp / "pytorch.npz", **maps)
  return res


def align_corners(n_out: int, n_in: int) -> np.ndarray:
  """[n_out, n_in] bilinear interpolation matrix with align_corners=True (torch's)."""
  pos = np.arange(n_out) * (n_in - 1) / max(n_out - 1, 1)
  lo = np.minimum(np.floor(pos).astype(int), max(n_in - 2, 0))
  frac = pos - lo
  r = np.zeros((n_out, n_in), np.float32)
  r[np.arange(n_out), lo] += 1 - frac
  r[np.arange(n_out), np.minimum(lo + 1, n_in - 1)] += frac
  return r


def reference(model, x, targets, n_score: int, chunk: int) -> dict:
  """genjax's intermediates for pytorch-grad-cam's formulas: A [B, h, w, C], g = dS_c/dA and, for
  the first n_score images, Score-CAM's channel weights [n, C] as pytorch-grad-cam defines them."""
  import jax
  import jax.numpy as jnp
  from flax import nnx

  graphdef, state = nnx.split(model)

  @jax.jit
  def a_and_g(state, x, c):
    m = nnx.merge(graphdef, state)
    a = m.features(x)
    g = jax.grad(lambda a: m.fc(a.mean((1, 2)))[jnp.arange(len(c)), c].sum())(a)
    return a, g

  @jax.jit
  def scorecam_weights(state, x1, a1, c1):  # x1 [H, W, 3], a1 [h, w, C]: one image
    m = nnx.merge(graphdef, state)
    ry, rx = (jnp.asarray(align_corners(SIZE, k)) for k in a1.shape[:2])
    up = jnp.einsum("Hh,hwc,Ww->cHW", ry, a1, rx)
    lo, hi = up.min((1, 2), keepdims=True), up.max((1, 2), keepdims=True)
    up = (up - lo) / (hi - lo + 1e-8)
    s = jax.lax.map(lambda h: m(x1[None] * h[None, ..., None])[0, c1], up, batch_size=chunk)
    return jax.nn.softmax(s)

  a, g = a_and_g(state, x, targets)
  out = {"A": np.asarray(a), "g": np.asarray(g)}
  if n_score:
    out["scorecam_w"] = np.stack([
      np.asarray(scorecam_weights(state, x[i], a[i], targets[i])) for i in range(n_score)])  # fmt: skip
  return out


def run_genjax(tmp: Path, sizes: dict[str, int], *, repeats: int, scorecam_repeats: int,
               scorecam_chunk: int, scorecam_ref: int) -> dict:  # fmt: skip
  """genjax's maps of sizes[m] images per method m, timed, with the reference intermediates
  (reference(); Score-CAM's for the first scorecam_ref images) under "ref/" (tmp/genjax.npz)."""
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from genjax.explain import cam
  from genjax.models import resnet

  model = resnet.ResNet18(rngs=nnx.Rngs(0))
  resnet.load_torchvision(model, dict(np.load(tmp / "weights.npz")))
  model.eval()
  inp = np.load(tmp / "inputs.npz")
  res, maps = {"threads": len(os.sched_getaffinity(0)), "jax": jax.__version__}, {}
  for m, n in sizes.items():
    x, c = jnp.asarray(inp["x"][:n]), jnp.asarray(inp["targets"][:n])

    last = {}

    def call(m=m, x=x, c=c, last=last):
      last["out"] = cam.explain(model, x, layers=(LAYER,), targets=c, methods=(m,), score="logit",
                                scorecam_weights="softmax", batch_size=scorecam_chunk)  # fmt: skip
      return np.asarray(last["out"][m][LAYER]["map"][:, 0])

    maps[m], res[m] = timed(call, call, scorecam_repeats if m == "scorecam" else repeats)
    res[m]["maps_per_s"] = n / res[m]["s_per_call"]
    res[m]["images"] = n
    res[m]["max_abs_logit_diff"] = float(np.abs(np.asarray(last["out"]["output"]) - inp["logits"][:n]).max())  # fmt: skip
  n = max(sizes.values())
  ref = reference(model, jnp.asarray(inp["x"][:n]), jnp.asarray(inp["targets"][:n]),
                  min(scorecam_ref, n) if "scorecam" in sizes else 0, scorecam_chunk)  # fmt: skip
  np.savez(tmp / "genjax.npz", **maps, **{f"ref/{k}": v for k, v in ref.items()})
  return res


def pgc_map(a: np.ndarray, w: np.ndarray) -> np.ndarray:
  """pytorch-grad-cam's map from A [B, h, w, C] and weights [B, C]: relu, (M - min) / (max + 1e-7),
  cv2.resize to 224, relu, and the same scaling again -> [B, 224, 224]."""
  import cv2

  def scale(m):
    m = m - m.min()
    return m / (1e-7 + m.max())

  cam = np.maximum(np.einsum("bhwc,bc->bhw", a, w), 0)
  up = np.maximum(np.float32([cv2.resize(np.float32(scale(m)), (SIZE, SIZE)) for m in cam]), 0)
  return np.float32([scale(m) for m in up])


def pgc_weights(method: str, a: np.ndarray, g: np.ndarray) -> np.ndarray:
  """pytorch-grad-cam's Grad-CAM and Grad-CAM++ channel weights [B, C] from A, g [B, h, w, C]."""
  if method == "gradcam":
    return g.mean((1, 2))
  g2 = g**2
  alpha = g2 / (2 * g2 + a.sum((1, 2), keepdims=True) * g2 * g + 1e-6)
  return (np.maximum(g, 0) * np.where(g != 0, alpha, 0)).sum((1, 2))


def agreement(methods, tmp: Path) -> dict:
  """Per method: Pearson r of genjax's maps against pytorch-grad-cam's (r_genjax) and of
  pytorch-grad-cam's formulas on genjax's intermediates against them (r_ref, max_abs_diff_ref)."""
  g, t = np.load(tmp / "genjax.npz"), np.load(tmp / "pytorch.npz")
  a, grad = g["ref/A"], g["ref/g"]
  res = {}
  for m in methods:
    r, n = map_pearson(g[m], t[m])
    row = {"r_genjax": r, "images_r": n, "images": len(t[m])}
    if m == "scorecam":
      k = len(g["ref/scorecam_w"]) if "ref/scorecam_w" in g else 0
      ref = pgc_map(a[:k], g["ref/scorecam_w"]) if k else None
    else:
      k, ref = len(t[m]), pgc_map(a[: len(t[m])], pgc_weights(m, a[: len(t[m])], grad[: len(t[m])]))
    if k:
      row |= dict(zip(("r_ref", "images_ref"), map_pearson(ref, t[m][:k]), strict=True))
      row["max_abs_diff_ref"] = float(np.abs(ref - t[m][:k]).max())
    res[m] = row
  return res


def compare_sides(script: str, flags: list[str], methods) -> dict:
  """Runs `script` once per side in SIDES (`script` *flags --which SIDE --tmp DIR prints one line
  "RESULT <json>"), in that order and in a shared temporary folder, then agreement(); each side's
  result with its wall_s, and "agreement". Exits with the side's stderr when one fails."""
  res = {}
  with tempfile.TemporaryDirectory() as tmp:
    for which in SIDES:
      t0 = time.perf_counter()
      proc = subprocess.run([sys.executable, script, *flags, "--which", which, "--tmp", tmp],
                            capture_output=True, text=True)  # fmt: skip
      line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT ")]
      if proc.returncode or not line:
        sys.exit(f"{which} failed:\n{proc.stderr[-3000:]}")
      res[which] = json.loads(line[0][7:]) | {"wall_s": time.perf_counter() - t0}
    res["agreement"] = agreement(methods, Path(tmp))
  return res


def print_table(res: dict, methods) -> None:
  """compare_sides()'s result as a table: maps/s of each side, their ratio and the agreement per method,
  then each method's seconds per call, map counts and largest differences, and each side's wall."""
  gj, pt, ag = res["genjax"], res["pytorch"], res["agreement"]
  print(f"ResNet-18, layer {LAYER}, 224x224, one target per image (torchvision's predicted class, "
        f"{res['weights']['distinct_targets']} distinct); threads: genjax {gj['threads']}, "
        f"pytorch {pt['threads']} (torch {pt['torch']}, jax {gj['jax']})")  # fmt: skip
  print(f"{'method':11s} {'images':>6s} {'genjax maps/s':>14s} {'pgc maps/s':>11s} {'ratio':>7s} "
        f"{'r(genjax)':>10s} {'r(ref)':>9s}")  # fmt: skip
  for m in methods:
    r_ref = f"{ag[m]['r_ref']:.6f}" if "r_ref" in ag[m] else "-"
    print(f"{m:11s} {gj[m]['images']:6d} {gj[m]['maps_per_s']:14.3f} {pt[m]['maps_per_s']:11.3f} "
          f"{gj[m]['maps_per_s'] / pt[m]['maps_per_s']:6.2f}x {ag[m]['r_genjax']:10.6f} {r_ref:>9s}")  # fmt: skip
  for m in methods:
    extra = f"; ref on {ag[m]['images_ref']} images, max |ref - pgc| {ag[m]['max_abs_diff_ref']:.1e}" if "r_ref" in ag[m] else ""  # fmt: skip
    print(f"  {m}: s/call genjax {gj[m]['s_per_call']:.2f} (first {gj[m]['first_call_s']:.1f}), "
          f"pgc {pt[m]['s_per_call']:.2f} (warm-up {pt[m]['first_call_s']:.1f}); r over "
          f"{ag[m]['images_r']}/{ag[m]['images']} maps{extra}; max |logit diff| "
          f"{gj[m]['max_abs_logit_diff']:.1e}")  # fmt: skip
  print(f"wall: genjax {gj['wall_s']:.0f} s, pytorch {pt['wall_s']:.0f} s")
