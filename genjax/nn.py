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


# --- Convolution with gradients as matrix products ------------------------------------------------
# XLA:CPU computes the kernel gradient of a convolution as another convolution whose "kernel" is the
# output gradient: at 28x28 with 32 channels that costs 10-20x the forward pass. `conv2d` is
# lax.conv_general_dilated with a custom JVP whose tangent is written as matrix products; reverse
# mode transposes that tangent, so the gradients are matrix products too, while forward mode and
# higher orders keep working. Which form each tangent takes (value and gradient timings from
# scripts/bench_conv.py and the layer shapes of the models):
# - kernel tangent, small strided layers (value as block or patch products, below): the value's
#   form with dW for w, so the blocks or patches of x are made once for the value and the gradient
#   (conv VAE step: 58.4 -> 54.7 ms; DCGAN step 58.5 -> 57.1 ms; medians of 7 alternating rounds
#   of both versions in one process, a throwaway timing script).
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


def conv2d(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
           dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
           preferred_element_type=None, out_sharding=None):  # fmt: skip
  """Drop-in for lax.conv_general_dilated (nnx.Conv's `conv_general_dilated`) with the fast
  gradients above for plain 2-D NHWC/HWIO convolutions; anything else goes to lax unchanged."""
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
