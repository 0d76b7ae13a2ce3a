"""Convolutions and pooling in two forms, chosen by backend: XLA:CPU-tuned ones and plain lax ops.

    kernels.conv2d(...)             # drop-in for lax.conv_general_dilated (nnx.Conv's)
    kernels.conv_transpose_2x(x, w) # ConvTranspose2d(k=4, s=2, p=1), every up-sampler here
    kernels.max_pool_2x2(x)         # nnx.max_pool(x, (2, 2), strides=(2, 2))

    with kernels.use("xla"): ...    # or kernels.set_form("xla"), GENJAX_KERNELS=xla, --config.kernels=xla

Each function computes the same values and derivatives (first, second, forward over reverse) in
either form; they differ in which XLA ops do the work:
- "cpu": forms XLA:CPU runs fast. Its convolution gradients are convolutions that cost 10-20x the
  forward pass and its reduce-window gradient is a scatter, so here gradients are matrix products
  and the pooling tangent a select (scripts/bench_conv.py, bench_conv_transpose.py).
- "xla": lax.conv_general_dilated and lax.reduce_window, which GPU and TPU compilers map to their
  own convolution and pooling kernels (cuDNN, the TPU's MXU).
- "auto" (the default): "cpu" on the CPU backend, "xla" on any other.

The form is read when a function is traced, so it is part of what a jitted function compiled:
set_form clears JAX's caches when the form it resolves to changes. The default comes from the
environment variable GENJAX_KERNELS (auto | cpu | xla); a run's config sets it with
`config.kernels` (loop.setup).
"""

import contextlib
import functools
import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

FORMS = ("auto", "cpu", "xla")
_ENV = "GENJAX_KERNELS"
_chosen: str | None = None  # set_form's; None: the environment's, else "auto"


def _check(name: str, where: str) -> str:
  if name not in FORMS:
    raise ValueError(f"{where} = {name!r}: expected one of {', '.join(FORMS)}.")
  return name


def chosen() -> str:
  """The form asked for: set_form's, else $GENJAX_KERNELS, else "auto"."""
  if _chosen is not None:
    return _chosen
  return _check(os.environ.get(_ENV) or "auto", f"${_ENV}")


def form() -> str:
  """The form in use, "cpu" or "xla": chosen(), with "auto" resolved by jax.default_backend()."""
  name = chosen()
  if name == "auto":
    return "cpu" if jax.default_backend() == "cpu" else "xla"
  return name


def set_form(name: str | None) -> None:
  """Uses `name` (auto | cpu | xla; None: back to $GENJAX_KERNELS or auto) from now on."""
  global _chosen
  if name is not None:
    _check(name, "kernels form")
  before = form()
  _chosen = name
  if form() != before:
    jax.clear_caches()  # no jitted function keeps the other form


@contextlib.contextmanager
def use(name: str | None) -> Iterator[None]:
  """set_form(name) for the body of a with statement, then back to the form before."""
  saved = _chosen
  set_form(name)
  try:
    yield
  finally:
    set_form(saved)


def conv2d(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
           dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
           preferred_element_type=None, out_sharding=None):  # fmt: skip
  """lax.conv_general_dilated, same arguments; in the "cpu" form plain 2-D NHWC/HWIO convolutions
  take the matrix-product gradients below."""
  conv = _conv2d_cpu if form() == "cpu" else _lax_conv_general
  return conv(
    lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
    feature_group_count, batch_group_count, precision, preferred_element_type, out_sharding,
  )  # fmt: skip


