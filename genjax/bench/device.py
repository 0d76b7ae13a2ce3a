"""One run on a GPU machine: jax on the GPU, the tests, every benchmark in both kernel forms, one epoch.

  python scripts/device_check.py [--data-dir runs/device_data] [--wheels runs/wheels]
      [--only bench,epoch,tests] [--benches conv,gan] [--time-limit 540] [--out FILE.md] [--dry-run]

On the GPU machine (one H200), with the data and wheels made here and carried along:
  python3 scripts/device_check.py --data-dir runs/device_data --wheels runs/wheels

Steps, in this order, each in its own process with its own timeout; a step that fails or times out
is a row of the table and the next step still runs (those not started when --time-limit runs out
are "skipped"):
  setup   jax's backend, in a child process (this one never imports jax, so a new child is all a
          new backend needs). Where it is not "gpu" but nvidia-smi exists: pip install
          "jax[cuda12]==<installed jax>" (from --wheels with --no-index, else from the registry),
          then the backend again.
  bench   every scripts/bench_*.py with short settings, once with GENJAX_KERNELS=cpu and once with
          =xla (genjax/kernels.py); where PyTorch, tf-keras-vis or pytorch-grad-cam are missing,
          the JAX side alone (bench_cam, bench_explain) or the sides that ran (the others). On the
          GPU, JAX_PLATFORMS=cuda; the PyTorch sides stay on the CPU except bench_faceswap's.
  epoch   one epoch (468 steps of 128) of experiments/cam/configs/classifier.py:ae, timed
          (GENJAX_KERNELS unset: "auto", the xla form on the GPU; --epoch-forms for others).
  tests   python -m pytest -q -n N, on the suite's own 8 CPU devices (tests/conftest.py).
At the end a markdown table (check, kernels, status, result, seconds) is printed and written to
--out (default $OUT/device_check.md where OUT is set, else runs/device_check.md), with the rows as
JSON and every command's output (.log) beside it.

Assumed: the project's dependencies are installed (pip install -e .[dev]); those missing are
installed from --wheels (pip install --no-index --find-links DIR). TensorFlow is not needed when
--data-dir holds the prepared arrays.

Data (the machine has no internet and no ../shared): a folder inside the repo that git ignores,
carried with the command, e.g. runs/device_data, made here once with
  python scripts/device_check.py --prepare-data runs/device_data
It holds tfds/genjax_arrays/fashion_mnist/{train,test}.npz (uint8, compressed, about 30 MB),
which genjax.data.tfds reads without TensorFlow; a fashion_mnist/ folder of the four official
files may sit beside it (then TensorFlow prepares them). --data-dir sets GENJAX_TFDS_DIR=DIR/tfds
and, where DIR/fashion_mnist exists, GENJAX_DATA_DIR=DIR.
"""

import ast
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: the steps run there
FORMS = ("cpu", "xla")
CHECKS = ("bench", "epoch", "tests")  # in the order they run
EPOCH_CONFIG = "experiments/cam/configs/classifier.py:ae"
# import name -> distribution, for the dependencies the steps import
DEPS = {"jax": "jax", "flax": "flax", "optax": "optax", "chex": "chex",
        "orbax.checkpoint": "orbax-checkpoint", "ml_collections": "ml-collections",
        "absl": "absl-py", "numpy": "numpy", "matplotlib": "matplotlib", "tqdm": "tqdm",
        "tensorboard": "tensorboard", "pytest": "pytest", "xdist": "pytest-xdist"}  # fmt: skip
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64")  # fmt: skip


class StepFailed(Exception):
  """A step ran but its output shows that it did not do its work; the message says why."""


@dataclasses.dataclass
class Step:
  """One check: commands run in order under one timeout; parse(stdout) -> the figure to report."""

  check: str
  form: str
  cmds: list[list[str]]
  parse: Callable[[str], str]
  timeout: float
  env: dict[str, str] = dataclasses.field(default_factory=dict)  # on top of os.environ
  skip: str = ""  # a reason not to run: recorded as "skipped"
  mkdir: Path | None = None  # created before the commands run


