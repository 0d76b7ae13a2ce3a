"""Autoencoders x -> z = f(x) -> logits of x_hat = g(z), dense and convolutional (Flax NNX).

Both return (logits, {"z": z}); sigmoid(logits) is the reconstruction in [0, 1]. The decoder emits
logits so that binary cross-entropy is computed stably; MSE is taken on sigmoid(logits).

Mixed precision: with dtype="bfloat16" the layers compute in bfloat16 while parameters (and so
the optimizer state and the updates) stay float32; z and the logits come out as float32, so the
losses and their sums are float32 too.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import nn


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
  """Architecture of an autoencoder.

  kind: "dense" (MLP) or "conv" (two stride-2 convs down, two stride-2 transposed convs up).
  image_shape: (H, W, C); the conv model needs H and W divisible by 4.
  hidden: widths of the dense hidden layers, or the channels of the two conv stages.
  latent_dim: size of the code z.
  activation: hidden-layer nonlinearity (relu, gelu, softplus, tanh, ...).
  code_activation: nonlinearity on z (linear, relu for sparse codes, sigmoid, ...).
  dtype: compute dtype, "float32" or "bfloat16" (parameters are float32 either way).
  """

  kind: str = "dense"
  image_shape: tuple[int, int, int] = (28, 28, 1)
  hidden: tuple[int, ...] = (512, 256)
  latent_dim: int = 32
  activation: str = "relu"
  code_activation: str = "linear"
  dtype: str = "float32"


class DenseAutoencoder(nnx.Module):
  def __init__(self, cfg: AutoencoderConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    d = math.prod(self.image_shape)
    widths, dtype = (d, *cfg.hidden, cfg.latent_dim), nn.compute_dtype(cfg.dtype)
    linear = lambda a, b: nnx.Linear(a, b, dtype=dtype, rngs=rngs)
    self.enc = nnx.List([linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)])
    back = widths[::-1]
    self.dec = nnx.List([linear(a, b) for a, b in zip(back[:-1], back[1:], strict=True)])
    self.act = nn.activation(cfg.activation)
    self.code_act = nn.activation(cfg.code_activation)

  def encode(self, x: jax.Array) -> jax.Array:
    """x [B, H, W, C] -> z [B, latent_dim]."""
    nn.check_images(x, self.image_shape, "DenseAutoencoder.encode")
    h = x.reshape(x.shape[0], -1)
    for layer in self.enc[:-1]:
      h = self.act(layer(h))
    return self.code_act(self.enc[-1](h)).astype(jnp.float32)

  def decode(self, z: jax.Array) -> jax.Array:
    """z [B, latent_dim] -> logits [B, H, W, C]."""
    h = z
    for layer in self.dec[:-1]:
      h = self.act(layer(h))
    return self.dec[-1](h).reshape(z.shape[0], *self.image_shape).astype(jnp.float32)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
    z = self.encode(x)
    return self.decode(z), {"z": z}


class ConvAutoencoder(nnx.Module):
  """28x28: conv(s2) 28->14 -> conv(s2) 14->7 -> dense -> z -> dense -> 7x7 -> up 14 -> up 28."""

  def __init__(self, cfg: AutoencoderConfig, *, rngs: nnx.Rngs):
    h, w, c = self.image_shape = tuple(cfg.image_shape)
    if h % 4 or w % 4:
      raise ValueError(
        f"ConvAutoencoder needs H and W divisible by 4, got image_shape {cfg.image_shape}."
      )
    c1, c2 = cfg.hidden[:2] if len(cfg.hidden) >= 2 else (32, 64)
    self.bottom = (h // 4, w // 4, c2)
    flat, dtype = math.prod(self.bottom), nn.compute_dtype(cfg.dtype)
    conv = lambda a, b: nn.Conv(a, b, kernel_size=(3, 3), strides=(2, 2), padding=1, dtype=dtype,
                                rngs=rngs)  # fmt: skip
    self.conv1, self.conv2 = conv(c, c1), conv(c1, c2)
    self.to_z = nnx.Linear(flat, cfg.latent_dim, dtype=dtype, rngs=rngs)
    self.from_z = nnx.Linear(cfg.latent_dim, flat, dtype=dtype, rngs=rngs)
    self.up1 = nn.ConvTranspose2x(c2, c1, dtype=dtype, rngs=rngs)
    self.up2 = nn.ConvTranspose2x(c1, c, dtype=dtype, rngs=rngs)
    self.act = nn.activation(cfg.activation)
    self.code_act = nn.activation(cfg.code_activation)

  def encode(self, x: jax.Array) -> jax.Array:
    nn.check_images(x, self.image_shape, "ConvAutoencoder.encode")
    h = self.act(self.conv2(self.act(self.conv1(x))))
    return self.code_act(self.to_z(h.reshape(x.shape[0], -1))).astype(jnp.float32)

  def decode(self, z: jax.Array) -> jax.Array:
    h = self.act(self.from_z(z)).reshape(z.shape[0], *self.bottom)
    return self.up2(self.act(self.up1(h))).astype(jnp.float32)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
    z = self.encode(x)
    return self.decode(z), {"z": z}


def make(cfg: AutoencoderConfig, *, rngs: nnx.Rngs) -> DenseAutoencoder | ConvAutoencoder:
  if cfg.kind == "dense":
    return DenseAutoencoder(cfg, rngs=rngs)
  if cfg.kind == "conv":
    return ConvAutoencoder(cfg, rngs=rngs)
  raise ValueError(f"unknown autoencoder kind {cfg.kind!r}; expected 'dense' or 'conv'.")


@jax.jit
def weight_norm(params) -> jax.Array:
  """sqrt(sum of squared weights, biases excluded): the 'weight norm' plotted against lambda."""
  sq = [jnp.square(p).sum() for p in jax.tree.leaves(params) if p.ndim > 1]
  return jnp.sqrt(sum(sq, jnp.zeros(())))
