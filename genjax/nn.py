"""Shared neural-network blocks: activations, input checks, convolution layers over genjax.kernels, AdaIN."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import kernels

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


DTYPES = ("float32", "bfloat16")


def compute_dtype(name: str) -> jnp.dtype:
  """A model's compute dtype by name (its parameters stay float32: mixed precision)."""
  if name not in DTYPES:
    raise ValueError(f"unknown dtype {name!r}; expected one of {DTYPES}.")
  return jnp.dtype(name)


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


# --- Layers over genjax.kernels (a CPU form and an XLA form, chosen by backend) ------------------


def Conv(*args, **kwargs) -> nnx.Conv:  # noqa: N802 (a constructor, named like the class)
  """nnx.Conv computing with kernels.conv2d (same parameters, same function)."""
  return nnx.Conv(*args, conv_general_dilated=kernels.conv2d, **kwargs)


class ConvTranspose2x(nnx.Module):
  """Doubles the spatial size: ConvTranspose2d(k=4, s=2, p=1) (kernels.conv_transpose_2x)."""

  def __init__(self, in_features: int, out_features: int, *, dtype=None, rngs: nnx.Rngs):
    """dtype: the compute dtype (None: the input's, promoted with the float32 parameters, as nnx's
    layers do); the parameters are float32."""
    init = nnx.initializers.lecun_normal(in_axis=(0, 1, 2), out_axis=3)
    self.kernel = nnx.Param(init(rngs.params(), (4, 4, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    dtype = self.dtype or jnp.result_type(x, self.kernel[...])
    w, b = self.kernel[...].astype(dtype), self.bias[...].astype(dtype)
    return kernels.conv_transpose_2x(x.astype(dtype), w) + b


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