@dataclasses.dataclass
class Options:
  """What to run, as scripts/device_check.py's flags give it (the defaults are the flags')."""

  only: tuple[str, ...] | list[str] = CHECKS  # of CHECKS
  benches: str = ""  # comma-separated bench_*.py names without the prefix; "" for all
  forms: str = ",".join(FORMS)  # GENJAX_KERNELS values for the benchmarks, comma-separated
  epoch_forms: str = "auto"  # GENJAX_KERNELS values for the epoch, comma-separated
  epoch_steps: int = 0  # steps instead of one epoch (a trial)
  data_dir: Path | None = None
  wheels: Path | None = None  # folder of wheels for pip --no-index --find-links
  seconds: float = 2.0  # timed seconds per benchmark side
  tests_timeout: float = 180.0
  bench_timeout: float = 90.0  # per benchmark and form
  epoch_timeout: float = 180.0
  time_limit: float = 540.0  # seconds for all steps (0: none)
  out: Path | None = None  # the markdown table; .json and .log beside it
  dry_run: bool = False  # print the commands, run nothing


@dataclasses.dataclass
class Row:
  check: str
  form: str
  status: str  # ok | failed | timeout | skipped
  result: str
  seconds: float


def have(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):
    return False


def download_command(python: str = f"{sys.version_info[0]}.{sys.version_info[1]}") -> str:
  """The pip download that fetches CUDA jax (at this jax's version) and ml-collections as wheels."""
  try:
    version = importlib.metadata.version("jax")
  except importlib.metadata.PackageNotFoundError:
    version = "<jax version>"
  plats = " ".join(f"--platform {p}" for p in PLATFORMS)
  return (f"python -m pip download -d runs/wheels --only-binary=:all: --implementation cp "
          f"--python-version {python} {plats} 'jax[cuda12]=={version}' ml-collections")  # fmt: skip


# --- running steps --------------------------------------------------------------------------------


def _call(cmd: list[str], env: dict, timeout: float) -> tuple[int, str, str, bool]:
  """(returncode, stdout, stderr, timed_out); on timeout the command's whole process group dies."""
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, process_group=0)  # fmt: skip
  try:
    out, err = proc.communicate(timeout=max(timeout, 0.1))
    return proc.returncode, out, err, False
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)  # the benchmarks' own child processes too
    out, err = proc.communicate()
    return proc.returncode, out, err, True


def _last_line(text: str) -> str:
  lines = [s.strip() for s in text.splitlines() if s.strip()]
  return lines[-1][:200] if lines else ""


def _error_line(text: str) -> str:
  """The last exception line of a traceback in `text`, else its last line."""
  errors = re.findall(r"^([\w.]+(?:Error|Exception|Exit|Interrupt)\b.*)$", text, re.M)
  return errors[-1][:200] if errors else _last_line(text)


def run_step(step: Step, log=None) -> Row:
  """Runs one step; never raises for the step's own failure (it is the row's status)."""
  if step.skip:
    return Row(step.check, step.form, "skipped", step.skip, 0.0)
  if step.mkdir is not None:
    step.mkdir.mkdir(parents=True, exist_ok=True)
  env = os.environ | {"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"} | step.env
  t0, stdout, status, why = time.perf_counter(), "", "ok", ""
  for cmd in step.cmds:
    left = step.timeout - (time.perf_counter() - t0)
    try:
      rc, out, err, timed_out = _call(cmd, env, left)
    except OSError as e:
      rc, out, err, timed_out = 127, "", str(e), False
    stdout += out
    if log is not None:
      log.write(f"\n=== {step.check} [{step.form}] $ {shlex.join(cmd)}\n{out}{err}")
      log.flush()
    if timed_out or rc:
      status = "timeout" if timed_out else "failed"
      why = (
        f"timed out after {step.timeout:.0f} s"
        if timed_out
        else f"exit {rc}: {_error_line(err or out)}"
      )
      break
  seconds = time.perf_counter() - t0
  try:
    result = step.parse(stdout)
  except Exception as e:  # noqa: BLE001 - any parse error is the step's failure
    if status == "ok":
      status, why = "failed", f"{type(e).__name__}: {e}"[:200]
    result = ""
  return Row(step.check, step.form, status, "; ".join(filter(None, (why, result))), seconds)


def run_all(steps: list[Step], time_limit: float = 0.0, log=None, after=None) -> list[Row]:
  """Runs the steps in order, each within what is left of time_limit seconds (0: no limit);
  after(rows) is called after each step (so a run killed from outside leaves what it did)."""
  t0, rows = time.perf_counter(), []
  for step in steps:
    left = time_limit - (time.perf_counter() - t0) if time_limit else float("inf")
    if left < 5 and not step.skip:
      row = Row(step.check, step.form, "skipped", "out of time (--time-limit)", 0.0)
    else:
      row = run_step(dataclasses.replace(step, timeout=min(step.timeout, left)), log)
    rows.append(row)
    print(f"{row.check:24s} {row.form:5s} {row.status:8s} {row.seconds:6.0f} s  {row.result}")
    if after is not None:
      after(rows)
  return rows


