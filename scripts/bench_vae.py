"""VAE training throughput: genjax against the same model in PyTorch, side by side in one run.

  python scripts/bench_vae.py [--model dense,conv] [--batch 128] [--seconds 20] [--repeats 3]
                              [--devices 1,2]

Each implementation runs in its own process (thread pools and peak memory do not mix). A training
step is: dynamic binarization x_b ~ Bernoulli(x), encoder -> (mu, logvar), z = mu + sigma * eps,
decoder logits, -ELBO = Bernoulli NLL summed over pixels + closed-form KL, batch mean, backward,
Adam; float32 on random [0, 1] images. The PyTorch model is loaded with genjax's initial weights and
both decoders are run on the same eps first, so both sides compute the same function.
genjax runs once per --devices entry: "genjax" on one XLA CPU device, "genjax-Ndev" with each batch
split over N XLA CPU devices (data parallel; genjax.bench.host_devices).
Needs: pip install torch==2.13.0 (CPU).
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genjax import bench  # noqa: E402

LATENT = 20


def _genjax_model(kind: str):
  from flax import nnx

  from genjax.models import vae

  hidden = (512,) if kind == "dense" else (32, 64)
  return vae.make(vae.VAEConfig(kind=kind, hidden=hidden, latent_dim=LATENT), rngs=nnx.Rngs(0))


def _images(batch: int) -> np.ndarray:
  return np.random.default_rng(0).uniform(size=(batch, 28, 28, 1)).astype(np.float32)


def run_jax(kind: str, batch: int, seconds: float, devices: int = 1) -> dict:
  import jax
  import optax

  from experiments.vae import train as vae_train
  from genjax.train import sharding
  from genjax.train import state as tstate

  tx = optax.adam(1e-3)
  mesh = sharding.make_mesh(devices)
  graphdef, state = tstate.create(lambda: _genjax_model(kind), tx, mesh)
  step_fn = tstate.make_train_step(
    graphdef, tx, lambda m, b, k: vae_train.loss_fn(m, b, k, binarize=True)
  )
  batch_ = {"x": sharding.shard_batch(_images(batch), mesh), "beta": np.float32(1.0)}
  key, box = jax.random.key(0), [state]

  def step():
    box[0], metrics = step_fn(box[0], batch_, key)
    metrics["loss"].block_until_ready()

  return bench.timeit(step, seconds, batch) | {"backend": jax.default_backend()}


def torch_model(kind: str):
  import torch
  from torch import nn

  class VAE(nn.Module):
    def __init__(self):
      super().__init__()
      if kind == "dense":
        self.enc, self.to_stats = nn.Linear(784, 512), nn.Linear(512, 2 * LATENT)
        self.dec1, self.dec2 = nn.Linear(LATENT, 512), nn.Linear(512, 784)
      else:
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 2, 1), nn.Conv2d(32, 64, 3, 2, 1)
        self.to_stats, self.from_z = nn.Linear(7 * 7 * 64, 2 * LATENT), nn.Linear(LATENT, 3136)
        self.up1, self.up2 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def encode(self, x):  # x [B, 1, 28, 28]
      if kind == "dense":
        h = torch.relu(self.enc(x.flatten(1)))
      else:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x)))).flatten(1)
      return self.to_stats(h).chunk(2, dim=1)

    def decode(self, z):
      if kind == "dense":
        return self.dec2(torch.relu(self.dec1(z))).view(-1, 1, 28, 28)
      h = torch.relu(self.from_z(z)).view(-1, 64, 7, 7)
      return self.up2(torch.relu(self.up1(h)))

  return VAE()


def load_genjax_weights(kind: str, tm, jm) -> None:
  """Copies genjax (NHWC, HWIO, [in, out]) weights into the PyTorch (NCHW, OIHW, [out, in]) model."""
  if kind == "dense":
    bench.copy_linear(tm.enc, jm.enc[0]), bench.copy_linear(tm.to_stats, jm.to_stats)
    bench.copy_linear(tm.dec1, jm.dec[0]), bench.copy_linear(tm.dec2, jm.dec[1])
    return
  bench.copy_conv(tm.conv1, jm.conv1), bench.copy_conv(tm.conv2, jm.conv2)
  bench.copy_linear(tm.to_stats, jm.to_stats, rows=(7, 7, 64))
  bench.copy_linear(tm.from_z, jm.from_z, cols=(7, 7, 64))
  bench.copy_up(tm.up1, jm.up1), bench.copy_up(tm.up2, jm.up2)


def run_torch(kind: str, batch: int, seconds: float) -> dict:
  import torch
  import torch.nn.functional as F

  torch.manual_seed(0)
  tm, jm = torch_model(kind), _genjax_model(kind)
  load_genjax_weights(kind, tm, jm)
  x_np = _images(batch)
  x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
  eps = np.random.default_rng(1).standard_normal((batch, LATENT)).astype(np.float32)
  with torch.no_grad():
    mu, logvar = tm.encode(x)
    t_out = tm.decode(mu + torch.exp(0.5 * logvar) * torch.from_numpy(eps))
  j_mu, j_logvar = jm.encode(x_np)
  j_out = jm.decode(j_mu + np.exp(0.5 * np.asarray(j_logvar)) * eps)
  diff = np.abs(t_out.numpy().transpose(0, 2, 3, 1) - np.asarray(j_out)).max()
  opt = torch.optim.Adam(tm.parameters(), lr=1e-3)

  def step():
    opt.zero_grad(set_to_none=True)
    xb = torch.bernoulli(x)
    mu, logvar = tm.encode(xb)
    logits = tm.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
    recon = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum((1, 2, 3))
    kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)
    loss = (recon + kl).mean()
    loss.backward()
    opt.step()
    loss.item()

  return bench.torch_timeit(step, seconds, batch, max_abs_diff_vs_genjax=float(diff))


def main():
  a = bench.arguments(__doc__, batch=128, devices="1,2", models="dense,conv").parse_args()
  if a.only:
    if a.only == "pytorch":
      return bench.side(a, lambda: run_torch(a.model, a.batch, a.seconds))
    return bench.side(a, lambda: run_jax(a.model, a.batch, a.seconds, int(a.devices)))
  note = lambda rows: (f"pytorch threads: {rows['pytorch']['threads']}; max |torch - genjax| "
                       f"decoder logits: {rows['pytorch']['max_abs_diff_vs_genjax']:.2e}")  # fmt: skip
  for kind in a.model.split(","):
    bench.compare(a, __file__, f"{kind} VAE training step, batch {a.batch}, float32",
                  extra=("--model", kind), label=kind, note=note)  # fmt: skip


if __name__ == "__main__":
  main()
