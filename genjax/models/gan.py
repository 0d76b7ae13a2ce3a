"""DCGAN generator G(z) and discriminator D(x) (Radford et al. 2016), for any H x W x C (Flax NNX).

G: z -> dense -> [H/2^n, W/2^n, g_0] -> n stride-2 transposed convs (k4, s2, p1) -> logits of x;
D: x -> n stride-2 convs (k4, s2, p1, leaky ReLU 0.2) -> dense -> one logit per example.
28x28x1 uses n = 2 (7 -> 14 -> 28); 100x100x3 faces use n = 2 (25 -> 50 -> 100).

Normalization is per example only (layer norm over channels in G, none in D): the examples of a
batch never interact, so a D step on a batch of fakes cannot leak statistics between examples, and
the WGAN-GP and R1 penalties can take every per-example input gradient in one backward pass
(see genjax.losses.gradient_penalty). G emits logits; sigmoid(logits) are pixels in [0, 1].
"""

import dataclasses
import math

import jax
from flax import nnx

from genjax import nn


@dataclasses.dataclass(frozen=True)
class GANConfig:
  """Architecture of the DCGAN pair.

  image_shape: (H, W, C); H and W divisible by 2^len(g_widths) and 2^len(d_widths).
  latent_dim: size of z ~ N(0, I).
  g_widths: channels of G from the bottom up, e.g. (128, 64): 7x7x128 -> 14x14x64 -> 28x28xC.
  d_widths: channels of D's stride-2 convs, e.g. (64, 128): 28 -> 14x14x64 -> 7x7x128.
  """

  image_shape: tuple[int, int, int] = (28, 28, 1)
  latent_dim: int = 64
  g_widths: tuple[int, ...] = (128, 64)
  d_widths: tuple[int, ...] = (64, 128)


def _bottom(shape: tuple[int, int, int], n: int, who: str) -> tuple[int, int]:
  h, w, _ = shape
  f = 2**n
  if h % f or w % f:
    raise ValueError(f"{who}: image_shape {shape} needs H and W divisible by 2^{n} = {f}.")
  return h // f, w // f


class Generator(nnx.Module):
  """z [B, latent_dim] -> (logits [B, H, W, C], {"z", "x"}); x = sigmoid(logits)."""

  def __init__(self, cfg: GANConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    self.latent_dim = cfg.latent_dim
    widths = (*cfg.g_widths, self.image_shape[2])
    self.bottom = (*_bottom(self.image_shape, len(cfg.g_widths), "Generator"), widths[0])
    self.fc = nnx.Linear(cfg.latent_dim, math.prod(self.bottom), rngs=rngs)
    self.norms = nnx.List([nnx.LayerNorm(c, rngs=rngs) for c in widths[:-1]])
    self.ups = nnx.List(
      [nn.ConvTranspose2x(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    )

  def __call__(self, z: jax.Array) -> tuple[jax.Array, dict]:
    if z.ndim != 2 or z.shape[1] != self.latent_dim:
      raise ValueError(f"Generator: expected z of shape [B, {self.latent_dim}], got {z.shape}.")
    h = self.fc(z).reshape(z.shape[0], *self.bottom)
    for norm, up in zip(self.norms, self.ups, strict=True):
      h = up(jax.nn.relu(norm(h)))
    return h, {"z": z, "x": jax.nn.sigmoid(h)}


class Discriminator(nnx.Module):
  """x [B, H, W, C] in [0, 1] -> (logits [B], {"features": last conv map [B, h, w, c]})."""

  def __init__(self, cfg: GANConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    widths = (self.image_shape[2], *cfg.d_widths)
    conv = lambda a, b: nn.Conv(a, b, kernel_size=(4, 4), strides=(2, 2), padding=1, rngs=rngs)
    self.convs = nnx.List([conv(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)])
    h, w = _bottom(self.image_shape, len(cfg.d_widths), "Discriminator")
    self.fc = nnx.Linear(h * w * widths[-1], 1, rngs=rngs)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
    nn.check_images(x, self.image_shape, "Discriminator")
    h = 2.0 * x - 1.0  # pixels centred on 0
    for conv in self.convs:
      h = jax.nn.leaky_relu(conv(h), 0.2)
    return self.fc(h.reshape(x.shape[0], -1))[:, 0], {"features": h}


def sample(generator: Generator, key: jax.Array, n: int) -> jax.Array:
  """n images x = sigmoid(G(z)), z ~ N(0, I): [n, H, W, C] in [0, 1]."""
  z = jax.random.normal(key, (n, generator.latent_dim))
  return generator(z)[1]["x"]
