"""VAE training throughput: genjax against the same model in PyTorch, side by side in one run.

  python scripts/bench_vae.py [--model dense,conv] [--batch 128] [--seconds 20] [--repeats 3]
                              [--devices 1,2]

Each implementation runs in its own process (thread pools and peak memory do not mix). A training
step is: dynamic binarization x_b ~ Bernoulli(x), encoder -> (mu, logvar), z = mu + sigma * eps,
decoder logits, -ELBO = Bernoulli NLL summed over pixels + closed-form KL, batch mean, backward,
Adam; float32 on random [0, 1] images. The PyTorch model is loaded with genjax's initial weights and
both decoders are run on the same eps first, so both sides compute the same function.
genjax runs once per --devices entry: "genjax" on one XLA CPU device, "genjax-Ndev" with each batch
split over N XLA CPU devices (data parallel; genjax.bench.host_devices). PyTorch side:
genjax.bench.torch_peers. Needs: pip install torch==2.13.0 (CPU).
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


def run_torch(kind: str, batch: int, seconds: float) -> dict:
  from genjax.bench import torch_peers

  return torch_peers.time_vae(kind, _genjax_model(kind), _images(batch), seconds)


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
