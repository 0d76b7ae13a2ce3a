"""The shared training loop on a toy state: steps, logging, hooks, NaN checks, time limits, resuming."""

import types

import jax
import jax.numpy as jnp
import ml_collections
import pytest
from flax import struct

from genjax.train import logging as tlog
from genjax.train import loop


@struct.dataclass
class Counter:
  step: jax.Array
  total: jax.Array


def _step(state, batch, key):
  total = state.total + batch
  return Counter(step=state.step + 1, total=total), {"loss": total, "batch": batch}


def _config(num_steps=6, **kw):
  return ml_collections.ConfigDict(
    dict(num_steps=num_steps, log_every=2, checkpoint_every=2, progress=False, **kw)
  )


def _fresh():
  return Counter(step=jnp.zeros((), jnp.int32), total=jnp.zeros((), jnp.float32))


def _batch(step):
  return jnp.float32(step + 1)  # the batch of global step s is s + 1


def _run(config, workdir, **kw):
  state, writer, ckpt = loop.run(config, workdir, _fresh(), _step, _batch, jax.random.key(0),
                                 images_per_step=4, **kw)  # fmt: skip
  writer.close()
  ckpt.close()
  return state


def test_runs_every_step_logs_every_log_every_and_calls_the_hook(tmp_path):
  seen = []
  state = _run(_config(7), tmp_path, after_step=lambda n, s: seen.append((n, float(s.total))))
  assert int(state.step) == 7 and float(state.total) == 28.0  # 1 + 2 + ... + 7
  assert seen == [(n, n * (n + 1) / 2) for n in range(1, 8)]
  rows = tlog.read_metrics(tmp_path)
  assert [r["step"] for r in rows] == [2, 4, 6, 7]  # multiples of log_every, and the last step
  assert [r["batch"] for r in rows] == [2.0, 4.0, 6.0, 7.0]  # each row holds its own step's metrics
  assert all(r["images_per_s"] > 0 for r in rows)


def test_a_non_finite_loss_stops_the_run_at_its_step(tmp_path):
  bad = lambda s: jnp.float32("nan") if s == 2 else _batch(s)
  with pytest.raises(FloatingPointError, match=r"step 3: .*batch=nan"):
    loop.run(_config(), tmp_path, _fresh(), _step, bad, jax.random.key(0), images_per_step=4)


def test_a_time_limit_stops_early_and_the_same_command_resumes_to_the_same_state(
  tmp_path, monkeypatch
):
  clock = [0.0]
  monkeypatch.setattr(loop, "time", types.SimpleNamespace(
    monotonic=lambda: clock[0], perf_counter=lambda: clock[0] + 1e-3))  # fmt: skip
  tick = lambda n, s: clock.__setitem__(0, clock[0] + 25.0)  # each step takes 25 "seconds"
  cut = _run(_config(time_limit_minutes=1.0), tmp_path / "cut", after_step=tick)
  assert int(cut.step) == 3  # steps start at 0, 25 and 50 s; the one due at 75 s would pass 60 s
  resumed = _run(_config(time_limit_minutes=None), tmp_path / "cut")
  whole = _run(_config(), tmp_path / "whole")
  assert int(resumed.step) == int(whole.step) == 6 and float(resumed.total) == float(whole.total)
  assert [r["step"] for r in tlog.read_metrics(tmp_path / "cut")] == [2, 3, 4, 6]


def test_setup_makes_the_workdir_the_mesh_and_the_training_key(tmp_path):
  config = ml_collections.ConfigDict(dict(seed=3, batch_size=8, num_devices=1))
  workdir, mesh, key = loop.setup(config, tmp_path / "a" / "b")
  assert workdir.is_dir() and mesh.size == 1
  want = jax.random.fold_in(jax.random.key(3), 1)
  assert (jax.random.key_data(key) == jax.random.key_data(want)).all()
  config.num_devices, config.batch_size = 8, 12  # conftest gives 8 host devices
  with pytest.raises(ValueError, match="12"):
    loop.setup(config, tmp_path)
