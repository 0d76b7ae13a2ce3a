"""Face-swap training throughput at 100x100x3: genjax against the same models in PyTorch, side by side.

  python scripts/bench_faceswap.py [--model a,c] [--batch 16] [--seconds 30] [--torch_device cpu]
                                   [--repeats 1] [--devices 1]

Each implementation runs in its own process (thread pools and peak memory do not mix). Both sides
train on one fixed batch of random [0, 1] faces that stands for an already augmented batch (the
augmentation of genjax.data.faces is left out of both, so the numbers compare the update steps):
  (a) shared encoder, one decoder per identity (experiments/faceswap): one Adam step on
      sum_{i in A, B} [MSE + DSSIM](sigmoid(D_i(E(x_i))), x_i), batch faces per identity;
  (c) identity-injection generator (experiments/simswap): one discriminator step (fakes under
      no-grad; hinge on two PatchGAN scales + WGAN-GP, whose input gradient is differentiated
      again) then one generator step (hinge + identity loss through the frozen identity net +
      masked L1 reconstruction + weak feature matching), each with its own Adam state.
The genjax side is the library's own loss and step code (experiments.faceswap.train.recon_loss,
experiments.simswap.train.d_step / g_step), jitted. The PyTorch models are loaded with genjax's
initial weights and the forward passes are compared before timing (the "max |torch - genjax|"
lines), so both sides compute the same function; PyTorch runs eagerly, as its training loops do.
genjax runs once per --devices entry: "genjax" on one XLA device, "genjax-Ndev" with each batch split
over N XLA CPU devices (data parallel; genjax.bench.host_devices).
Needs: pip install torch==2.13.0 (CPU wheel; a CUDA build for --torch_device cuda).
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genjax import bench  # noqa: E402

SHAPE = (100, 100, 3)


# --- genjax -----------------------------------------------------------------------------------


def _swap_config():
  from experiments.faceswap.configs import shared_encoder
  from genjax.models import faceswap

  return faceswap.SwapConfig(**shared_encoder.get_config().model.to_dict())


def _simswap_configs():
  from experiments.identity.configs import identity as id_configs
  from experiments.simswap.configs import simswap as ss_configs
  from genjax.models import identity, simswap

  id_cfg = identity.IdentityConfig(**id_configs.get_config().model.to_dict())
  return simswap.SimSwapConfig(**ss_configs.get_config().model.to_dict()), id_cfg


def _faces(batch: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).uniform(size=(batch, *SHAPE)).astype(np.float32)


def jax_swap_model():
  from flax import nnx

  from genjax import nn
  from genjax.models import faceswap

  return nn.build(lambda: faceswap.SharedEncoderSwap(_swap_config(), rngs=nnx.Rngs(0)))


def run_jax_a(batch: int, seconds: float, devices: int = 1) -> dict:
  import jax
  import optax

  from experiments.faceswap import train as swap_train
  from experiments.faceswap.configs import shared_encoder
  from genjax.train import sharding
  from genjax.train import state as tstate

  config = shared_encoder.get_config()
  cfg = swap_train.LossConfig(**config.loss.to_dict())
  tx = optax.adam(config.learning_rate, b1=0.5, b2=0.999)
  mesh = sharding.make_mesh(devices)
  graphdef, state = tstate.create(jax_swap_model, tx, mesh)

  def loss_fn(model, xs, key):
    del key
    face = jax.numpy.ones(xs[0].shape[:3])  # the whole crop counts, as on the PyTorch side
    loss = sum(swap_train.recon_loss(model, x, x, face, i, cfg)[0] for i, x in enumerate(xs))
    return loss, {"loss": loss}

  step_fn = tstate.make_train_step(graphdef, tx, loss_fn)
  xs = sharding.shard_batch((_faces(batch, 0), _faces(batch, 1)), mesh)
  key, box = jax.random.key(0), [state]

  def step():
    box[0], metrics = step_fn(box[0], xs, key)
    metrics["loss"].block_until_ready()

  return bench.timeit(step, seconds, 2 * batch) | {"backend": jax.default_backend()}


def jax_simswap_models():
  from flax import nnx

  from genjax import nn
  from genjax.models import identity, simswap

  cfg, id_cfg = _simswap_configs()
  g = nn.build(lambda: simswap.Generator(cfg, rngs=nnx.Rngs(0)))
  d = nn.build(lambda: simswap.MultiScaleDiscriminator(cfg, rngs=nnx.Rngs(1)))
  f = nn.build(lambda: identity.IdentityNet(id_cfg, rngs=nnx.Rngs(2)))
  return g, d, f


def run_jax_c(batch: int, seconds: float, devices: int = 1) -> dict:
  import jax
  import optax
  from flax import nnx

  from experiments.simswap import train as ss_train
  from experiments.simswap.configs import simswap as ss_configs
  from genjax.train import sharding
  from genjax.train import state as tstate

  config = ss_configs.get_config()
  cfg = ss_train.LossConfig(**config.loss.to_dict())
  g_tx = optax.adam(config.learning_rate, b1=0.0, b2=0.99)
  d_tx = optax.adam(config.d_learning_rate, b1=0.0, b2=0.99)
  mesh = sharding.make_mesh(devices)
  _, _, f = jax_simswap_models()
  f_def, f_params, f_rest = nnx.split(f, nnx.Param, ...)
  model_cfg, _ = _simswap_configs()
  defs, state = ss_train.create(model_cfg, g_tx, d_tx, jax.random.key(0), mesh, f_def,
                                (f_params, f_rest))  # fmt: skip

  @tstate.jit_step
  def step_fn(state, x_t, key):  # experiments.simswap.train.make_train_step minus augmentation
    x_s, same = ss_train.make_pairs(x_t, cfg.same_fraction)
    v_s = jax.lax.stop_gradient(ss_train.identity_vector(defs, state, x_s))
    fake = jax.lax.stop_gradient(jax.nn.sigmoid(ss_train.generator(defs, state)(x_t, v_s)))
    key = jax.random.fold_in(key, state.step)
    state, d_terms = ss_train.d_step(state, x_t, fake, key, defs=defs, d_tx=d_tx, cfg=cfg)
    state, g_terms = ss_train.g_step(state, x_t, v_s, same, key, defs=defs, g_tx=g_tx, cfg=cfg)
    return state.replace(step=state.step + 1), d_terms["d_loss"] + g_terms["g_loss"]

  x = sharding.shard_batch(_faces(batch), mesh)
  key, box = jax.random.key(1), [state]

  def step():
    box[0], loss = step_fn(box[0], x, key)
    loss.block_until_ready()

  return bench.timeit(step, seconds, batch) | {"backend": jax.default_backend()}


# --- PyTorch (genjax.bench.torch_peers) ---------------------------------------------------------


def run_torch_a(batch: int, seconds: float, device: str) -> dict:
  from experiments.faceswap.configs import shared_encoder
  from genjax.bench import torch_peers

  config = shared_encoder.get_config()
  return torch_peers.time_swap(_swap_config(), jax_swap_model(), (_faces(batch, 0), _faces(batch, 1)),
                               seconds, lr=config.learning_rate, mse=config.loss.mse,
                               dssim=config.loss.dssim, device=device)  # fmt: skip


def run_torch_c(batch: int, seconds: float, device: str) -> dict:
  from experiments.simswap.configs import simswap as ss_configs
  from genjax.bench import torch_peers

  config = ss_configs.get_config()
  return torch_peers.time_injection(*_simswap_configs(), *jax_simswap_models(), _faces(batch), seconds,
                                    lr=config.learning_rate, d_lr=config.d_learning_rate,
                                    loss=config.loss.to_dict(), device=device)  # fmt: skip


# --- driver -----------------------------------------------------------------------------------


def main():
  p = bench.arguments(__doc__, batch=16, seconds=30.0, models="a,c",
                      models_help="a (shared encoder), c (identity injection)")  # fmt: skip
  p.add_argument("--torch_device", default="cpu")
  a = p.parse_args()
  if a.only:
    if a.only == "genjax":
      return bench.side(a, lambda: {"a": run_jax_a, "c": run_jax_c}[a.model](
        a.batch, a.seconds, int(a.devices)))  # fmt: skip
    return bench.side(a, lambda: {"a": run_torch_a, "c": run_torch_c}[a.model](
      a.batch, a.seconds, a.torch_device))  # fmt: skip
  what = {"a": "(a) shared encoder, 2 decoders: one Adam step on both identities",
          "c": "(c) identity injection: one D step (hinge + WGAN-GP) + one G step"}  # fmt: skip
  for model in a.model.split(","):
    if model not in what:
      raise SystemExit(f"--model: unknown model {model!r}; choose from a, c")
    per = " per identity" if model == "a" else ""
    note = lambda rows: (
      f"genjax backend: {next((r['backend'] for n, r in rows.items() if n != 'pytorch'), '-')}; "
      f"pytorch device: {a.torch_device}, threads: {rows['pytorch']['threads']}; "
      f"max |torch - genjax| before training: {rows['pytorch']['max_abs_diff_vs_genjax']}")  # fmt: skip
    bench.compare(a, __file__, f"{what[model]}; 100x100x3, batch {a.batch}{per}, float32",
                  extra=("--model", model, "--torch_device", a.torch_device), label=model,
                  note=note)  # fmt: skip


if __name__ == "__main__":
  main()
