"""3x3 convolutions forward + backward: genjax's kernels.conv2d against lax.conv_general_dilated.

  python scripts/bench_conv.py [--repeats 10]     # GENJAX_KERNELS=cpu|xla to force a form

kernels.conv2d computes the same convolution. In its CPU form (the default on a CPU) its gradients
are matrix products (kernel gradient over the 9 taps, or over patches with fewer than 8 input
channels; input gradient of strided layers over patches or space-to-depth blocks) instead of
XLA:CPU's gradient convolutions, and small strided layers compute their value that way too (see
genjax/kernels.py). On the layer shapes of the Fashion-MNIST classifier and the conv VAE (batch
128), the script checks that values and gradients agree, then times value_and_grad (input and
kernel) of a sum of squares and prints the median of `repeats` calls of each and the ratio. Both
run in this one process, alternately.
"""

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genjax import kernels  # noqa: E402
from genjax.bench import alternating_ms  # noqa: E402

SHAPES = (  # (batch, size, C_in, C_out, stride, used by)
  (128, 28, 1, 32, 1, "classifier stage 1, conv 1"),
  (128, 28, 32, 32, 1, "classifier stage 1, conv 2"),
  (128, 14, 32, 64, 1, "classifier stage 2, conv 1"),
  (128, 14, 64, 64, 1, "classifier stage 2, conv 2"),
  (128, 7, 64, 128, 1, "classifier stage 3, conv 1"),
  (128, 7, 128, 128, 1, "classifier stage 3, conv 2"),
  (128, 28, 1, 32, 2, "VAE / autoencoder conv 1"),
  (128, 14, 32, 64, 2, "VAE / autoencoder conv 2"),
)
DN = ("NHWC", "HWIO", "NHWC")


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
  p.add_argument("--repeats", type=int, default=10)
  args = p.parse_args()
  print(
    f"device {jax.devices()[0].platform}, genjax = kernels' {kernels.form()} form; value_and_grad (x and w) of sum(y^2), median ms"
  )
  print(f"{'layer':52s} {'genjax':>8s} {'lax':>8s}  lax/genjax  max rel |dw diff|")
  for batch, size, c_in, c_out, stride, used in SHAPES:
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (batch, size, size, c_in))
    w = jax.random.normal(kw, (3, 3, c_in, c_out)) / np.sqrt(9 * c_in)
    sides = {
      "genjax": lambda x, w, s=stride: kernels.conv2d(
        x, w, (s, s), ((1, 1), (1, 1)), dimension_numbers=DN
      ),
      "lax": lambda x, w, s=stride: jax.lax.conv_general_dilated(
        x, w, (s, s), ((1, 1), (1, 1)), dimension_numbers=DN
      ),
    }
    fns = {k: jax.jit(jax.value_and_grad(lambda x, w, f=f: jnp.sum(f(x, w) ** 2), argnums=(0, 1)))
           for k, f in sides.items()}  # fmt: skip
    (_, (_, dw_a)), (_, (_, dw_b)) = (jax.block_until_ready(f(x, w)) for f in fns.values())
    diff = float(jnp.abs(dw_a - dw_b).max() / jnp.abs(dw_b).max())
    med = {k: float(np.median(v)) for k, v in alternating_ms(fns, (x, w), args.repeats).items()}
    name = f"{batch}x{size}x{size}x{c_in} -> {c_out}, stride {stride} ({used})"
    print(
      f"{name:52s} {med['genjax']:8.2f} {med['lax']:8.2f}  {med['lax'] / med['genjax']:9.2f}x  {diff:.1e}"
    )


if __name__ == "__main__":
  main()
