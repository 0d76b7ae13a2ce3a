"""SSIM / DSSIM forward and gradient: genjax's banded-matrix form against a depthwise convolution.

  python scripts/bench_ssim.py [--batch 16] [--size 100] [--repeats 5]

genjax.losses.ssim blurs the five local moments (x, y, x^2, y^2, xy) with the separable 11x11
Gaussian as two products with banded matrices. The common way to write it (tf.image.ssim's, for
one) is a depthwise 11x11 convolution per moment (feature_group_count = channels).
Both are jitted here on the same [batch, size, size, 3] images; the script checks that they agree,
then times value_and_grad of sum(DSSIM) and prints the median of `repeats` calls of each and the
ratio. Both run in this one process, alternately.
"""

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genjax import losses  # noqa: E402
from genjax.bench import alternating_ms  # noqa: E402


def dssim_depthwise(x, y, *, filter_size=11, sigma=1.5, c1=1e-4, c2=9e-4):
  """The depthwise-convolution formulation (same window, constants and averaging as genjax's)."""
  c = x.shape[-1]
  g = losses.gaussian_window(filter_size, sigma)
  kernel = jnp.tile((g[:, None] * g[None, :])[:, :, None, None], (1, 1, 1, c))

  def blur(v):
    return jax.lax.conv_general_dilated(
      v, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c
    )

  mu_x, mu_y = blur(x), blur(y)
  s_xx, s_yy, s_xy = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
  num = (2 * mu_x * mu_y + c1) * (2 * s_xy + c2)
  den = (mu_x**2 + mu_y**2 + c1) * (s_xx + s_yy + c2)
  return (1.0 - (num / den).mean(axis=(1, 2, 3))) / 2.0


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--size", type=int, default=100)
  p.add_argument("--repeats", type=int, default=5)
  args = p.parse_args()
  kx, ky = jax.random.split(jax.random.key(0))
  shape = (args.batch, args.size, args.size, 3)
  x, y = jax.random.uniform(kx, shape), jax.random.uniform(ky, shape)
  sides = {"genjax (banded matrices)": losses.dssim, "depthwise convolution": dssim_depthwise}
  fns = {k: jax.jit(jax.value_and_grad(lambda x, f=f: f(x, y).sum())) for k, f in sides.items()}
  values = {k: jax.block_until_ready(f(x)) for k, f in fns.items()}  # compiles
  (va, ga), (vb, gb) = values.values()
  print(f"device {jax.devices()[0].platform}, images {shape}")
  print(
    f"max |difference|: DSSIM sum {abs(float(va - vb)):.2e}, gradient {float(jnp.abs(ga - gb).max()):.2e}"
  )
  times = alternating_ms(fns, (x,), args.repeats)
  med = {k: float(np.median(v)) for k, v in times.items()}
  for k, v in times.items():
    print(f"{k:26s} median {med[k]:9.1f} ms   runs: {', '.join(f'{t:.1f}' for t in v)}")
  a, b = med.values()
  print(f"ratio (depthwise / genjax): {b / a:.1f}x")


if __name__ == "__main__":
  main()
