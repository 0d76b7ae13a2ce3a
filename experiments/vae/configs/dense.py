"""Dense VAE 784-512-(mu, logvar in R^20), decoder 20-512-784, Bernoulli pixels, Adam 1e-3, batch 128.

Run:
  python scripts/train.py --config experiments/vae/configs/dense.py:beta1 --workdir runs/vae/dense-beta1
Variants (comma-separated): beta0.5, beta1, beta4, warmup, latent2, gaussian, gaussian_learned, smoke.
Expected (CPU, 2 cores, a few minutes): see the results table in experiments/vae/README.md.
"""

from experiments.vae.configs import variants


def get_config(arg: str | None = None):
  return variants.apply(variants.base("dense"), arg)
