"""GAN training throughput (one D step + one G step): genjax against the same models in PyTorch.

  python scripts/bench_gan.py [--batch 64] [--seconds 20] [--repeats 1] [--devices 1]

Each framework runs in its own process. One training step is the non-saturating DCGAN update of
experiments/gan: a discriminator step (G forward under no-grad, D forward + backward on real and
fake, Adam) then a generator step (G and D forward, backward into G, Adam), float32, on random
[0, 1] images. The PyTorch pair is loaded with genjax's initial weights and both forward passes
are compared first, so both sides compute the same function. genjax runs once per --devices entry:
"genjax" on one XLA CPU device, "genjax-Ndev" with each batch split over N XLA CPU devices (data
parallel; genjax.bench.host_devices). Needs: pip install torch==2.13.0.
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


def torch_models():
  import torch
  from torch import nn

  class ChannelNorm(nn.LayerNorm):  # flax LayerNorm over the channels of NHWC, eps 1e-6
    def forward(self, h):
      return super().forward(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

  class G(nn.Module):
    def __init__(self):
      super().__init__()
      self.fc = nn.Linear(64, 7 * 7 * 64)
      self.n1, self.n2 = ChannelNorm(64, eps=1e-6), ChannelNorm(32, eps=1e-6)
      self.up1, self.up2 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, z):
      h = self.fc(z).view(-1, 64, 7, 7)
      return torch.sigmoid(self.up2(torch.relu(self.n2(self.up1(torch.relu(self.n1(h)))))))

  class D(nn.Module):
    def __init__(self):
      super().__init__()
      self.c1, self.c2 = nn.Conv2d(1, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1)
      self.fc = nn.Linear(7 * 7 * 64, 1)

    def forward(self, x):
      h = nn.functional.leaky_relu(self.c1(2 * x - 1), 0.2)
      return self.fc(nn.functional.leaky_relu(self.c2(h), 0.2).flatten(1))[:, 0]

  return G(), D()


def load_genjax_weights(tg, td, jg, jd) -> None:
  """Copies genjax (NHWC, HWIO, flattened h-w-c) weights into the PyTorch (NCHW) pair."""
  bench.copy_linear(tg.fc, jg.fc, cols=(7, 7, 64))
  bench.copy_norm(tg.n1, jg.norms[0]), bench.copy_norm(tg.n2, jg.norms[1])
  bench.copy_up(tg.up1, jg.ups[0]), bench.copy_up(tg.up2, jg.ups[1])
  bench.copy_conv(td.c1, jd.convs[0]), bench.copy_conv(td.c2, jd.convs[1])
  bench.copy_linear(td.fc, jd.fc, rows=(7, 7, 64))


def run_torch(batch: int, seconds: float) -> dict:
  import torch
  from torch.nn.functional import softplus

  torch.manual_seed(0)
  (tg, td), (jg, jd) = torch_models(), _genjax_models()
  load_genjax_weights(tg, td, jg, jd)
  rng = np.random.default_rng(0)
  z_np = rng.standard_normal((batch, 64)).astype(np.float32)
  x_np = rng.uniform(size=(batch, 28, 28, 1)).astype(np.float32)
  x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    g_diff = np.abs(tg(torch.from_numpy(z_np)).numpy().transpose(0, 2, 3, 1) - jg(z_np)[1]["x"])
    d_diff = np.abs(td(x).numpy() - np.asarray(jd(x_np)[0]))
  g_opt = torch.optim.Adam(tg.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(td.parameters(), lr=2e-4, betas=(0.5, 0.999))

  def step():
    with torch.no_grad():
      fake = tg(torch.randn(batch, 64))
    d_opt.zero_grad(set_to_none=True)
    d_loss = softplus(-td(x)).mean() + softplus(td(fake)).mean()
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    g_loss = softplus(-td(tg(torch.randn(batch, 64)))).mean()
    g_loss.backward()  # also fills D's grads; they are cleared before the next D step
    g_opt.step()
    g_loss.item()

  return bench.torch_timeit(
    step, seconds, batch, max_abs_diff_g=float(np.max(g_diff)), max_abs_diff_d=float(np.max(d_diff))
  )


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
