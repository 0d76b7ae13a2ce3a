"""Conv-autoencoder training throughput: genjax against the same model in PyTorch, side by side.

  python scripts/bench_autoencoder.py [--batch 128] [--seconds 20] [--devices 1]

One run measures, each in its own process (so thread pools and peak memory do not mix):
  genjax          the library model (nn.Conv, nn.ConvTranspose2x: matrix-product forms) + jitted step
  genjax-Ndev     the same, each batch split over N XLA CPU devices (--devices; genjax.bench)
  genjax-naive    the same model with XLA's own lax.conv_transpose (what a direct port gives)
  pytorch         the same architecture in torch.nn (ConvTranspose2d), eager, same weights
A training step is forward + BCE-with-logits + backward + Adam, float32, on random [0, 1] images.
Before timing, the PyTorch model is loaded with genjax's initial weights and the two forward passes
are compared, so both sides compute the same function (PyTorch side: genjax.bench.torch_peers).
Needs: pip install torch==2.13.0 (CPU).
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genjax import bench  # noqa: E402


def _genjax_model():
  from flax import nnx

  from genjax.models import autoencoder

  cfg = autoencoder.AutoencoderConfig(kind="conv", hidden=(32, 64), latent_dim=32)
  return autoencoder.make(cfg, rngs=nnx.Rngs(0))


def run_jax(batch: int, seconds: float, naive: bool, devices: int = 1) -> dict:
  import jax
  import optax

  from experiments.autoencoder import train as ae_train
  from genjax import nn
  from genjax.train import sharding
  from genjax.train import state as tstate

  if naive:  # XLA's transposed convolution: a conv over the zero-dilated input

    def conv_transpose(x, w):
      return jax.lax.conv_transpose(x, w.swapaxes(2, 3), (2, 2), ((2, 2), (2, 2)),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)  # fmt: skip

    nn.ConvTranspose2x.__call__ = lambda self, x: (
      conv_transpose(x, self.kernel[...]) + self.bias[...]
    )
  tx = optax.adam(1e-3)
  mesh = sharding.make_mesh(devices)
  graphdef, state = tstate.create(_genjax_model, tx, mesh)
  cfg = ae_train.LossConfig(reconstruction="bce")
  train_step = tstate.make_train_step(
    graphdef, tx, lambda m, x, k: ae_train.loss_fn(m, x, k, cfg=cfg)
  )
  x = np.random.default_rng(0).uniform(size=(batch, 28, 28, 1)).astype(np.float32)
  x = sharding.shard_batch(x, mesh)
  key = jax.random.key(0)
  box = [state]

  def step():
    box[0], metrics = train_step(box[0], x, key)
    metrics["loss"].block_until_ready()

  return bench.timeit(step, seconds, batch) | {"backend": jax.default_backend()}


def run_torch(batch: int, seconds: float) -> dict:
  from genjax.bench import torch_peers

  x = np.random.default_rng(0).uniform(size=(batch, 28, 28, 1)).astype(np.float32)
  return torch_peers.time_autoencoder(_genjax_model(), x, seconds)


def main():
  p = bench.arguments(__doc__, batch=128, sides=("genjax", "genjax-naive", "pytorch"))
  a = p.parse_args()
  if a.only:
    if a.only == "pytorch":
      return bench.side(a, lambda: run_torch(a.batch, a.seconds))
    return bench.side(
      a, lambda: run_jax(a.batch, a.seconds, a.only == "genjax-naive", int(a.devices))
    )
  bench.compare(a, __file__, f"conv autoencoder training step, batch {a.batch}, float32",
                others=("genjax-naive", "pytorch"),
                note=lambda rows: f"pytorch threads: {rows['pytorch']['threads']}; max |torch - genjax| "
                                  f"forward: {rows['pytorch']['max_abs_diff_vs_genjax']:.2e}")  # fmt: skip


if __name__ == "__main__":
  main()
