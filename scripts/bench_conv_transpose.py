"""The 4x4 stride-2 transposed convolution (every up-sampler in genjax): three ways to compute it.

  python scripts/bench_conv_transpose.py [--repeats 20]   # GENJAX_KERNELS=cpu|xla to force a form

  genjax      kernels.conv_transpose_2x; in its CPU form (the default on a CPU) four matrix
              products (one per block offset) + overlap-add, exactly the layer's 16 taps per
              input pixel
  sub-pixel   one 3x3 stride-1 conv producing the four output phases as channels, then
              depth-to-space (Shi et al. 2016): 36 taps per input pixel, 20 of them zero
  lax         jax.lax.conv_transpose: XLA's conv over the zero-dilated input
On the layer shapes the models use (batch, H, W, C_in -> C_out), the script checks that all three
agree, then times value_and_grad of a sum of squares (forward and both gradients) and prints the
median of `repeats` calls of each and the ratios. All run in this one process, alternately.
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

SHAPES = (  # (batch, H, W, C_in, C_out, used by)
  (128, 7, 7, 64, 32, "autoencoder / VAE up1"),
  (128, 14, 14, 32, 1, "autoencoder / VAE up2"),
  (128, 7, 7, 128, 64, "classifier decoder up1"),
  (128, 14, 14, 64, 1, "classifier decoder up2"),
  (16, 25, 25, 64, 32, "face-swap decoder up1"),
  (16, 50, 50, 32, 32, "face-swap decoder up2"),
)

_TAP = {(0, -1): 3, (0, 0): 1, (1, 0): 2, (1, 1): 0}  # (output phase, input offset) -> kernel tap


def sub_pixel(x, w):
  """The same layer as a 3x3 conv to the 2x2 output phases, then depth-to-space."""
  zero = jnp.zeros_like(w[0, 0])
  taps = [[jnp.stack([zero if _TAP.get((a, oy)) is None or _TAP.get((b, ox)) is None
                      else w[_TAP[(a, oy)], _TAP[(b, ox)]] for a in (0, 1) for b in (0, 1)], axis=1)
           for ox in (-1, 0, 1)] for oy in (-1, 0, 1)]  # fmt: skip
  k = jnp.stack([jnp.stack(row) for row in taps]).reshape(3, 3, w.shape[2], 4 * w.shape[3])
  y = jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
  b, h, wd, _ = x.shape
  y = y.reshape(b, h, wd, 2, 2, w.shape[3]).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, 2 * h, 2 * wd, w.shape[3])


def lax_form(x, w):
  return jax.lax.conv_transpose(x, jnp.swapaxes(w, 2, 3), (2, 2), ((2, 2), (2, 2)),
                                dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)  # fmt: skip


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
  p.add_argument("--repeats", type=int, default=20)
  args = p.parse_args()
  sides = {"genjax": kernels.conv_transpose_2x, "sub-pixel": sub_pixel, "lax": lax_form}
  print(
    f"device {jax.devices()[0].platform}, genjax = kernels' {kernels.form()} form; value_and_grad (x and w) of sum(y^2), median ms"
  )
  print(
    f"{'layer':44s} {'genjax':>8s} {'sub-pixel':>10s} {'lax':>8s}  sub-pixel/genjax  lax/genjax  max|diff|"
  )
  for batch, h, w_, c_in, c_out, used in SHAPES:
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (batch, h, w_, c_in))
    w = jax.random.normal(kw, (4, 4, c_in, c_out)) / np.sqrt(16 * c_in)
    fns = {k: jax.jit(jax.value_and_grad(lambda x, w, f=f: jnp.sum(f(x, w) ** 2), argnums=(0, 1)))
           for k, f in sides.items()}  # fmt: skip
    outs = {k: jax.jit(f)(x, w) for k, f in sides.items()}
    diff = max(float(jnp.abs(outs["genjax"] - o).max()) for o in outs.values())
    for f in fns.values():
      jax.block_until_ready(f(x, w))  # compiles
    med = {k: float(np.median(v)) for k, v in alternating_ms(fns, (x, w), args.repeats).items()}
    name = f"{batch}x{h}x{w_}x{c_in} -> {c_out} ({used})"
    print(f"{name:44s} {med['genjax']:8.2f} {med['sub-pixel']:10.2f} {med['lax']:8.2f}  "
          f"{med['sub-pixel'] / med['genjax']:15.2f}x {med['lax'] / med['genjax']:10.2f}x  {diff:.1e}")  # fmt: skip


if __name__ == "__main__":
  main()