def render(rows: list[Row]) -> str:
  """The rows as one markdown table."""
  cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
  lines = ["| check | kernels | status | result | s |", "| --- | --- | --- | --- | ---: |"]
  lines += [f"| {cell(r.check)} | {cell(r.form)} | {r.status} | {cell(r.result)} | {r.seconds:.0f} |"
            for r in rows]  # fmt: skip
  return "\n".join(lines) + "\n"


# --- reading the outputs ----------------------------------------------------------------------------

_SIDE = re.compile(r"^(genjax[\w-]*|pytorch)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s*$", re.M)
_RATIO = re.compile(r"^ratio (\S+) / pytorch.*?: ([\d.]+)x", re.M)


def parse_sides(out: str, note: str = "") -> str:
  """bench_autoencoder/vae/gan/faceswap: images/s and ms/step per side, and the ratios printed."""
  sides = {m[1]: (float(m[2]), float(m[3])) for m in _SIDE.finditer(out)}
  if "genjax" not in sides:
    raise StepFailed("no genjax result (its error is in the log)")
  rate = lambda ips: f"{ips:.0f}" if ips >= 100 else f"{ips:.1f}"
  parts = [f"{name} {rate(ips)} img/s {ms:.2f} ms/step" for name, (ips, ms) in sides.items()]
  parts += [f"{name}/pytorch {r}x" for name, r in _RATIO.findall(out)]
  if "pytorch" not in sides:
    parts.append(note or "pytorch side failed (see the log)")
  return "; ".join(parts)


def parse_layers(out: str, cols: tuple[str, ...]) -> str:
  """bench_conv/conv_transpose: each side's milliseconds summed over the layer rows."""
  rows = [line.rsplit(")", 1)[1].split()[: len(cols)] for line in out.splitlines()
          if " -> " in line and ")" in line]  # fmt: skip
  if not rows:
    raise StepFailed("no layer rows")
  totals = [sum(float(r[i]) for r in rows) for i in range(len(cols))]
  each = ", ".join(f"{c} {t:.1f}" for c, t in zip(cols, totals, strict=True))
  return f"ms over {len(rows)} layers: {each} (lax/genjax {totals[-1] / totals[0]:.2f}x)"


def parse_ssim(out: str) -> str:
  med = re.findall(r"^(.+?)\s+median\s+([\d.]+) ms", out, re.M)
  ratio = re.search(r"ratio \(depthwise / genjax\): ([\d.]+)x", out)
  if not med or ratio is None:
    raise StepFailed("no median rows")
  return ", ".join(f"{k.strip()} {v} ms" for k, v in med) + f" (depthwise/genjax {ratio[1]}x)"


def parse_cam(out: str) -> str:
  """bench_cam: its last line (JSON), of the whole comparison or of the genjax child alone."""
  res = json.loads(out.strip().splitlines()[-1])
  gj = res.get("genjax", res)
  s = (f"closed-form {gj['closed_form']['maps_per_s']:.0f} maps/s, exact "
       f"{gj['exact']['maps_per_s']:.2f} maps/s")  # fmt: skip
  if "tkv" in res:
    return s + f" (closed-form/tf-keras-vis {gj['closed_form']['maps_per_s'] / res['tkv']['maps_per_s']:.1f}x)"  # fmt: skip
  return s + "; tf-keras-vis missing: genjax side only"


def parse_explain(out: str) -> str:
  """bench_explain: the whole comparison's last line (JSON), or the genjax child's RESULT line."""
  lines = out.strip().splitlines()
  if lines[-1].startswith("{"):
    res = json.loads(lines[-1])
    gj, pt = res["genjax"], res["pytorch"]
  else:
    gj = [json.loads(s[7:]) for s in lines if s.startswith("RESULT ") and '"jax"' in s][-1]
    pt = None
  parts = []
  for m in ("gradcam", "gradcam++", "scorecam"):
    if m in gj:
      vs = f" ({gj[m]['maps_per_s'] / pt[m]['maps_per_s']:.2f}x pytorch-grad-cam)" if pt else ""
      parts.append(f"{m} {gj[m]['maps_per_s']:.2f} maps/s{vs}")
  return ", ".join(parts) + ("" if pt else "; pytorch-grad-cam missing: genjax side only")


