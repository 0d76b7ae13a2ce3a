"""Conv-autoencoder training throughput: genjax against the same model in PyTorch, side by side.

  python scripts/bench_autoencoder.py [--batch 128] [--seconds 20] [--devices 1]

One run measures, each in its own process (so thread pools and peak memory do not mix):
  genjax          the library model (nn.Conv, nn.ConvTranspose2x: matrix-product forms) + jitted step
  genjax-Ndev     the same, each batch split over N XLA CPU devices (--devices; genjax.bench)
  genjax-naive    the same model with XLA's own lax.conv_transpose (what a direct port gives)
  pytorch         the same architecture in torch.nn (ConvTranspose2d), eager, same weights
A training step is forward + BCE-with-logits + backward + Adam, float32, on random [0, 1] images.
Before timing, the PyTorch model is loaded with genjax's initial weights and the two forward passes
are compared, so both sides compute the same function. Needs: pip install torch==2.13.0 (CPU).
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


def torch_model():
  import torch
  from torch import nn

  class ConvAE(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 2, 1), nn.Conv2d(32, 64, 3, 2, 1)
      self.to_z, self.from_z = nn.Linear(7 * 7 * 64, 32), nn.Linear(32, 7 * 7 * 64)
      self.up1, self.up2 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, x):
      h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
      z = self.to_z(h.flatten(1))
      h = torch.relu(self.from_z(z)).view(-1, 64, 7, 7)
      return self.up2(torch.relu(self.up1(h)))

  return ConvAE()


def load_genjax_weights(tm, jm) -> None:
  """Copies genjax (NHWC, HWIO) weights into the PyTorch (NCHW, OIHW) model."""
  bench.copy_conv(tm.conv1, jm.conv1), bench.copy_conv(tm.conv2, jm.conv2)
  bench.copy_linear(tm.to_z, jm.to_z, rows=(7, 7, 64))
  bench.copy_linear(tm.from_z, jm.from_z, cols=(7, 7, 64))
  bench.copy_up(tm.up1, jm.up1), bench.copy_up(tm.up2, jm.up2)


def run_torch(batch: int, seconds: float) -> dict:
  import torch

  torch.manual_seed(0)
  tm, jm = torch_model(), _genjax_model()
  load_genjax_weights(tm, jm)
  x_np = np.random.default_rng(0).uniform(size=(batch, 28, 28, 1)).astype(np.float32)
  x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    diff = np.abs(tm(x).numpy().transpose(0, 2, 3, 1) - np.asarray(jm(x_np)[0])).max()
  opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
  loss_fn = torch.nn.BCEWithLogitsLoss()

  def step():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(tm(x), x)
    loss.backward()
    opt.step()
    loss.item()

  return bench.torch_timeit(step, seconds, batch, max_abs_diff_vs_genjax=float(diff))


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
