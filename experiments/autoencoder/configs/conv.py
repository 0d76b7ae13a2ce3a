"""Convolutional autoencoder (conv s2 x2, 32 and 64 channels, code 32, two 4x4 s2 transposed convs).

Run:
  python scripts/train.py --config experiments/autoencoder/configs/conv.py:plain --workdir runs/ae/conv-plain
Variants (comma-separated): plain, l1, l2, frobenius, sparse, denoising, contractive, mse, smoke.
Expected (CPU, 2 cores): see the results table in experiments/autoencoder/README.md.
"""

from experiments.autoencoder.configs import variants


def get_config(arg: str | None = None):
  return variants.apply(variants.base("conv"), arg)
