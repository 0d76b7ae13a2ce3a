"""pyproject.toml's markers pick the TensorFlow that has wheels on each platform (no network)."""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from genjax.bench import install

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
TENSORFLOWS = {"tensorflow", "tensorflow-cpu"}
PYTHONS = ("3.11", "3.12", "3.13")


def environment(sys_platform: str, machine: str, python: str) -> dict[str, str]:
  """A PEP 508 marker environment, as CPython `python` on that OS and machine reports it."""
  system, os_name = {
    "linux": ("Linux", "posix"),
    "darwin": ("Darwin", "posix"),
    "win32": ("Windows", "nt"),
  }[sys_platform]
  return {
    "implementation_name": "cpython",
    "implementation_version": f"{python}.0",
    "os_name": os_name,
    "platform_machine": machine,
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": system,
    "platform_version": "",
    "python_full_version": f"{python}.0",
    "python_version": python,
    "sys_platform": sys_platform,
    "extra": "",
  }


# (sys.platform, platform.machine()) -> the TensorFlow distribution with wheels there (PyPI, 2.18 to
# 2.21): tensorflow-cpu only has Linux x86_64 and Windows AMD64 wheels. Windows reports "AMD64".
# Last two: neither has wheels (macOS x86_64 since 2.17, Windows ARM64 never); `tensorflow` is
# chosen so that pip fails there naming it, rather than installing without TensorFlow.
PLATFORMS = {
  ("linux", "x86_64"): "tensorflow-cpu",
  ("win32", "AMD64"): "tensorflow-cpu",
  ("linux", "aarch64"): "tensorflow",
  ("darwin", "arm64"): "tensorflow",
  ("darwin", "x86_64"): "tensorflow",
  ("win32", "ARM64"): "tensorflow",
}


def applying(env: dict[str, str]) -> list[Requirement]:
  reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
  return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize(("sys_platform", "machine"), list(PLATFORMS))
def test_exactly_one_tensorflow_and_the_one_with_wheels(sys_platform, machine, python):
  env = environment(sys_platform, machine, python)
  tf = [
    canonicalize_name(r.name) for r in applying(env) if canonicalize_name(r.name) in TENSORFLOWS
  ]
  assert tf == [PLATFORMS[sys_platform, machine]]


@pytest.mark.parametrize(("sys_platform", "machine"), list(PLATFORMS))
def test_markers_drop_nothing_but_the_other_tensorflow(sys_platform, machine):
  every = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
  for python in PYTHONS:
    got = {canonicalize_name(r.name) for r in applying(environment(sys_platform, machine, python))}
    assert got == every - (TENSORFLOWS - {PLATFORMS[sys_platform, machine]})


def test_tensorflow_bounds_admit_the_first_release_with_python_3_13_wheels():
  reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
  tf = [r for r in reqs if canonicalize_name(r.name) in TENSORFLOWS]
  assert len(tf) == 2
  for r in tf:
    assert r.specifier.contains("2.20.0") and r.specifier.contains("2.21.0"), r


def test_requires_python_and_classifiers_name_3_11_to_3_13():
  project = PYPROJECT["project"]
  requires = SpecifierSet(project["requires-python"])
  assert all(requires.contains(f"{v}.0") for v in PYTHONS)
  assert not requires.contains("3.10.0")  # flax>=0.11 has no release for Python 3.10
  listed = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if c.count("::") == 2}
  assert {v for v in listed if v.startswith("3.")} == set(PYTHONS)
  assert install.PYTHONS == PYTHONS


def test_manylinux_tags_reach_the_wheels_pip_would_not_widen_to():
  # TensorFlow 2.21's Linux wheels are manylinux_2_27; older ones manylinux_2_17/manylinux2014.
  x86 = install.manylinux_tags("x86_64", 28)
  assert x86[0] == "manylinux_2_28_x86_64"
  assert {"manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"} <= set(x86)
  assert "manylinux_2_29_x86_64" not in x86 and "manylinux1_x86_64" in x86
  arm = install.manylinux_tags("aarch64", 28)
  assert "manylinux_2_27_aarch64" in arm and "manylinux2014_aarch64" in arm
  assert not any(t.startswith(("manylinux1_", "manylinux2010_", "manylinux_2_16")) for t in arm)


@pytest.mark.parametrize("python", PYTHONS)
def test_check_install_environments_agree_with_the_markers(python):
  """The script's target environments choose as the ones above (its pip runs under them)."""
  assert install.ROOT == Path(__file__).resolve().parents[1]  # its pyproject.toml is this one
  for name, (_, base) in install.targets(28, "14.0").items():
    env = install.marker_environment(base, python) | {"extra": ""}
    assert env["python_version"] == python
    expected = PLATFORMS[env["sys_platform"], env["platform_machine"]]
    tf = [
      canonicalize_name(r.name) for r in applying(env) if canonicalize_name(r.name) in TENSORFLOWS
    ]
    assert tf == [expected], name
