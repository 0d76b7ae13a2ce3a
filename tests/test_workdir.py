"""A run's workdir and command line: config checks before anything is restored, damaged checkpoints
skipped, every config field overridable, out-of-range values refused by name."""

import glob
import importlib
import os
import shutil
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import ml_collections
import pytest
from absl import flags
from flax import struct
from ml_collections import config_flags

from genjax.train import checkpoint, loop
from genjax.train import config as tconfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
  p for p in (ROOT / "experiments").glob("*/configs/*.py") if p.stem not in ("__init__", "variants")
)


@struct.dataclass
class Weights:
  step: jax.Array
  w: jax.Array


W0 = jax.random.normal(jax.random.key(0), (32, 512))  # random: Orbax stores it uncompressed


def _step(state, batch, key):
  return Weights(state.step + 1, state.w + batch), {"loss": state.w.mean()}


def _config(num_steps, **kw):
  return ml_collections.ConfigDict(dict(
    seed=0, batch_size=4, num_devices=1, num_steps=num_steps, log_every=2, checkpoint_every=2,
    progress=False, model=dict(width=512), learning_rate=1e-3, **kw,
  ))  # fmt: skip


def _train(config, workdir):
  """setup + run, as an experiment does; the final state."""
  workdir, _, key = loop.setup(config, workdir)
  template = Weights(jnp.zeros((), jnp.int32), W0)
  state, writer, ckpt = loop.run(config, workdir, template, _step, lambda s: jnp.float32(s + 1),
                                 key, images_per_step=4)  # fmt: skip
  writer.close()
  ckpt.close()
  return jax.device_get(state)


