"""Face swap with a shared encoder and one decoder per identity (the classic "deepfake" autoencoder).

All identities are encoded by the same encoder E, so the code z = E(x) has to describe what faces
share (pose, expression, lighting); each decoder D_i learns to draw identity i from it. The swap of
a face x of A into B is D_B(E(x)). Faces are 100x100x3; decoders return logits, sigmoid gives pixels.
"""

import dataclasses
import math

import jax
from flax import nnx

from genjax import nn


@dataclasses.dataclass(frozen=True)
class SwapConfig:
  """Architecture.

  image_shape: (H, W, 3) with H, W divisible by 4 (100x100x3 in the design).
  channels: encoder conv widths, one stride-2 conv each (100 -> 50 -> 25 -> 13 for three).
  latent_dim: size of the shared code z.
  decoder_channels: (c0, c1): the decoder maps z to an (H/4, W/4, c0) grid, refines it with a
    3x3 conv and doubles it twice with transposed convs (c0 -> c1 -> c1), then a 3x3 conv to RGB.
  num_identities: how many decoders.
  """

  image_shape: tuple[int, int, int] = (100, 100, 3)
  channels: tuple[int, ...] = (32, 64, 128)
  latent_dim: int = 256
  decoder_channels: tuple[int, int] = (64, 32)
  num_identities: int = 2


def _act(x: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x, 0.1)


class Encoder(nnx.Module):
  """x [B, H, W, 3] -> z [B, latent_dim]: stride-2 3x3 convs, flatten, linear."""

  def __init__(self, cfg: SwapConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    widths = (cfg.image_shape[-1], *cfg.channels)
    self.convs = nnx.List([
      nn.Conv(a, b, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
      for a, b in zip(widths[:-1], widths[1:], strict=True)
    ])  # fmt: skip
    h, w = cfg.image_shape[:2]
    for _ in cfg.channels:
      h, w = math.ceil(h / 2), math.ceil(w / 2)
    self.to_z = nnx.Linear(h * w * widths[-1], cfg.latent_dim, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    nn.check_images(x, self.image_shape, "Encoder")
    h = x
    for conv in self.convs:
      h = _act(conv(h))
    return self.to_z(h.reshape(x.shape[0], -1))


class Decoder(nnx.Module):
  """z [B, latent_dim] -> logits [B, H, W, 3]."""

  def __init__(self, cfg: SwapConfig, *, rngs: nnx.Rngs):
    h, w, c = cfg.image_shape
    if h % 4 or w % 4:
      raise ValueError(f"Decoder needs H, W divisible by 4, got image_shape {cfg.image_shape}.")
    c0, c1 = cfg.decoder_channels
    self.bottom = (h // 4, w // 4, c0)
    self.from_z = nnx.Linear(cfg.latent_dim, math.prod(self.bottom), rngs=rngs)
    self.refine = nn.Conv(c0, c0, kernel_size=(3, 3), padding="SAME", rngs=rngs)
    self.up1 = nn.ConvTranspose2x(c0, c1, rngs=rngs)
    self.up2 = nn.ConvTranspose2x(c1, c1, rngs=rngs)
    self.to_rgb = nn.Conv(c1, c, kernel_size=(3, 3), padding="SAME", rngs=rngs)

  def __call__(self, z: jax.Array) -> jax.Array:
    h = _act(self.from_z(z)).reshape(z.shape[0], *self.bottom)
    h = _act(self.refine(h))
    h = _act(self.up2(_act(self.up1(h))))
    return self.to_rgb(h)


class SharedEncoderSwap(nnx.Module):
  """One encoder, `num_identities` decoders. model(x, i) -> (logits of D_i(E(x)), {"z": z})."""

  def __init__(self, cfg: SwapConfig, *, rngs: nnx.Rngs):
    self.encoder = Encoder(cfg, rngs=rngs)
    self.decoders = nnx.List([Decoder(cfg, rngs=rngs) for _ in range(cfg.num_identities)])

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array, identity: int) -> jax.Array:
    """Logits of decoder `identity` (a Python int: each decoder is its own branch of the graph)."""
    return self.decoders[identity](z)

  def __call__(self, x: jax.Array, identity: int) -> tuple[jax.Array, dict]:
    z = self.encode(x)
    return self.decode(z, identity), {"z": z}

  def swap(self, x: jax.Array, identity: int) -> jax.Array:
    """Pixels in [0, 1] of the faces x redrawn as `identity` (a swap, or a reconstruction when x
    shows that identity)."""
    return jax.nn.sigmoid(self(x, identity)[0])