def parse_pytest(out: str) -> str:
  """pytest's summary counts; without a summary (a run cut short), the progress marks so far."""
  summary = [s for s in out.splitlines() if re.search(r"\d+ (passed|failed|error)", s)]
  if summary:
    counts = re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)", summary[-1])
    return ", ".join(f"{n} {what}" for n, what in counts)
  marks = "".join(re.findall(r"^([.FEsxX]+)(?:\s+\[\s*\d+%\])?$", out, re.M))
  if not marks:
    raise StepFailed("no pytest summary line")
  names = {".": "passed", "F": "failed", "E": "errors", "s": "skipped"}
  return "so far " + ", ".join(f"{marks.count(c)} {w}" for c, w in names.items() if c in marks)


def parse_epoch(out: str, workdir: Path) -> str:
  """The results train.py prints, and the images/s it logged after the first (compiling) report."""
  results = ast.literal_eval(out.strip().splitlines()[-1])
  rows = [json.loads(s) for s in (workdir / "metrics.jsonl").read_text().splitlines()]
  rates = [r["images_per_s"] for r in rows if "images_per_s" in r][1:]
  rate = f", {statistics.median(rates):.0f} img/s after compilation" if rates else ""
  return f"{results['step']} steps, test accuracy {results['test_accuracy']:.4f}{rate}"


# --- the steps ------------------------------------------------------------------------------------


def bench_steps(name: str, form: str, ctx: dict) -> list[Step]:
  """The steps of scripts/<name>.py for one kernel form (one per model for bench_faceswap)."""
  py, script, secs, work = ctx["python"], f"scripts/{name}.py", str(ctx["seconds"]), ctx["work"]
  env = ctx["env"] | {"GENJAX_KERNELS": form}
  step = lambda cmds, parse, **kw: Step(name, form, cmds, parse, ctx["timeout"], env, **kw)
  torch_note = "" if have("torch") else "pytorch side absent (torch missing)"
  sided = lambda *args: step([[py, script, *args, "--seconds", secs, "--devices", "1"]],
                             lambda out: parse_sides(out, torch_note))  # fmt: skip
  if name == "bench_conv":
    return [
      step([[py, script, "--repeats", "5"]], lambda out: parse_layers(out, ("genjax", "lax")))
    ]
  if name == "bench_conv_transpose":
    cols = ("genjax", "sub-pixel", "lax")
    return [step([[py, script, "--repeats", "5"]], lambda out: parse_layers(out, cols))]
  if name == "bench_ssim":
    return [step([[py, script, "--batch", "16", "--size", "100", "--repeats", "3"]], parse_ssim)]
  if name == "bench_autoencoder":
    return [sided("--batch", "128")]
  if name == "bench_vae":  # the conv VAE: the dense one has no convolutions
    return [sided("--model", "conv", "--batch", "128")]
  if name == "bench_gan":
    return [sided("--batch", "64")]
  if name == "bench_faceswap":
    device = ["--torch_device", "cuda"] if ctx["gpu"] else []
    batch = "16" if ctx["gpu"] else "4"  # a 100x100 step takes seconds on a small CPU
    steps = [sided("--model", m, "--batch", batch, *device) for m in ("a", "c")]
    for s, m in zip(steps, ("a", "c"), strict=True):
      s.check = f"{name} ({m})"
    return steps
  if name == "bench_cam":
    out = work / f"cam-{form}"
    flags = ["--images", "32", "--exact_images", "1", "--seconds", secs]
    if have("tf_keras_vis") and have("tensorflow"):
      return [step([[py, script, *flags]], parse_cam)]
    return [step([[py, script, *flags, "--which", "genjax", "--out", str(out)]], parse_cam, mkdir=out)]  # fmt: skip
  if name == "bench_explain":
    tmp = work / f"explain-{form}"
    methods = "gradcam,gradcam++,scorecam" if ctx["gpu"] else "gradcam,gradcam++"
    flags = ["--batch", "4", "--repeats", "2", "--scorecam-batch", "1", "--scorecam-ref", "1",
             "--methods", methods]  # fmt: skip
    if lacking := [m for m in ("torch", "torchvision") if not have(m)]:
      why = f"skipped: {' and '.join(lacking)} missing (the weights come from torchvision)"
      return [step([], parse_explain, skip=why)]
    if have("pytorch_grad_cam") and have("cv2"):
      return [step([[py, script, *flags]], parse_explain)]
    child = lambda which: [py, script, *flags, "--which", which, "--tmp", str(tmp)]
    return [step([child("weights"), child("genjax")], parse_explain, mkdir=tmp)]
  return [step([[py, script]], _last_line)]  # a benchmark added later: its defaults, last line


