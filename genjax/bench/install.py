"""Resolves `genjax-lab[dev,faces]` with pip per platform and Python without installing anything:
what scripts/check_install.py runs.

  python scripts/check_install.py [--extras dev,faces] [--glibc 2.28] [--macos 14.0] [--jobs 3]

Needs the network to PyPI; takes about 2 minutes. Prints one table, and exits 1 if any
(platform, Python) does not resolve. Measured on 2026-12-03 (pip 26.3):

  | platform      | python | resolved | tensorflow            | jax      | failures |
  | ------------- | ------ | -------- | --------------------- | -------- | -------- |
  | linux x86_64  | 3.11   | yes      | tensorflow-cpu 2.21.0 | 0.10.2   |          |
  | linux x86_64  | 3.12   | yes      | tensorflow-cpu 2.21.0 | 0.12.0.1 |          |
  | linux x86_64  | 3.13   | yes      | tensorflow-cpu 2.21.0 | 0.12.0.1 |          |
  | linux aarch64 | 3.11   | yes      | tensorflow 2.21.0     | 0.10.2   |          |
  | linux aarch64 | 3.12   | yes      | tensorflow 2.21.0     | 0.12.0.1 |          |
  | linux aarch64 | 3.13   | yes      | tensorflow 2.21.0     | 0.12.0.1 |          |
  | macos arm64   | 3.11   | yes      | tensorflow 2.21.0     | 0.10.2   |          |
  | macos arm64   | 3.12   | yes      | tensorflow 2.21.0     | 0.12.0.1 |          |
  | macos arm64   | 3.13   | yes      | tensorflow 2.21.0     | 0.12.0.1 |          |
  glibc 2.28, macOS 14.0, extras [dev,faces], pip 26.3

How each resolution is made realistic:
- The project is first built into its pure-Python wheel (`py3-none-any`, from a copy of
  pyproject.toml, README.md and genjax/ in a temporary folder: the work tree gets no build/), and
  `<wheel>[extras]` is resolved: the Requires-Dist markers checked are the ones setuptools wrote.
  With a wheel, `--only-binary=:all:` (which `--platform` requires) holds for every package.
- `pip install --dry-run --ignore-installed --only-binary=:all: --implementation cp
  --python-version V --platform P... --report` picks wheels for the target, but pip evaluates
  environment markers (ours and every dependency's) against the interpreter running it, not the
  target (pypa/pip#11664): from Linux x86_64 it would choose `tensorflow-cpu` for macOS too. So pip
  runs in a child process whose marker environment
  (`pip._vendor.packaging.markers.default_environment`) is the target's; the child checks that the
  patch took before resolving, and the report's "environment" is checked after.
- pip does not widen a `manylinux_2_X` tag to older glibc, so every tag a glibc-X system accepts
  is passed (manylinux_2_X down to manylinux_2_17, or _2_5 on x86_64, and the legacy aliases
  manylinux2014/2010/1). pip does widen `macosx_14_0_arm64` to 13.0 ... 11.0 and universal2 itself.
- The defaults are glibc 2.28 (manylinux_2_28; TensorFlow 2.21 needs 2.27) and macOS 14: macOS 12
  is the oldest TensorFlow's arm64 wheels support, but dlib-bin's only cp313 macOS arm64 wheels are
  macosx_14_0 ones, so with `--macos 12.0` (or 13.0) Python 3.13 fails on dlib-bin ([faces]).
- Two pure-Python projects are on PyPI as sdists only (SDIST_ONLY: face-recognition-models, ours
  in [faces], and promise, tensorflow-datasets'), which `--only-binary=:all:` refuses although pip
  builds them anywhere; they are built here and offered as py3-none-any wheels (--find-links).
- `--isolated` ignores this machine's pip configuration (extra indexes, find-links, constraints), so
  the answer is PyPI's.
On a failure every top-level requirement is resolved on its own, and those that fail are named.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]  # the repository: pyproject.toml, README.md, genjax/
PYTHONS = ("3.11", "3.12", "3.13")
# Pure-Python projects on PyPI as sdists only, which `--only-binary=:all:` refuses although pip
# builds them on any platform: built here into py3-none-any wheels and offered through --find-links.
SDIST_ONLY = ("face-recognition-models>=0.3", "promise")  # ours ([faces]); tensorflow-datasets'

# The child: give pip the target's marker environment, check it took, then run pip.
CHILD = """
import json, sys
from pip._vendor.packaging import markers
env = json.loads(sys.argv[1])
markers.default_environment = lambda: dict(env)
probe = "sys_platform == '{sys_platform}' and platform_machine == '{platform_machine}'"
if not markers.Marker(probe.format(**env)).evaluate():
  sys.exit("check_install: pip's marker environment could not be replaced")
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def manylinux_tags(arch: str, glibc_minor: int) -> list[str]:
  """Every platform tag that a glibc 2.<glibc_minor> Linux on `arch` accepts, newest first."""
  oldest = 5 if arch == "x86_64" else 17
  tags = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, oldest - 1, -1)]
  aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
  return tags + [f"{alias}_{arch}" for m, alias in aliases.items() if oldest <= m <= glibc_minor]


