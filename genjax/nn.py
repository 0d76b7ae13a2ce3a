"""Shared neural-network blocks: activations, input checks and a fast stride-2 transposed convolution."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

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
# the DCGAN up-sampler): y[o] = sum_i x[i] w[o - 2i + 1]. Output row 2m takes input rows m-1, m
# (taps 3, 1); row 2m+1 takes rows m, m+1 (taps 2, 0). So the layer equals one stride-1 3x3 conv
# producing the 2x2 output phases as channels, followed by depth-to-space ("sub-pixel"
# convolution, Shi et al. 2016). XLA lowers a transposed conv as a conv over a zero-dilated input,
# 4x the work and slow on CPU; this form is the same function at a fraction of the cost.
_TAP = {(0, -1): 3, (0, 0): 1, (1, 0): 2, (1, 1): 0}  # (output phase, input offset) -> kernel tap


def subpixel_kernel(w: jax.Array) -> jax.Array:
  """[4, 4, C_in, C_out] transposed-conv kernel -> [3, 3, C_in, 4 * C_out] phase kernel."""
  zero = jnp.zeros_like(w[0, 0])
  rows = []
  for oy in (-1, 0, 1):
    cols = []
    for ox in (-1, 0, 1):
      phases = []
      for a in (0, 1):
        for b in (0, 1):
          ky, kx = _TAP.get((a, oy)), _TAP.get((b, ox))
          phases.append(zero if ky is None or kx is None else w[ky, kx])
      cols.append(jnp.stack(phases, axis=1))  # [C_in, 4, C_out]
    rows.append(jnp.stack(cols))
  return jnp.stack(rows).reshape(3, 3, w.shape[2], 4 * w.shape[3])


def conv_transpose_2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """Transposed conv k=4, s=2, p=1 of x [B, H, W, C_in] with w [4, 4, C_in, C_out] -> [B, 2H, 2W, C_out]."""
  b, h, wd, _ = x.shape
  c_out = w.shape[-1]
  y = jax.lax.conv_general_dilated(
    x, subpixel_kernel(w), (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  y = y.reshape(b, h, wd, 2, 2, c_out).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, 2 * h, 2 * wd, c_out)


class ConvTranspose2x(nnx.Module):
  """Doubles the spatial size: ConvTranspose2d(k=4, s=2, p=1) computed as a sub-pixel convolution."""

  def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
    init = nnx.initializers.lecun_normal(in_axis=(0, 1, 2), out_axis=3)
    self.kernel = nnx.Param(init(rngs.params(), (4, 4, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    return conv_transpose_2x(x, self.kernel[...]) + self.bias[...]


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