def _truncate(step_dir: Path) -> None:
  """Cuts every stored array file of a checkpoint step in half (a full disk, a partial copy)."""
  files = [f for f in glob.glob(f"{step_dir}/**/d/*", recursive=True) if os.path.getsize(f) > 4096]
  assert files
  for f in files:
    data = Path(f).read_bytes()
    Path(f).write_bytes(data[: len(data) // 2])


def _drop_metadata(step_dir: Path) -> None:
  (step_dir / "default" / "_METADATA").unlink()


@pytest.mark.parametrize("damage", [_truncate, _drop_metadata], ids=["truncated", "partial"])
def test_a_damaged_latest_checkpoint_is_reported_and_the_run_resumes_from_the_intact_one(
  tmp_path, capsys, damage
):
  _train(_config(6), tmp_path / "run")  # keeps steps 4 and 6
  damage(tmp_path / "run" / "checkpoints" / "6")
  resumed = _train(_config(8), tmp_path / "run")
  whole = _train(_config(8), tmp_path / "whole")
  assert int(resumed.step) == 8
  assert (resumed.w == whole.w).all()  # from step 4, not from the damaged 6 and not from scratch
  err = capsys.readouterr().err
  assert "checkpoint step 6" in err and "resuming from step 4" in err
  assert (tmp_path / "run" / "checkpoints.corrupt" / "6").is_dir()
  assert checkpoint.saved_steps(tmp_path / "run" / "checkpoints") == [6, 8]  # 6 saved anew


def test_when_no_step_restores_the_error_is_raised_and_nothing_is_moved(tmp_path):
  _train(_config(4), tmp_path)
  for step in (2, 4):
    _truncate(tmp_path / "checkpoints" / str(step))
  with pytest.raises(ValueError, match="OUT_OF_RANGE"):
    _train(_config(6), tmp_path)
  assert checkpoint.saved_steps(tmp_path / "checkpoints") == [2, 4]
  assert not (tmp_path / "checkpoints.corrupt").exists()


def test_reading_a_model_skips_a_damaged_newest_step_and_moves_nothing(tmp_path, capsys):
  import optax
  from flax import nnx

  from genjax.train import sharding
  from genjax.train import state as tstate

  mesh = sharding.make_mesh(1)
  make = lambda: nnx.Linear(512, 64, rngs=nnx.Rngs(0))  # arrays large enough to be cut
  _, state = tstate.create(make, optax.sgd(0.1), mesh)
  ckpt = checkpoint.Checkpointer(tmp_path / "checkpoints", every=1)
  saved = {}
  for step in (2, 4):
    state = state.replace(params=jax.tree.map(lambda p, s=step: p + s, state.params), step=step)
    ckpt.maybe_save(step, state)
    saved[step] = jax.device_get(state.params)
  ckpt.close()
  _, (params, _) = checkpoint.restore_model(tmp_path, make, mesh)
  chex.assert_trees_all_equal(jax.device_get(params), saved[4])
  _truncate(tmp_path / "checkpoints" / "4")
  _, (params, _) = checkpoint.restore_model(tmp_path, make, mesh)
  chex.assert_trees_all_equal(jax.device_get(params), saved[2])
  err = capsys.readouterr().err
  assert "checkpoint step 4" in err and "reading step 2 instead" in err
  assert checkpoint.saved_steps(tmp_path / "checkpoints") == [2, 4]
  assert not (tmp_path / "checkpoints.corrupt").exists()
  _truncate(tmp_path / "checkpoints" / "2")
  with pytest.raises(ValueError, match="OUT_OF_RANGE"):
    checkpoint.restore_model(tmp_path, make, mesh)


def test_resuming_with_another_config_stops_before_any_restore_naming_the_fields(
  tmp_path, monkeypatch
):
  _train(_config(4), tmp_path)
  saved = (tmp_path / "config.json").read_text()
  restores = []
  monkeypatch.setattr(checkpoint.Checkpointer, "restore", lambda self, s: restores.append(1))
  other = _config(4, loss=dict(weight_decay=0.1))
  other.model.width, other.learning_rate = 256, 3e-4
  with pytest.raises(ValueError) as e:
    _train(other, tmp_path)
  message = str(e.value)
  assert "learning_rate: 0.001 (saved) -> 0.0003 (now)" in message
  assert "model.width: 512 (saved) -> 256 (now)" in message
  assert "loss.weight_decay: '(absent)' (saved) -> 0.1 (now)" in message
  assert message.count("(saved)") == 3 and not restores
  assert (tmp_path / "config.json").read_text() == saved


def test_resuming_may_change_length_reporting_devices_and_data_paths(tmp_path):
  _train(_config(4), tmp_path)
  longer = _config(6, data_dir="/elsewhere", time_limit_minutes=5.0)
  longer.log_every, longer.checkpoint_every, longer.num_devices = 3, 3, 2
  assert int(_train(longer, tmp_path).step) == 6
  # A workdir whose checkpoints are gone is a new run: any config may start there.
  shutil.rmtree(tmp_path / "checkpoints")
  other = _config(2)
  other.model.width = 256
  loop.setup(other, tmp_path)


def test_a_field_added_after_a_run_was_saved_is_no_difference_while_it_is_off(tmp_path):
  _train(_config(4), tmp_path)
  off = _config(6, init_from="", loss=dict(landmarks=0.0), flags=(), landmark_workdir="")
  assert int(_train(off, tmp_path).step) == 6
  _train(_config(4), tmp_path / "new")  # a field that is on changes the run: refused
  with pytest.raises(ValueError, match=r"loss.landmarks: '\(absent\)' \(saved\) -> 1.0"):
    _train(_config(8, loss=dict(landmarks=1.0)), tmp_path / "new")


def test_a_run_may_start_from_another_runs_checkpoint_with_other_loss_weights_only(tmp_path):
  first = _train(_config(4), tmp_path / "a")
  started = _config(6, init_from=str(tmp_path / "a"), loss=dict(landmarks=1.0))
  state = _train(started, tmp_path / "b")
  # steps 5 and 6 on top of the first run's step 4: as the first run would have gone on
  whole = _train(_config(6), tmp_path / "c")
  assert int(state.step) == 6
  chex.assert_trees_all_close(state, whole)
  assert int(first.step) == 4 and checkpoint.saved_steps(tmp_path / "a" / "checkpoints") == [2, 4]
  # resumed, it reads its own checkpoints, not the other run's
  started.num_steps = 8
  assert int(_train(started, tmp_path / "b").step) == 8
  other = _config(6, init_from=str(tmp_path / "a"))
  other.learning_rate = 3e-4
  with pytest.raises(ValueError, match=r"learning_rate: 0.001 \(there\) -> 0.0003 \(now\)"):
    _train(other, tmp_path / "d")
  missing = _config(6, init_from=str(tmp_path / "nowhere"))
  with pytest.raises(ValueError, match="config.init_from: .*not found"):
    _train(missing, tmp_path / "e")


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("batch_size", 0, "config.batch_size = 0: must be an integer >= 1"),
    ("epochs", 0.0, "config.epochs = 0.0: must be > 0"),
    ("num_steps", -1, "config.num_steps = -1: must be an integer >= 0"),
    ("learning_rate", 0.0, "config.learning_rate = 0.0: must be > 0"),
    ("learning_rate", float("nan"), "config.learning_rate = nan: must be a finite number > 0"),
    ("optimizer.g_learning_rate", -2e-4, "config.optimizer.g_learning_rate = -0.0002: must be > 0"),
    ("loss.weight_decay", -1e-4, "config.loss.weight_decay = -0.0001: must be >= 0"),
    ("lambda_rec", -1.0, "config.lambda_rec = -1.0: must be >= 0"),
    ("beta", -0.5, "config.beta = -0.5: must be >= 0"),
    ("log_every", 0, "config.log_every = 0: must be an integer >= 1"),
    ("num_devices", 0, "config.num_devices = 0: must be an integer >= 1"),
  ],
)
def test_out_of_range_values_are_refused_naming_the_field(tmp_path, field, value, message):
  config = _config(2, optimizer=dict(g_learning_rate=2e-4), loss=dict(weight_decay=0.0),
                   lambda_rec=1.0, beta=1.0, epochs=1.0)  # fmt: skip
  *parents, leaf = field.split(".")
  node = config
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
    loop.setup(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()  # refused before the workdir is made


def _module(path: Path):
  return importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))


