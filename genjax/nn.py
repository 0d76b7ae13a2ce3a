"""Shared neural-network blocks: activations, input checks, convolutions and pooling fast on CPU, AdaIN."""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax.custom_derivatives import SymbolicZero

ACTIVATIONS = {
  "relu": jax.nn.relu,
  "gelu": jax.nn.gelu,
  "softplus": jax.nn.softplus,
  "tanh": jnp.tanh,
  "sigmoid": jax.nn.sigmoid,
  "linear": lambda v: v,
}


def activation(name: str):
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}.")
  return ACTIVATIONS[name]


def build(make: Callable[[], nnx.Module]) -> nnx.Module:
  """make() with all of its initializers in one jit.

  Built eagerly, a module runs (and on first use compiles) every initializer op by op; under one
  jit it compiles once. The values are the same: they come from the keys of make's nnx.Rngs.
  """
  graphdef = nnx.split(nnx.eval_shape(make))[0]
  return nnx.merge(graphdef, jax.jit(lambda: nnx.split(make())[1])())


def check_images(x: jax.Array, shape: tuple[int, ...], where: str) -> None:
  """Raises a ValueError naming the problem unless x is a floating batch [B, *shape]."""
  if not hasattr(x, "shape") or not hasattr(x, "dtype"):
    raise ValueError(f"{where}: expected an array, got {type(x).__name__}.")
  if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
    raise ValueError(
      f"{where}: expected images of shape [B, {', '.join(map(str, shape))}], got {x.shape}."
    )
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(
      f"{where}: expected floating pixels in [0, 1], got dtype {x.dtype} (convert uint8 with x / 255)."
    )


# Transposed convolution, kernel 4, stride 2, padding 1 (PyTorch's ConvTranspose2d(k=4, s=2, p=1),
# the DCGAN up-sampler). In 1-D, before the padding is cropped: y[o] = sum_i x[i] w[o - 2i]. Write
# the tap as k = 2q + r (q, r in {0, 1}): input i adds x[i] w[2q + r] to output 2(i + q) + r, i.e.
# to phase r of output block i + q. So the layer is one product per block offset q = (qy, qx),
# x [B*H*W, C_in] @ w[q] [C_in, 4 * C_out] (the four phases r as channels), shifted by q and summed
# (overlap-add), then depth-to-space and a crop of the padding. This does exactly the layer's 16
# taps per input pixel, as matrix products whose gradients are matrix products too. XLA lowers
# lax.conv_transpose as a conv over a zero-dilated input (4x the work); a 3x3 sub-pixel conv does
# 36 taps where 16 suffice. Measured by scripts/bench_conv_transpose.py.


def conv_transpose_2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """Transposed conv k=4, s=2, p=1 of x [B, H, W, C_in] with w [4, 4, C_in, C_out] -> [B, 2H, 2W, C_out]."""
  b, h, wd, c_in = x.shape
  c_out = w.shape[-1]
  w = w.reshape(2, 2, 2, 2, c_in, c_out)  # [qy, ry, qx, rx, C_in, C_out]
  rows = x.reshape(b * h * wd, c_in)
  y = 0
  for qy in (0, 1):
    for qx in (0, 1):
      wq = w[qy, :, qx].transpose(2, 0, 1, 3).reshape(c_in, 4 * c_out)  # [C_in, (ry, rx, C_out)]
      part = (rows @ wq).reshape(b, h, wd, 4 * c_out)
      y = y + jnp.pad(part, ((0, 0), (qy, 1 - qy), (qx, 1 - qx), (0, 0)))
  y = y.reshape(b, h + 1, wd + 1, 2, 2, c_out).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, 2 * h + 2, 2 * wd + 2, c_out)[:, 1:-1, 1:-1]


# --- Convolution with a weight gradient as matrix products ---------------------------------------
# XLA:CPU computes the kernel gradient of a convolution as another convolution whose "kernel" is the
# output gradient: at 28x28 with 32 channels that costs 10-20x the forward pass. The kernel gradient
# is a sum over the k*k taps of matrix products, dW[ky, kx] = sum_{b,h,w} x_pad[b, s h + ky,
# s w + kx, :]^T g[b, h, w, :]. `conv2d` is lax.conv_general_dilated with a custom JVP whose
# tangent in the kernel is written tap by tap, sum_k shift_k(x) @ dW[k]: its transpose (reverse
# mode) is exactly those products, while the input tangent stays XLA's convolution, and forward
# mode and higher orders keep working. Measured by scripts/bench_conv.py.


def _taps(x: jax.Array, w: jax.Array, strides, padding) -> jax.Array:
  """conv(x, w) written as a sum over kernel taps of matrix products (NHWC, HWIO)."""
  kh, kw = w.shape[:2]
  (sy, sx), ((pt, pb), (pl, pr)) = strides, padding
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  ho, wo = (xp.shape[1] - kh) // sy + 1, (xp.shape[2] - kw) // sx + 1
  y = 0
  for ky in range(kh):
    for kx in range(kw):
      xs = xp[:, ky : ky + sy * (ho - 1) + 1 : sy, kx : kx + sx * (wo - 1) + 1 : sx]
      y = y + xs.reshape(-1, x.shape[-1]) @ w[ky, kx]  # 2-D products: XLA:CPU's fastest form
  return y.reshape(x.shape[0], ho, wo, w.shape[-1])