def epoch_step(form: str, ctx: dict) -> Step:
  parent = ctx["work"] / f"epoch-{form}"
  workdir = parent / "workdir"
  cmd = [ctx["python"], "scripts/train.py", "--config", EPOCH_CONFIG, "--workdir", str(workdir),
         "--config.progress=False", "--config.log_every=50"]  # fmt: skip
  cmd.append(
    f"--config.num_steps={ctx['epoch_steps']}" if ctx["epoch_steps"] else "--config.epochs=1"
  )
  env = ctx["env"] if form == "auto" else ctx["env"] | {"GENJAX_KERNELS": form}
  parse = lambda out: parse_epoch(out, workdir)
  return Step("epoch", form, [cmd], parse, ctx["epoch_timeout"], env, mkdir=parent)


def tests_step(ctx: dict) -> Step:
  cmd = [ctx["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider"]
  if have("xdist"):
    cmd += ["-n", str(min(8, max(2, (os.cpu_count() or 2) // 2)))]
  env = {k: v for k, v in ctx["env"].items() if k != "JAX_PLATFORMS"}  # conftest: CPU devices
  return Step("tests", "auto", [cmd], parse_pytest, ctx["tests_timeout"], env)


def build_steps(opts: Options, ctx: dict) -> list[Step]:
  steps = []
  if "bench" in opts.only:
    names = sorted(p.stem for p in (ROOT / "scripts").glob("bench_*.py"))
    if opts.benches:
      names = [n for n in names if n.removeprefix("bench_") in opts.benches.split(",")]
    steps += [s for name in names for form in opts.forms.split(",") for s in bench_steps(name, form, ctx)]  # fmt: skip
  if "epoch" in opts.only:
    steps += [epoch_step(form, ctx) for form in opts.epoch_forms.split(",")]
  if "tests" in opts.only:
    steps.append(tests_step(ctx))
  return steps


# --- setup: dependencies and the GPU backend --------------------------------------------------------


def jax_backend(env: dict) -> str:
  """jax.default_backend() in a new process (so a CUDA plugin installed meanwhile is seen)."""
  cmd = [sys.executable, "-c", "import jax; print(jax.default_backend(), jax.__version__)"]
  rc, out, err, _ = _call(cmd, os.environ | env, 120)
  return _last_line(out) if rc == 0 else f"error ({_error_line(err)})"


def setup(wheels: Path | None, env: dict, log) -> tuple[Row, bool]:
  """Installs missing dependencies from `wheels` (--wheels) and CUDA jax where a GPU is present; the
  row and whether jax's backend is the GPU."""
  t0, notes = time.perf_counter(), []
  pip = [sys.executable, "-m", "pip", "install", "-q", "--retries", "1", "--timeout", "15"]
  local = ["--no-index", "--find-links", str(wheels)] if wheels else []
  missing = [dist for mod, dist in DEPS.items() if not have(mod)]
  if missing:
    if wheels:
      rc, out, err, _ = _call([*pip, *local, *missing], os.environ, 300)
      log.write(f"\n=== setup: pip install {' '.join(missing)}\n{out}{err}")
      notes.append(f"installed {', '.join(missing)} from {wheels}" if rc == 0
                   else f"pip could not install {', '.join(missing)}: {_last_line(err)}")  # fmt: skip
      importlib.invalidate_caches()
    else:
      notes.append(f"missing {', '.join(missing)} (pip install -e .[dev], or --wheels)")
  backend = jax_backend(env)
  if not backend.startswith("gpu"):
    if shutil.which("nvidia-smi") and have("jax"):
      version = importlib.metadata.version("jax")
      rc, out, err, _ = _call([*pip, *local, f"jax[cuda12]=={version}"], os.environ, 300)
      log.write(f"\n=== setup: pip install jax[cuda12]=={version}\n{out}{err}")
      notes.append(f"installed jax[cuda12]=={version}" if rc == 0
                   else f"pip could not install jax[cuda12]=={version}: {_last_line(err)}")  # fmt: skip
      backend = jax_backend(env)
    elif not shutil.which("nvidia-smi"):
      notes.append("no GPU present (no nvidia-smi): CUDA install skipped")
  gpu = backend.startswith("gpu")
  failed = backend.startswith("error") or (shutil.which("nvidia-smi") and not gpu)
  status = "failed" if failed else "ok"
  row = Row("setup", "-", status, "; ".join([f"jax backend {backend}", *notes]),
            time.perf_counter() - t0)  # fmt: skip
  return row, gpu


def prepare_data(dest: Path) -> None:
  """Writes Fashion-MNIST as the uint8 arrays genjax.data.tfds caches (its <data_dir>/genjax_arrays/),
  compressed, so a machine without TensorFlow reads them: dest/tfds/genjax_arrays/fashion_mnist/."""
  import numpy as np

  from genjax.data import tfds

  with tempfile.TemporaryDirectory(prefix="genjax-tfds-") as tmp:
    for split in ("train", "test"):
      ds = tfds.load("fashion_mnist", split, data_dir=os.environ.get("GENJAX_TFDS_DIR") or tmp)
      path = dest / "tfds" / "genjax_arrays" / "fashion_mnist" / f"{split}.npz"
      path.parent.mkdir(parents=True, exist_ok=True)
      np.savez_compressed(path, image=np.round(ds.x * 255).astype(np.uint8), label=ds.y)
      print(f"{path}: {len(ds)} images, {path.stat().st_size / 2**20:.1f} MiB")


# --- the whole check ------------------------------------------------------------------------------


def run(opts: Options) -> list[Row]:
  """The check (see the module's docstring): setup, then the steps; prints the table and writes it
  to opts.out (.json and .log beside it). With opts.dry_run, prints the commands and runs nothing.
  The rows, setup's first ([] for a dry run)."""
  env = {}
  if opts.data_dir:
    data = opts.data_dir.resolve()
    env["GENJAX_TFDS_DIR"] = str(data / "tfds")
    if (data / "fashion_mnist").is_dir():
      env["GENJAX_DATA_DIR"] = str(data)
  out = (
    opts.out
    or Path(os.environ["OUT"] if os.environ.get("OUT") else ROOT / "runs") / "device_check.md"
  )
  work = Path(tempfile.gettempdir()) / "genjax-device-check" if opts.dry_run else Path(
    tempfile.mkdtemp(prefix="genjax-device-check-"))  # fmt: skip
  ctx = {"python": sys.executable, "env": env, "work": work, "seconds": opts.seconds,
         "timeout": opts.bench_timeout, "tests_timeout": opts.tests_timeout,
         "epoch_timeout": opts.epoch_timeout, "epoch_steps": opts.epoch_steps,
         "gpu": bool(shutil.which("nvidia-smi"))}  # fmt: skip

  if opts.dry_run:
    local = ["--no-index", "--find-links", str(opts.wheels)] if opts.wheels else []
    print(f"setup: {sys.executable} -c 'import jax; print(jax.default_backend())'; where that is not "
          f"gpu and nvidia-smi exists: {shlex.join(['pip', 'install', '-q', *local])} 'jax[cuda12]==<jax version>'")  # fmt: skip
    ctx["env"] = env | ({"JAX_PLATFORMS": "cuda"} if ctx["gpu"] else {})
    for s in build_steps(opts, ctx):
      prefix = " ".join(f"{k}={v}" for k, v in s.env.items())
      cmds = " && ".join(shlex.join(c) for c in s.cmds) or "(not run)"
      print(f"{s.check} [{s.form}]: {prefix + ' ' if prefix else ''}{cmds}{'  # ' + s.skip if s.skip else ''}")  # fmt: skip
    return []

  def write(rows: list[Row]) -> None:
    out.write_text(render(rows))
    out.with_suffix(".json").write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))

  out.parent.mkdir(parents=True, exist_ok=True)
  with open(out.with_suffix(".log"), "w") as log:
    row, gpu = setup(opts.wheels, env, log)
    print(f"setup: {row.result}")
    write([row])
    # On the GPU the benchmarks must not fall back to the CPU (bench_explain defaults JAX to it).
    ctx |= {"gpu": gpu, "env": env | ({"JAX_PLATFORMS": "cuda"} if gpu else {})}
    steps = build_steps(opts, ctx)
    rows = [row, *run_all(steps, opts.time_limit, log, after=lambda rs: write([row, *rs]))]
  print("\n" + render(rows))
  print(f"wrote {out}, {out.with_suffix('.json').name} and {out.with_suffix('.log').name}")
  shutil.rmtree(work, ignore_errors=True)
  return rows