def _variants(module) -> list[str | None]:
  names = getattr(module, "VARIANTS", None) or getattr(
    importlib.import_module(module.__name__.rsplit(".", 1)[0] + ".variants"), "VARIANTS", ()
  )
  return [None, *names]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_config_and_variant_passes_the_range_checks(path):
  module = _module(path)
  for variant in _variants(module):
    tconfig.check_values(module.get_config(variant))


def _override(value):
  """A new value of the same type, as it is written on the command line."""
  if isinstance(value, bool):
    return not value, str(not value).lower()
  if isinstance(value, int):
    return value + 1, str(value + 1)
  if isinstance(value, float):
    return value * 0.5, repr(value * 0.5)
  if isinstance(value, str):
    return value + "x", value + "x"
  if isinstance(value, tuple):
    new = tuple(_override(v)[0] for v in value)
    return new, "(" + ",".join(repr(v) for v in new) + ("," if len(new) == 1 else "") + ")"
  raise AssertionError(f"no override for {value!r}")


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # ml_collections' loader
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_config_field_can_be_overridden_from_the_command_line(path):
  default = _module(path).get_config()
  argv, want = ["train.py", f"--config={path}"], {}
  for field, value in tconfig.leaves(default):
    if field == "kernels":  # a str placeholder
      new, text = "xla", "xla"
    elif value is None:  # an int placeholder: typed, None until set
      new, text = 2, "2"
    else:
      new, text = _override(value)
    argv.append(f"--config.{field}={text}")
    want[field] = new
  assert "num_devices" in want and ("data_dir" in want or "data_root" in want)
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, sys_argv=argv)
  values(argv)
  got = dict(tconfig.leaves(values.config))
  for field, new in want.items():
    assert got[field] == pytest.approx(new) if isinstance(new, float) else got[field] == new, field