def conv_transpose_2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """Transposed conv k=4, s=2, p=1 (PyTorch's ConvTranspose2d, the DCGAN up-sampler) of
  x [B, H, W, C_in] with w [4, 4, C_in, C_out] -> [B, 2H, 2W, C_out]:
  y[o] = sum_i x[i] w[o + 1 - 2i] along each spatial axis."""
  if form() == "cpu":
    return _conv_transpose_2x_cpu(x, w)
  # The same sum as a convolution over x dilated by 2 with the flipped kernel (what lax.conv_transpose
  # builds): output o reads x[i] at dilated position 2i with tap o + 1 - 2i of w.
  return jax.lax.conv_general_dilated(
    x, w[::-1, ::-1], (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )  # fmt: skip


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 of x [B, H, W, C] (H, W even) -> [B, H/2, W/2, C]."""
  if x.ndim != 4 or x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"max_pool_2x2: want x [B, H, W, C] with H and W even, got {x.shape}.")
  if form() == "cpu":
    return _max_pool_2x2_cpu(x)
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def _lax_conv_general(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                      dimension_numbers, feature_group_count, batch_group_count, precision,
                      preferred_element_type, out_sharding):  # fmt: skip
  return jax.lax.conv_general_dilated(
    lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
    feature_group_count, batch_group_count, precision, preferred_element_type,
    **({} if out_sharding is None else {"out_sharding": out_sharding}),
  )  # fmt: skip


# --- Transposed convolution, CPU form -------------------------------------------------------------
# Kernel 4, stride 2, padding 1 (PyTorch's ConvTranspose2d(k=4, s=2, p=1),
# the DCGAN up-sampler). In 1-D, before the padding is cropped: y[o] = sum_i x[i] w[o - 2i]. Write
# the tap as k = 2q + r (q, r in {0, 1}): input i adds x[i] w[2q + r] to output 2(i + q) + r, i.e.
# to phase r of output block i + q. So the layer is one product per block offset q = (qy, qx),
# x [B*H*W, C_in] @ w[q] [C_in, 4 * C_out] (the four phases r as channels), shifted by q and summed
# (overlap-add), then depth-to-space and a crop of the padding. This does exactly the layer's 16
# taps per input pixel, as matrix products whose gradients are matrix products too. XLA lowers
# lax.conv_transpose as a conv over a zero-dilated input (4x the work); a 3x3 sub-pixel conv does
# 36 taps where 16 suffice. Measured by scripts/bench_conv_transpose.py.


def _conv_transpose_2x_cpu(x: jax.Array, w: jax.Array) -> jax.Array:
  """Transposed conv k=4, s=2, p=1 of x [B, H, W, C_in] with w [4, 4, C_in, C_out] -> [B, 2H, 2W, C_out]."""
  b, h, wd, c_in = x.shape
  c_out = w.shape[-1]
  w = w.reshape(2, 2, 2, 2, c_in, c_out)  # [qy, ry, qx, rx, C_in, C_out]
  rows = x.reshape(b * h * wd, c_in)
  if c_out <= 4:
    # Few outputs (a layer to pixels): one product for all four offsets, [C_in, 16 * C_out], so
    # the gradients are one product each too (14x14x32 -> 1, batch 128: 1.8 vs 3.7 ms).
    # [C_in, (qy, qx, ry, rx, C_out)]
    w_all = w.transpose(4, 0, 2, 1, 3, 5).reshape(c_in, 16 * c_out)
    parts = (rows @ w_all).reshape(b, h, wd, 2, 2, 4 * c_out)
    part = lambda qy, qx: parts[:, :, :, qy, qx]
  else:
    wq = lambda qy, qx: w[qy, :, qx].transpose(2, 0, 1, 3).reshape(c_in, 4 * c_out)
    part = lambda qy, qx: (rows @ wq(qy, qx)).reshape(b, h, wd, 4 * c_out)  # [(ry, rx, C_out)]
  y = 0
  for qy in (0, 1):
    for qx in (0, 1):
      y = y + jnp.pad(part(qy, qx), ((0, 0), (qy, 1 - qy), (qx, 1 - qx), (0, 0)))
  y = y.reshape(b, h + 1, wd + 1, 2, 2, c_out).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, 2 * h + 2, 2 * wd + 2, c_out)[:, 1:-1, 1:-1]


# --- Convolution, CPU form: gradients as matrix products ------------------------------------------
# XLA:CPU computes the kernel gradient of a convolution as another convolution whose "kernel" is the
# output gradient: at 28x28 with 32 channels that costs 10-20x the forward pass. The CPU form of `conv2d` is
# lax.conv_general_dilated with a custom JVP whose tangent is written as matrix products; reverse
# mode transposes that tangent, so the gradients are matrix products too, while forward mode and
# higher orders keep working. Which form each tangent takes (value and gradient timings from
# scripts/bench_conv.py and the layer shapes of the models):
# - kernel tangent, small strided layers (value as block or patch products, below): the value's
#   form with dW for w, so the blocks or patches of x are made once for the value and the gradient
#   (a few percent of a conv VAE or DCGAN step).
# - kernel tangent, other layers with 8 or more input channels: a sum over the k*k taps,
#   sum_k shift_k(x) @ dW[k]; its transpose is the products dW[k] = shift_k(x)^T g.
# - kernel tangent, fewer input channels: one product with the patches of x (im2col,
#   [B*H*W, k*k*C_in]); its transpose is patches^T g, one product instead of k*k thin ones
#   (16x100x100x3 -> 32: 9 vs 25 ms for XLA's kernel gradient).
# - input tangent, stride 1: XLA's convolution (its transpose, a convolution, is fast).
# - input tangent, stride > 1: XLA transposes a strided convolution into one over a zero-dilated
#   gradient (stride^2 the work). Written instead as a product over space-to-depth blocks when the
#   stride divides the kernel (k4 s2: 4 products of width 4*C_in, so the transpose is the sub-pixel
#   transposed convolution above) or else over the patches of dx (k3 s2), its transpose is
#   products and a scatter of the patches: 16x100x100x32 -> 64, k4 s2: 66 vs 98 ms; k3 s2: 47 vs
#   67 ms.
# The value itself is XLA's convolution, except for small strided layers (below).
# Convolutions with fewer than 8 output channels stay lax's (16x100x100x32 -> 3: XLA's kernel
# gradient 17 ms against 131 ms over taps and 216 ms over patches).


def _out_hw(x_shape, w_shape, strides, padding) -> tuple[int, int]:
  (sy, sx), ((pt, pb), (pl, pr)) = strides, padding
  ho = (x_shape[1] + pt + pb - w_shape[0]) // sy + 1
  return ho, (x_shape[2] + pl + pr - w_shape[1]) // sx + 1


def _windows(x: jax.Array, w_shape, strides, padding) -> list[jax.Array]:
  """The kh*kw strided views x_pad[:, s*h + ky, s*w + kx] [B, h, w, C_in], in (ky, kx) order."""
  kh, kw = w_shape[:2]
  (sy, sx), (ho, wo) = strides, _out_hw(x.shape, w_shape, strides, padding)
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  return [
    xp[:, ky : ky + sy * (ho - 1) + 1 : sy, kx : kx + sx * (wo - 1) + 1 : sx]
    for ky in range(kh)
    for kx in range(kw)
  ]


def _taps(x: jax.Array, w: jax.Array, strides, padding) -> jax.Array:
  """conv(x, w) written as a sum over kernel taps of matrix products (NHWC, HWIO)."""
  kh, kw, c_in, c_out = w.shape
  windows = _windows(x, w.shape, strides, padding)
  y = sum(xs.reshape(-1, c_in) @ w.reshape(kh * kw, c_in, c_out)[k] for k, xs in enumerate(windows))
  return y.reshape(*windows[0].shape[:3], c_out)  # 2-D products: XLA:CPU's fastest form


def _im2col(x: jax.Array, w: jax.Array, strides, padding) -> jax.Array:
  """conv(x, w) as one product of the patches of x [B*h*w, kh*kw*C_in] with w [kh*kw*C_in, C_out]."""
  kh, kw, c_in, c_out = w.shape
  patches = jnp.concatenate(_windows(x, w.shape, strides, padding), axis=-1)
  y = patches.reshape(-1, kh * kw * c_in) @ w.reshape(kh * kw * c_in, c_out)
  return y.reshape(*patches.shape[:3], c_out)


def _space_to_depth(x: jax.Array, w: jax.Array, strides, padding) -> jax.Array:
  """conv(x, w) for strides dividing the kernel: x in s_y x s_x blocks [.., s_y*s_x*C_in], then a
  stride-1 sum over the (kh/s_y) x (kw/s_x) block offsets of products of width s_y*s_x*C_in."""
  kh, kw, c_in, c_out = w.shape
  (sy, sx), ((pt, _), (pl, _)) = strides, padding
  b, h, wd, _ = x.shape
  (ho, wo), qh, qw = _out_hw(x.shape, w.shape, strides, padding), kh // sy, kw // sx
  big_h, big_w = sy * (ho + qh - 1), sx * (wo + qw - 1)  # the rows and columns the output reads
  zero = jnp.zeros((), x.dtype)
  xp = jax.lax.pad(
    x, zero, ((0, 0, 0), (pt, big_h - h - pt, 0), (pl, big_w - wd - pl, 0), (0, 0, 0))
  )
  z = xp.reshape(b, big_h // sy, sy, big_w // sx, sx, c_in).transpose(0, 1, 3, 2, 4, 5)
  z = z.reshape(b, big_h // sy, big_w // sx, sy * sx * c_in)
  wq = w.reshape(qh, sy, qw, sx, c_in, c_out).transpose(0, 2, 1, 3, 4, 5)
  wq = wq.reshape(qh, qw, sy * sx * c_in, c_out)
  y = 0
  for qy in range(qh):
    for qx in range(qw):
      y = y + z[:, qy : qy + ho, qx : qx + wo].reshape(-1, sy * sx * c_in) @ wq[qy, qx]
  return y.reshape(b, ho, wo, c_out)


def _lax_conv(x, w, strides, padding):
  return jax.lax.conv_general_dilated(
    x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def _conv_input_form(x, w, strides, padding):
  """conv(x, w) in the form whose transpose (the input gradient) XLA:CPU runs fastest: lax's for
  stride 1, block products when the strides divide the kernel, patch products otherwise. The
  convolution is linear in x, so this gives both the input tangent and the value itself."""
  if strides == (1, 1):
    return _lax_conv(x, w, strides, padding)
  if w.shape[0] % strides[0] == 0 and w.shape[1] % strides[1] == 0:
    return _space_to_depth(x, w, strides, padding)
  return _im2col(x, w, strides, padding)


def _small_strided(x_shape, w_shape, strides, padding) -> bool:
  # Small strided layers (DCGAN's and the conv VAE's 14x14x32 -> 7x7x64): the block or patch
  # products beat XLA's strided convolution (k4 s2, batch 64: 2.1 vs 3.0 ms); on large maps
  # (16x100x100x32 -> 50x50x64: 96 vs 43 ms) they do not.
  ho, wo = _out_hw(x_shape, w_shape, strides, padding)
  return strides != (1, 1) and x_shape[-1] >= 8 and ho * wo <= 256


def _kernel_tangent(x, dw, strides, padding):
  if _small_strided(x.shape, dw.shape, strides, padding):
    # The value's own form, so XLA computes the patches or blocks of x once for both.
    return _conv_input_form(x, dw, strides, padding)
  return (_im2col if x.shape[-1] < 8 else _taps)(x, dw, strides, padding)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _conv(x, w, strides, padding):
  if _small_strided(x.shape, w.shape, strides, padding):
    return _conv_input_form(x, w, strides, padding)
  return _lax_conv(x, w, strides, padding)


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(strides, padding, primals, tangents):
  x, w = primals
  dx, dw = tangents
  y = _conv(x, w, strides, padding)
  dy = jnp.zeros_like(y)
  if not isinstance(dx, SymbolicZero):
    dy = dy + _conv_input_form(dx, w, strides, padding)
  if not isinstance(dw, SymbolicZero):
    dy = dy + _kernel_tangent(x, dw, strides, padding)
  return y, dy


def _conv2d_cpu(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
           dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
           preferred_element_type=None, out_sharding=None):  # fmt: skip
  """lax.conv_general_dilated with the gradients above for plain 2-D NHWC/HWIO convolutions;
  anything else goes to lax unchanged."""
  plain = (
    lhs.ndim == 4
    and feature_group_count == 1
    and batch_group_count == 1
    and precision is None
    and preferred_element_type is None
    and out_sharding is None
    and rhs.shape[3] >= 8  # with fewer output channels XLA's gradients are faster
    and all(d == 1 for d in (lhs_dilation or (1, 1)))
    and all(d == 1 for d in (rhs_dilation or (1, 1)))
    and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  )
  if not plain:
    return _lax_conv_general(
      lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
      feature_group_count, batch_group_count, precision, preferred_element_type, out_sharding,
    )  # fmt: skip
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  padding = tuple(tuple(int(p) for p in pair) for pair in padding)
  return _conv(lhs, rhs, tuple(int(s) for s in window_strides), padding)


# --- 2x2 max pooling, CPU form --------------------------------------------------------------------
# nnx.max_pool is lax.reduce_window; its gradient on XLA:CPU (a variadic reduce-window carrying
# iota indices, then a scatter) took 51 ms against 3 ms for this at 128x28x28x32 (value + gradient).
# Here the max is a reshape and a reduction, and the tangent is the tangent of the first maximal
# element of each window in row-major order: exactly what reduce_window's JVP and VJP pick, ties
# included, so values, gradients and forward-over-reverse second derivatives are bitwise those of
# nnx.max_pool(x, (2, 2), strides=(2, 2)) (tests/test_kernels.py).


@jax.custom_jvp
def _max_pool_2x2_cpu(x: jax.Array) -> jax.Array:
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


@_max_pool_2x2_cpu.defjvp
def _max_pool_2x2_jvp(primals, tangents):
  (x,), (t,) = primals, tangents
  y = _max_pool_2x2_cpu(x)  # not x.max(): under a second derivative, jnp.max's JVP would split ties
  b, h, w, c = x.shape
  x6, t6 = x.reshape(b, h // 2, 2, w // 2, 2, c), t.reshape(b, h // 2, 2, w // 2, 2, c)
  dy, taken = jnp.zeros_like(y), jnp.zeros(y.shape, bool)
  for ry in (0, 1):
    for rx in (0, 1):
      pick = (x6[:, :, ry, :, rx] == y) & ~taken
      dy = dy + jnp.where(pick, t6[:, :, ry, :, rx], 0)
      taken = taken | pick
  return y, dy
