"""genjax.train.study: the printed plan, each config trained once, finished runs skipped."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import ml_collections
import pytest

from genjax.train import study

ROOT = Path(__file__).resolve().parents[1]


def _config(lr=1e-3, **kw):
  c = ml_collections.ConfigDict(
    dict(seed=0, lr=lr, num_steps=10, progress=True, model=dict(widths=(8, 4)))
  )
  c.update(kw)
  return c


class FakeTrain:
  """Counts calls; writes results.json as train_and_evaluate does (config as JSON, last step)."""

  def __init__(self, stop_at=None):
    self.calls, self.stop_at = [], stop_at

  def __call__(self, config, workdir):
    self.calls.append(Path(workdir).name)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    (Path(workdir) / "checkpoints").mkdir(exist_ok=True)
    step = self.stop_at or config.num_steps
    r = {"step": step, "config": config.to_dict(), "loss": config.get("lr", 0) * 100 + config.seed}
    (Path(workdir) / "results.json").write_text(json.dumps(r))
    return r


def _plan():
  return [
    study.Run("a", _config(1e-3), 60.0),
    study.Run("b", _config(1e-2), 60.0),
    study.Run("a-again", _config(1e-3), 60.0),  # a's config: trained once
    study.Run("a-quiet", _config(1e-3, progress=False), 60.0),  # a progress flag does not count
  ]


def test_a_repeated_config_is_trained_once_and_its_results_reused(tmp_path, capsys):
  train = FakeTrain()
  rows = study.run("toy study", tmp_path, _plan(), train, basis="1 s per step")
  assert train.calls == ["a", "b"]
  assert [n for n, _ in rows] == ["a", "b", "a-again", "a-quiet"]
  assert rows[2][1] is rows[0][1] and rows[3][1] is rows[0][1]
  assert not (tmp_path / "a-again").exists()
  out = capsys.readouterr().out
  assert "toy study: 4 runs in" in out and "2 to train once each (2 repeat" in out
  assert "a-again has the config of a" in out and "a-quiet has the config of a" in out
  assert "0 of 2 already done" in out and "about 2 min" in out and "1 s per step" in out
  lines = out.splitlines()
  assert any(line.startswith("run 1/2: a (new") for line in lines)
  assert any(line.startswith("run 2/2: b (new") for line in lines)
  assert "a-again: same config as run 1/2 (a)" in out
  # The plan is printed before the first run starts.
  assert out.index("expected time") < out.index("run 1/2")


def test_duplicates_compare_the_whole_config():
  assert study.duplicates(_plan()) == {"a-again": "a", "a-quiet": "a"}
  nested = [study.Run("x", _config(), 1), study.Run("y", _config(model=dict(widths=(8, 5))), 1)]
  assert study.duplicates(nested) == {}


def test_finished_runs_are_skipped_and_read_back(tmp_path, capsys):
  study.run("toy study", tmp_path, _plan()[:2], FakeTrain(), basis="-")
  capsys.readouterr()
  train = FakeTrain()
  rows = study.run("toy study", tmp_path, _plan(), train, basis="-")
  assert train.calls == []
  assert rows[1][1]["loss"] == pytest.approx(1.0)
  out = capsys.readouterr().out
  assert "2 of 2 already done (skipped)" in out and "about 0 s" in out
  assert "run 1/2: a (already done" in out and "run 2/2: b (already done" in out


def test_a_run_stopped_early_is_resumed_and_a_done_one_is_not_counted_in_the_time(tmp_path, capsys):
  FakeTrain(stop_at=4)(_config(1e-3), tmp_path / "a")  # e.g. a time limit stopped it at step 4
  FakeTrain()(_config(1e-2), tmp_path / "b")
  train = FakeTrain()
  study.run("toy study", tmp_path, _plan()[:2], train, basis="-")
  assert train.calls == ["a"]
  out = capsys.readouterr().out
  assert "1 of 2 already done (skipped), 1 to resume, 0 new" in out and "about 60 s" in out
  assert "run 1/2: a (resumed from its checkpoint" in out


def test_a_workdir_of_another_config_stops_the_study_before_anything_trains(tmp_path):
  FakeTrain()(_config(1e-3, seed=1), tmp_path / "b")
  train = FakeTrain()
  with pytest.raises(ValueError, match=r"b holds a run of another config .*differs in lr, seed"):
    study.run("toy study", tmp_path, _plan(), train, basis="-")
  assert train.calls == []


def test_a_placeholder_resolved_by_the_run_matches_and_names_are_unique(tmp_path):
  # The classifier plans num_steps None (from epochs) and records the count it resolved.
  planned = _config(num_steps=None)
  resolved = study.content(_config(num_steps=4680))
  assert study.differences(study.content(planned), resolved) == []
  assert study.differences(resolved, study.content(planned)) == ["num_steps"]
  # A field the stored run predates matches only when planned as its empty default.
  older = study.content(_config())
  assert study.differences(study.content(_config(data_dir="")), older) == []
  assert study.differences(study.content(_config(data_dir="/data")), older) == ["data_dir"]
  assert study.differences(older, study.content(_config(data_dir=""))) == ["data_dir"]
  with pytest.raises(ValueError, match="planned twice"):
    study.run("toy", tmp_path, [study.Run("a", _config(), 1), study.Run("a", _config(2.0), 1)],
              FakeTrain(), basis="-")  # fmt: skip


def test_the_autoencoder_study_trains_its_two_repeated_configs_once(monkeypatch, tmp_path, capsys):
  from experiments.autoencoder import sweep

  train = FakeTrain()
  monkeypatch.setattr(sweep.train, "train_and_evaluate", train)
  monkeypatch.setattr(sweep, "write_report", lambda root, rows: None)
  epochs = {"dense": 1, "conv": 1}
  rows = sweep.run_all(tmp_path, epochs=epochs, conv_variants=("plain", "l2", "denoising"))
  assert len(rows) == 17 and len(train.calls) == 15
  plan = [study.Run(n, c, 0) for n, c in sweep.runs(epochs=epochs, conv_variants=("plain",))]
  assert study.duplicates(plan) == {"dense-l1-lambda1e-05": "dense-l1",
                                    "dense-l2-lambda0.0001": "dense-l2"}  # fmt: skip
  out = capsys.readouterr().out
  assert "autoencoder study: 17 runs in" in out and "run 15/15: dense-l2-lambda0.01" in out


def test_classifier_study_script_smoke_then_rerun_trains_nothing(tmp_path):
  """scripts/train_classifiers.py end to end on generated data; started again, every run is done."""
  args = [sys.executable, str(ROOT / "scripts/train_classifiers.py"), f"--workdir={tmp_path}",
          "--settings=noae", "--seeds=0,1", "--extra=smoke"]  # fmt: skip
  # One CPU device; the tests' compilation cache, so the second seed reuses the first's programs.
  cache = os.path.join(tempfile.gettempdir(), "genjax-test-jax-cache")
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="", JAX_COMPILATION_CACHE_DIR=cache,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")  # fmt: skip
  first = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
  assert "classifier study: 2 runs in" in first and "0 of 2 already done" in first
  assert "run 1/2: noae-s0 (new" in first and "run 2/2: noae-s1 (new" in first
  table = (tmp_path / "classifiers.md").read_text()
  assert "| noae | 0 | 2 |" in table
  again = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
  assert "2 of 2 already done" in again and "run 2/2: noae-s1 (already done" in again
  assert (tmp_path / "classifiers.md").read_text() == table
