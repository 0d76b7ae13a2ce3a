"""GAN training throughput (one D step + one G step): genjax against the same models in PyTorch.

  python scripts/bench_gan.py [--batch 64] [--seconds 20] [--repeats 1] [--devices 1]

Each framework runs in its own process. One training step is the non-saturating DCGAN update of
experiments/gan: a discriminator step (G forward under no-grad, D forward + backward on real and
fake, Adam) then a generator step (G and D forward, backward into G, Adam), float32, on random
[0, 1] images. The PyTorch pair is loaded with genjax's initial weights and both forward passes
are compared first, so both sides compute the same function. genjax runs once per --devices entry:
"genjax" on one XLA CPU device, "genjax-Ndev" with each batch split over N XLA CPU devices (data
parallel; genjax.bench.host_devices). PyTorch side: genjax.bench.torch_peers. Needs: pip install
torch==2.13.0.
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genjax import bench  # noqa: E402

WIDTHS = dict(image_shape=(28, 28, 1), latent_dim=64, g_widths=(64, 32), d_widths=(32, 64))


def _genjax_models():
  from flax import nnx

  from genjax.models import gan

  cfg = gan.GANConfig(**WIDTHS)
  return gan.Generator(cfg, rngs=nnx.Rngs(0)), gan.Discriminator(cfg, rngs=nnx.Rngs(1))


def run_jax(batch: int, seconds: float, devices: int = 1) -> dict:
  import jax
  import ml_collections

  from experiments.gan import train as gan_train
  from experiments.gan.configs import dcgan
  from genjax.models import gan
  from genjax.train import sharding

  config = dcgan.get_config("ns")
  config.model = ml_collections.ConfigDict(WIDTHS)
  g_tx, d_tx = gan_train.optimizers(config)
  mesh = sharding.make_mesh(devices)
  g_def, d_def, state = gan_train.create(
    gan.GANConfig(**WIDTHS), g_tx, d_tx, jax.random.key(0), mesh
  )
  step_fn = gan_train.make_train_step(g_def, d_def, g_tx, d_tx, gan_train.LossConfig())
  x = np.random.default_rng(0).uniform(size=(batch, 28, 28, 1)).astype(np.float32)
  x = sharding.shard_batch(x, mesh)
  key, box = jax.random.key(1), [state]

  def step():
    box[0], metrics = step_fn(box[0], x, key)
    metrics["loss"].block_until_ready()

  return bench.timeit(step, seconds, batch) | {"backend": jax.default_backend()}


def run_torch(batch: int, seconds: float) -> dict:
  from genjax.bench import torch_peers

  return torch_peers.time_gan(*_genjax_models(), batch, seconds)


def main():
  a = bench.arguments(__doc__, batch=64).parse_args()
  if a.only:
    run = run_torch if a.only == "pytorch" else lambda b, s: run_jax(b, s, int(a.devices))
    return bench.side(a, lambda: run(a.batch, a.seconds))
  note = lambda rows: (f"pytorch threads: {rows['pytorch']['threads']}; max |torch - genjax| "
                       f"forward: G {rows['pytorch']['max_abs_diff_g']:.2e}, "
                       f"D {rows['pytorch']['max_abs_diff_d']:.2e}")  # fmt: skip
  bench.compare(a, __file__, f"DCGAN training step (1 D step + 1 G step), batch {a.batch}, float32",
                note=note)  # fmt: skip


if __name__ == "__main__":
  main()
