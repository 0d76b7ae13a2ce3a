"""Conv VAE (3x3 s2 convs 32, 64 -> (mu, logvar in R^20); two 4x4 s2 transposed convs up), Bernoulli pixels.

Run:
  python scripts/train.py --config experiments/vae/configs/conv.py:beta1 --workdir runs/vae/conv-beta1
Variants (comma-separated): beta0.5, beta1, beta4, warmup, latent2, gaussian, gaussian_learned, smoke.
Expected (CPU, 2 cores, ~5-10 min for 1 epoch): see the results table in experiments/vae/README.md.
"""

from experiments.vae.configs import variants


def get_config(arg: str | None = None):
  return variants.apply(variants.base("conv"), arg)