def _lax_conv(x, w, strides, padding):
  return jax.lax.conv_general_dilated(
    x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _conv(x, w, strides, padding):
  return _lax_conv(x, w, strides, padding)


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(strides, padding, primals, tangents):
  x, w = primals
  dx, dw = tangents
  y = _conv(x, w, strides, padding)
  dy = jnp.zeros_like(y)
  if not isinstance(dx, SymbolicZero):
    dy = dy + _lax_conv(dx, w, strides, padding)
  if not isinstance(dw, SymbolicZero):
    dy = dy + _taps(x, dw, strides, padding)
  return y, dy


def conv2d(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
           dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
           preferred_element_type=None, out_sharding=None):  # fmt: skip
  """Drop-in for lax.conv_general_dilated (nnx.Conv's `conv_general_dilated`) with the fast kernel
  gradient above for plain 2-D NHWC/HWIO convolutions; anything else goes to lax unchanged."""
  plain = (
    lhs.ndim == 4
    and feature_group_count == 1
    and batch_group_count == 1
    and precision is None
    and preferred_element_type is None
    and out_sharding is None
    and rhs.shape[2] >= 8  # with fewer input channels XLA's own kernel gradient is faster,
    and rhs.shape[3] >= 8  # and with fewer output channels (16x100x100x32 -> 3: 39 vs 146 ms)
    and all(d == 1 for d in (lhs_dilation or (1, 1)))
    and all(d == 1 for d in (rhs_dilation or (1, 1)))
    and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  )
  if not plain:
    return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
      feature_group_count, batch_group_count, precision, preferred_element_type,
      **({} if out_sharding is None else {"out_sharding": out_sharding}),
    )  # fmt: skip
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  padding = tuple(tuple(int(p) for p in pair) for pair in padding)
  return _conv(lhs, rhs, tuple(int(s) for s in window_strides), padding)


def Conv(*args, **kwargs) -> nnx.Conv:  # noqa: N802 (a constructor, named like the class)
  """nnx.Conv computing with `conv2d` (same parameters, same function, faster kernel gradient)."""
  return nnx.Conv(*args, conv_general_dilated=conv2d, **kwargs)


class ConvTranspose2x(nnx.Module):
  """Doubles the spatial size: ConvTranspose2d(k=4, s=2, p=1), computed as matrix products + overlap-add."""

  def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
    init = nnx.initializers.lecun_normal(in_axis=(0, 1, 2), out_axis=3)
    self.kernel = nnx.Param(init(rngs.params(), (4, 4, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    return conv_transpose_2x(x, self.kernel[...]) + self.bias[...]


# --- 2x2 max pooling -------------------------------------------------------------------------------
# nnx.max_pool is lax.reduce_window; its gradient on XLA:CPU (a variadic reduce-window carrying
# iota indices, then a scatter) took 51 ms against 3 ms for this at 128x28x28x32 (value + gradient).
# Here the max is a reshape and a reduction, and the tangent is the tangent of the first maximal
# element of each window in row-major order: exactly what reduce_window's JVP and VJP pick, ties
# included, so values, gradients and forward-over-reverse second derivatives are bitwise those of
# nnx.max_pool(x, (2, 2), strides=(2, 2)) (tests/test_models.py).


@jax.custom_jvp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 of x [B, H, W, C] (H, W even) -> [B, H/2, W/2, C]."""
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f"max_pool_2x2: H and W must be even, got x of shape {x.shape}.")
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


@max_pool_2x2.defjvp
def _max_pool_2x2_jvp(primals, tangents):
  (x,), (t,) = primals, tangents
  y = max_pool_2x2(x)  # not x.max(): under a second derivative, jnp.max's JVP would split ties
  b, h, w, c = x.shape
  x6, t6 = x.reshape(b, h // 2, 2, w // 2, 2, c), t.reshape(b, h // 2, 2, w // 2, 2, c)
  dy, taken = jnp.zeros_like(y), jnp.zeros(y.shape, bool)
  for ry in (0, 1):
    for rx in (0, 1):
      pick = (x6[:, :, ry, :, rx] == y) & ~taken
      dy = dy + jnp.where(pick, t6[:, :, ry, :, rx], 0)
      taken = taken | pick
  return y, dy


# --- Faces: adaptive instance normalization (identity injection) ---------------------------------


def adain(x: jax.Array, scale: jax.Array, shift: jax.Array, *, eps: float = 1e-5) -> jax.Array:
  """AdaIN (Huang & Belongie, ICCV 2017): scale * (x - mu(x)) / sqrt(var(x) + eps) + shift.

  mu and var are taken per example and channel over the spatial axes (instance normalization),
  so each output channel has mean `shift` and standard deviation `scale` (up to eps).

  Args:
    x: feature maps [B, H, W, C].
    scale, shift: per-example, per-channel targets [B, C].

  Returns:
    [B, H, W, C].
  """
  if x.ndim != 4 or scale.shape != (x.shape[0], x.shape[-1]) or shift.shape != scale.shape:
    raise ValueError(
      f"adain: want x [B,H,W,C] and scale, shift [B,C]; got {x.shape}, {scale.shape}, {shift.shape}."
    )
  mu = x.mean(axis=(1, 2), keepdims=True)
  var = x.var(axis=(1, 2), keepdims=True)
  return scale[:, None, None] * (x - mu) * jax.lax.rsqrt(var + eps) + shift[:, None, None]


class AdaIN(nnx.Module):
  """AdaIN whose scale and shift are a linear function of a style (identity) vector v [B, D]:
  [gamma, beta] = Linear(v), scale = 1 + gamma, shift = beta (so a zero projection is plain
  instance normalization, as SimSwap's ID-injection blocks start)."""

  def __init__(self, features: int, style_dim: int, *, rngs: nnx.Rngs):
    self.proj = nnx.Linear(style_dim, 2 * features, rngs=rngs)

  def __call__(self, x: jax.Array, v: jax.Array) -> jax.Array:
    gamma, beta = jnp.split(self.proj(v), 2, axis=-1)
    return adain(x, 1.0 + gamma, beta)
