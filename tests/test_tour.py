"""The tour: `scripts/tour.py --smoke` writes one report with every part's section, numbers and
figures, prints its path, and a second run skips the finished parts."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from experiments import tour

ROOT = Path(__file__).resolve().parents[1]


def _tour(workdir: Path, *args: str) -> list[str]:
  """The smoke tour as a user runs it (one CPU device; the suite's compilation cache)."""
  env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=os.path.join(
    tempfile.gettempdir(), "genjax-test-jax-cache"))  # fmt: skip
  out = subprocess.run(
    [sys.executable, str(ROOT / "scripts" / "tour.py"), "--workdir", str(workdir), "--smoke", *args],
    env=env, capture_output=True, text=True, timeout=600, check=False,
  )  # fmt: skip
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout.splitlines()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("tour")
  return workdir, _tour(workdir)


def test_smoke_tour_reports_every_part_with_numbers_and_figures(smoke):
  workdir, lines = smoke
  path = workdir / "report.md"
  assert lines[-1] == f"report: {path.resolve()}"
  text = path.read_text()
  for i, part in enumerate(tour.PARTS, 1):
    start = f"part {i}/{len(tour.PARTS)}: {part.title} (expected ~{part.expected_s} s)"
    assert any(line.startswith(start) for line in lines), lines
    assert any(line.startswith(f"part {i}/{len(tour.PARTS)}: done in") for line in lines)
    assert f"\n## {i}. {part.title}\n" in text
    record = json.loads((workdir / part.name / "part.json").read_text())
    assert record["smoke"] and record["steps"] == 2
    assert f"took {record['seconds']:.0f} s" in text
    assert len(record["numbers"]) >= 3
    for key, value in record["numbers"].items():
      assert f"| {key} | {value} |" in text
      found = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", value)]
      assert found and np.all(np.isfinite(found)), (key, value)
    assert record["figures"]
    for _, name in record["figures"]:
      assert (workdir / part.name / name).stat().st_size > 0
      assert f"]({part.name}/{name})" in text


def test_a_second_run_skips_the_finished_parts(smoke):
  workdir, _ = smoke
  before = {p.name: (workdir / p.name / "part.json").read_text() for p in tour.PARTS}
  lines = _tour(workdir)
  for i, part in enumerate(tour.PARTS, 1):
    assert any(line.startswith(f"part {i}/{len(tour.PARTS)}: {part.title}: finished before")
               for line in lines), lines  # fmt: skip
    assert (workdir / part.name / "part.json").read_text() == before[part.name]
  assert all(f"## {i}. {p.title}" in (workdir / "report.md").read_text()
             for i, p in enumerate(tour.PARTS, 1))  # fmt: skip


def test_a_smoke_workdir_is_not_taken_for_a_real_one(smoke):
  with pytest.raises(ValueError, match="holds a --smoke run"):
    tour.run(smoke[0], parts=["autoencoder"], log=lambda _: None)


def test_without_the_faces_extra_only_the_face_part_is_skipped(tmp_path, monkeypatch):
  why = "skipped: the face part needs the `faces` extra (dlib-bin not installed)"
  monkeypatch.setattr(tour, "missing_faces_extra", lambda: why)
  lines = []
  text = tour.run(tmp_path, parts=["faceswap"], log=lines.append).read_text()
  assert lines == [f"part 5/5: {tour.PARTS[4].title} (expected ~{tour.PARTS[4].expected_s} s)",
                   f"part 5/5: {why}"]  # fmt: skip
  assert f"## 5. {tour.PARTS[4].title}\n\n**{why}**" in text
  assert not (tmp_path / "faceswap" / "part.json").exists()  # it runs once the extra is installed
  assert text.count("not run (--parts)") == 8  # the summary table and the sections


def test_missing_faces_extra_names_what_to_install():
  why = tour.missing_faces_extra()
  have = all(importlib.util.find_spec(m) for m in ("dlib", "face_recognition_models", "cv2"))
  assert (why is None) == have
  if why is not None:
    assert 'pip install -e ".[faces]"' in why
