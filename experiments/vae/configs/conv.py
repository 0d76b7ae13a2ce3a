"""Conv VAE (3x3 s2 convs 32, 64 -> (mu, logvar in R^20); two 4x4 s2 transposed convs up), Bernoulli pixels.

Run:
  python scripts/train.py --config experiments/vae/configs/conv.py:beta1 --workdir runs/vae/conv-beta1
Variants (comma-separated): beta0.5, beta1, beta4, warmup, latent2, gaussian, gaussian_learned, smoke.
Expected (CPU, 2 cores, ~5-10 min for 1 epoch): see the results table in experiments/vae/README.md.
On a multi-core CPU, splitting each batch over one XLA device per core runs this model's many small
ops side by side (2 cores: 1.26x to 1.54x PyTorch's step against 0.90x to 1.04x on one device,
the README's speed section); the step is the same up to float rounding (tests/test_vae.py):
  XLA_FLAGS=--xla_force_host_platform_device_count=2 python scripts/train.py --config ...
"""

from experiments.vae.configs import variants


def get_config(arg: str | None = None):
  return variants.apply(variants.base("conv"), arg)
