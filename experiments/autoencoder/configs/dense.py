"""Dense autoencoder 784-512-256-32 on Fashion-MNIST, Adam 1e-3, batch 128, 10 epochs.

Run:
  python scripts/train.py --config experiments/autoencoder/configs/dense.py:l2 --workdir runs/ae/dense-l2
Variants (comma-separated): plain, l1, l2, frobenius, sparse, denoising, contractive, mse, smoke.
Expected (CPU, 2 cores, ~1-2 min): see the results table in experiments/autoencoder/README.md.
"""

from experiments.autoencoder.configs import variants


def get_config(arg: str | None = None):
  return variants.apply(variants.base("dense"), arg)