def targets(glibc_minor: int, macos: str) -> dict[str, tuple[list[str], dict[str, str]]]:
  """Platform name -> (pip --platform tags, PEP 508 marker environment less the Python fields)."""
  linux = {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux"}
  darwin = {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin"}
  darwin_release = f"{int(macos.split('.')[0]) + 9}.0.0"  # macOS 14 runs Darwin 23
  return {
    "linux x86_64": (manylinux_tags("x86_64", glibc_minor), linux | {"platform_machine": "x86_64"}),
    "linux aarch64": (
      manylinux_tags("aarch64", glibc_minor),
      linux | {"platform_machine": "aarch64"},
    ),
    "macos arm64": (
      [f"macosx_{macos.replace('.', '_')}_arm64"],
      darwin | {"platform_machine": "arm64", "platform_release": darwin_release},
    ),
  }


def marker_environment(base: dict[str, str], python: str) -> dict[str, str]:
  full = f"{python}.0"  # as pip reads --python-version 3.X
  return {
    "implementation_name": "cpython",
    "implementation_version": full,
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_version": "",
    "python_version": python,
    "python_full_version": full,
  } | base


def pip_resolve(reqs: list[str], tags: list[str], env: dict[str, str], links: str):
  """(pip's installation report, or None on failure; pip's stderr)."""
  args = ["--isolated", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:"]
  args += ["--implementation", "cp", "--python-version", env["python_version"], "--quiet"]
  args += [a for tag in tags for a in ("--platform", tag)] + ["--find-links", links]
  args += ["--report", "-", *reqs]
  cmd = [sys.executable, "-c", CHILD, json.dumps(env), *args]
  run = subprocess.run(cmd, capture_output=True, text=True)
  if run.returncode != 0:
    return None, run.stderr
  report = json.loads(run.stdout)
  got = {k: report["environment"][k] for k in env}
  if got != env:
    raise RuntimeError(f"pip resolved for {got}, not {env}")
  return report, run.stderr


def why_failed(stderr: str) -> str:
  """pip's first ERROR line past its notes on ignored versions, shortened."""
  errors = [
    line.removeprefix("ERROR: ") for line in stderr.splitlines() if line.startswith("ERROR:")
  ]
  errors = [line for line in errors if not line.startswith("Ignored the following")]
  return (errors or stderr.strip().splitlines()[-1:] or ["?"])[0][:160]


def top_level(extras: list[str]) -> list[str]:
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  return project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]


def check(name: str, tags: list[str], env: dict[str, str], wheel: str, extras: list[str]) -> dict:
  links = str(Path(wheel).parent)
  report, err = pip_resolve([f"{wheel}[{','.join(extras)}]"], tags, env, links)
  row = {"platform": name, "python": env["python_version"], "resolved": report is not None}
  if report is None:  # which top-level requirements fail on their own (their markers still apply)
    alone = {r: pip_resolve([r], tags, env, links) for r in top_level(extras)}
    failing = {r: why_failed(e) for r, (rep, e) in alone.items() if rep is None}
    why = "; ".join(f"{r}: {w}" for r, w in failing.items()) or why_failed(err)
    return row | {"tensorflow": "", "jax": "", "failures": why}
  found = {
    canonicalize_name(p["metadata"]["name"]): p["metadata"]["version"] for p in report["install"]
  }
  tf = [f"{n} {found[n]}" for n in ("tensorflow-cpu", "tensorflow") if n in found]
  return row | {
    "tensorflow": " + ".join(tf) or "none",
    "jax": found.get("jax", "none"),
    "failures": "",
  }


def build_wheels(out: Path) -> str:
  """Builds the project's wheel (from a copy of what goes into it) and those of SDIST_ONLY into
  `out`, checks that all are pure Python, and returns the project's."""
  src = out / "src"
  shutil.copytree(ROOT / "genjax", src / "genjax", ignore=shutil.ignore_patterns("__pycache__"))
  for f in ("pyproject.toml", "README.md"):
    shutil.copy(ROOT / f, src / f)
  pip = [sys.executable, "-m", "pip", "--isolated", "wheel", "--no-deps", "-q", "-w", str(out)]
  subprocess.run([*pip, str(src), *SDIST_ONLY], check=True)
  for wheel in out.glob("*.whl"):
    tags = parse_wheel_filename(wheel.name)[3]
    if any(t.abi != "none" or t.platform != "any" for t in tags):
      raise RuntimeError(f"{wheel.name} is not pure Python: it cannot stand in for other platforms")
  return str(next(out.glob("genjax_lab-*.whl")))


def resolve_all(extras: list[str], glibc: str, macos: str, jobs: int) -> list[dict]:
  """One row per (platform, Python in PYTHONS): `<project wheel>[extras]` resolved for glibc "2.X"
  (Linux) and `macos` (e.g. "14.0"), `jobs` resolutions at once; each row as check() makes it."""
  with tempfile.TemporaryDirectory() as tmp:
    wheel = build_wheels(Path(tmp))
    todo = [
      (name, tags, marker_environment(base, py))
      for name, (tags, base) in targets(int(glibc.split(".")[1]), macos).items()
      for py in PYTHONS
    ]
    with ThreadPoolExecutor(jobs) as pool:
      return list(pool.map(lambda j: check(*j, wheel, extras), todo))


def table(rows: list[dict]) -> str:
  """The rows as one markdown table, its columns padded to the same width."""
  cols = ["platform", "python", "resolved", "tensorflow", "jax", "failures"]
  cells = [
    [str(r[c]) if c != "resolved" else ("yes" if r[c] else "NO") for c in cols] for r in rows
  ]
  widths = [max(len(x) for x in col) for col in zip(cols, *cells, strict=True)]
  lines = [cols, ["-" * w for w in widths], *cells]
  return "\n".join(
    "| " + " | ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)) + " |"
    for line in lines
  )


def pip_version() -> str:
  run = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
  return run.stdout.split()[1]
