"""The training machinery: a step learns, 1 device == 8 devices, checkpoints resume exactly, no retracing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from experiments.autoencoder import train as ae_train
from experiments.autoencoder.configs import dense, variants
from genjax.data import tfds as data
from genjax.models import autoencoder
from genjax.train import checkpoint, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate

ROOT = Path(__file__).resolve().parents[1]


def _setup(mesh, loss=None, tx=None):
  cfg = autoencoder.AutoencoderConfig(kind="dense", hidden=(64,), latent_dim=8)
  tx = tx or optax.adam(1e-3)
  graphdef, state = tstate.create(lambda: autoencoder.make(cfg, rngs=nnx.Rngs(0)), tx, mesh)
  loss_cfg = loss or ae_train.LossConfig(penalty="l2", weight_decay=1e-3)
  step = tstate.make_train_step(
    graphdef, tx, lambda m, x, k: ae_train.loss_fn(m, x, k, cfg=loss_cfg)
  )
  return graphdef, state, step


def test_steps_lower_the_loss_on_a_fixed_batch(key):
  mesh = sharding.make_mesh(1)
  _, state, step = _setup(mesh)
  x = sharding.shard_batch(data.mock(32).x, mesh)
  losses = []
  for _ in range(30):
    state, m = step(state, x, key)
    losses.append(float(m["loss"]))
  assert losses[-1] < 0.8 * losses[0], losses
  assert int(state.step) == 30


@pytest.mark.parametrize(
  "loss",
  [
    ae_train.LossConfig(penalty="l1", weight_decay=1e-3),
    ae_train.LossConfig(contractive=0.1, denoise="masking", noise_level=0.2),
  ],
)
def test_one_device_equals_eight_devices(key, loss):
  """The sharded step computes the same gradients: plain SGD, whose update is linear in the gradient.

  (Adam divides by sqrt(v); for weights whose gradient is ~0 it turns summation-order rounding into
  O(lr) differences, which says nothing about the data-parallel step.)
  """
  assert len(jax.devices()) == 8, "conftest sets 8 fake CPU devices"
  x = data.mock(64).x
  params = []
  for n in (1, 8):
    mesh = sharding.make_mesh(n)
    _, state, step = _setup(mesh, loss, optax.sgd(0.1))
    for s in range(3):
      state, _ = step(state, sharding.shard_batch(x[16 * s : 16 * s + 16], mesh), key)
    params.append(jax.device_get(state.params))
  chex.assert_trees_all_close(params[0], params[1], rtol=1e-5, atol=1e-6)


def test_batches_are_split_over_the_mesh():
  mesh = sharding.make_mesh(8)
  x = sharding.shard_batch(np.zeros((16, 4)), mesh)
  assert len(x.addressable_shards) == 8 and x.addressable_shards[0].data.shape == (2, 4)
  with pytest.raises(ValueError, match="not divisible"):
    sharding.check_batch_size(12, mesh)


def test_no_recompilation_after_first_step(key):
  mesh = sharding.make_mesh(2)
  cfg = autoencoder.AutoencoderConfig(kind="dense", hidden=(16,), latent_dim=4)
  tx = optax.sgd(0.1)
  graphdef, state = tstate.create(lambda: autoencoder.make(cfg, rngs=nnx.Rngs(0)), tx, mesh)
  loss = chex.assert_max_traces(
    lambda m, x, k: ae_train.loss_fn(m, x, k, cfg=ae_train.LossConfig()), n=1
  )
  step = tstate.make_train_step(graphdef, tx, loss)
  x = data.mock(64).x
  for s in range(4):
    state, _ = step(state, sharding.shard_batch(x[16 * s : 16 * s + 16], mesh), key)
  assert step._cache_size() == 1


def test_train_steps_compile_without_ynnpack_fusions_on_cpu(key):
  """make_train_step compiles through jit_step, which on the CPU turns YNNPACK fusion off, and a
  step so compiled computes what plain jit and NumPy compute."""
  assert jax.default_backend() == "cpu"
  mesh = sharding.make_mesh(1)
  _, state, step = _setup(mesh)
  x = sharding.shard_batch(data.mock(16).x, mesh)
  assert "__ynn_fusion" not in step.lower(state, x, key).compile().as_text()
  rng = np.random.default_rng(0)
  a, b = (rng.standard_normal(s).astype(np.float32) for s in ((64, 48), (48, 32)))
  f = lambda a, b: jax.nn.relu(a @ b + 1.0)
  compiled = tstate.jit_step(f).lower(a, b).compile()
  assert "__ynn_fusion" not in compiled.as_text()
  want = np.maximum(a.astype(np.float64) @ b + 1.0, 0.0)
  np.testing.assert_allclose(compiled(a, b), want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(compiled(a, b), jax.jit(f)(a, b), rtol=1e-5, atol=1e-5)


def test_jit_step_falls_back_to_default_compilation_where_the_option_is_unknown(monkeypatch):
  """On an XLA without the option (an older jaxlib) steps compile as plain jit would."""
  monkeypatch.setattr(tstate, "CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option_in_any_xla": ""})
  tstate._step_compiler_options.cache_clear()
  try:
    assert tstate._step_compiler_options() is None
    assert float(tstate.jit_step(lambda v: 2 * v)(np.float32(3))) == 6.0
  finally:
    tstate._step_compiler_options.cache_clear()


def test_checkpoint_round_trip(tmp_path, key):
  mesh = sharding.make_mesh(1)
  _, state, step = _setup(mesh)
  state, _ = step(state, sharding.shard_batch(data.mock(16).x, mesh), key)
  ckpt = checkpoint.Checkpointer(tmp_path, every=1)
  assert ckpt.maybe_save(1, state)
  _, fresh, _ = _setup(mesh)
  restored = ckpt.restore(fresh)
  chex.assert_trees_all_equal(jax.device_get(restored), jax.device_get(state))
  assert ckpt.latest_step() == 1
  ckpt.close()


def _smoke(num_steps, **overrides):
  c = variants.apply(variants.base("dense"), "denoising,smoke")
  c.model.hidden, c.num_steps, c.checkpoint_every = (32,), num_steps, 3
  c.update(overrides)
  return c


def _final_params(workdir):
  ckpt = checkpoint.Checkpointer(Path(workdir) / "checkpoints", every=0)
  _, template, _ = ae_train.build(_smoke(1), sharding.make_mesh())
  out = jax.device_get(ckpt.restore(template))
  ckpt.close()
  return out


def test_killed_process_resumes_to_the_same_parameters(tmp_path):
  """SIGKILL a real training process mid-run, restart it, and compare with an uninterrupted run."""
  n = 40
  args = [sys.executable, str(ROOT / "scripts/train.py"),
          f"--config={ROOT}/experiments/autoencoder/configs/dense.py:denoising,smoke",
          "--config.model.hidden=(32,)", f"--config.num_steps={n}", "--config.checkpoint_every=3",
          f"--workdir={tmp_path / 'killed'}"]  # fmt: skip
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
  proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  metrics = tmp_path / "killed" / "metrics.jsonl"
  logged = lambda: len(metrics.read_text().splitlines()) if metrics.exists() else 0
  deadline = time.time() + 900  # start-up and compilation on a loaded 2-core machine take minutes
  while time.time() < deadline and proc.poll() is None and logged() < 10:
    time.sleep(0.05)
  assert proc.poll() is None, (
    f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
  )
  if logged() < 10:
    proc.kill()
    pytest.fail("the training process logged fewer than 10 steps in 900 s; nothing to resume")
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = len(tlog.read_metrics(tmp_path / "killed"))
  assert 10 <= done < n
  subprocess.run(args, env=env, check=True, capture_output=True)
  ae_train.train_and_evaluate(_smoke(n), tmp_path / "full")
  chex.assert_trees_all_equal(_final_params(tmp_path / "full"), _final_params(tmp_path / "killed"))
  steps = [r["step"] for r in tlog.read_metrics(tmp_path / "killed") if "loss" in r]
  assert steps == list(range(1, n + 1)), "the resumed log reads as one uninterrupted run"


def test_nan_stops_the_run_naming_step_and_term(tmp_path):
  with pytest.raises(FloatingPointError, match=r"step 2: .*recon=nan"):
    ae_train.train_and_evaluate(_smoke(4, learning_rate=1e38), tmp_path)


def test_check_finite_names_the_term():
  with pytest.raises(FloatingPointError, match=r"step 7: penalty=inf"):
    tstate.check_finite({"recon": jnp.array(1.0), "penalty": jnp.array(jnp.inf)}, 7)
  tstate.check_finite({"recon": jnp.array(1.0)}, 7)  # finite: no error


def test_smoke_run_writes_outputs(tmp_path):
  results = ae_train.train_and_evaluate(dense.get_config("smoke"), tmp_path)
  for name in ("results.json", "metrics.jsonl", "reconstructions.png"):
    assert (tmp_path / name).exists(), name
  assert any((tmp_path / "tensorboard").iterdir())
  assert np.isfinite(results["test_mse"]) and results["step"] == 2


def test_tensorboard_events_read_back(tmp_path):
  """Parses the event file with its TFRecord framing: [len u64][crc u32][Event proto][crc u32]."""
  import struct

  from tensorboard.compat.proto import event_pb2

  writer = tlog.MetricWriter(tmp_path)
  writer.write_scalars(3, {"loss": 0.5, "recon": 0.25})
  writer.close()
  (path,) = (tmp_path / "tensorboard").iterdir()
  raw, events = path.read_bytes(), []
  while raw:
    (n,) = struct.unpack("<Q", raw[:8])
    events.append(event_pb2.Event.FromString(raw[12 : 12 + n]))
    raw = raw[12 + n + 4 :]
  assert events[0].file_version == "brain.Event:2"
  assert events[1].step == 3
  assert {v.tag: v.simple_value for v in events[1].summary.value} == {"loss": 0.5, "recon": 0.25}
  assert tlog.read_metrics(tmp_path)[0]["loss"] == 0.5


class _BatchNormNet(nnx.Module):
  def __init__(self, *, rngs: nnx.Rngs):
    self.linear = nnx.Linear(3, 2, rngs=rngs)
    self.norm = nnx.BatchNorm(2, momentum=0.5, rngs=rngs)

  def __call__(self, x):
    return self.norm(self.linear(x))


def test_train_step_updates_batch_statistics_to_the_batch_moments():
  """Batch norm's running mean moves to momentum * 0 + (1 - momentum) * (batch mean) in one step."""
  tx = optax.sgd(0.0)  # parameters stay put, so the statistics are those of the initial layer
  mesh = sharding.make_mesh(1)
  graphdef, state = tstate.create(lambda: _BatchNormNet(rngs=nnx.Rngs(0)), tx, mesh)
  step = tstate.make_train_step(graphdef, tx, lambda m, x, k: (m(x).sum(), {}))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 3)), jnp.float32)
  h = nnx.merge(graphdef, state.params, state.rest).linear(x)
  state, _ = step(state, x, jax.random.key(0))
  mean = nnx.merge(graphdef, state.params, state.rest).norm.mean[...]
  np.testing.assert_allclose(mean, 0.5 * h.mean(0), rtol=1e-5, atol=1e-7)
