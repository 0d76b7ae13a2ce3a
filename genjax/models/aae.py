"""Adversarial autoencoder (Makhzani et al. 2016) on faces, with a code split for latent mixing.

An encoder E maps a face x to a code h = E(x) [B, latent_dim] and a decoder G draws the face back.
A latent discriminator D(h) is trained to tell codes of real faces from samples of the prior
p(h) = N(0, I); the encoder is trained, besides reconstructing, to fool it, so the aggregate
posterior q(h) = E_x q(h|x) is pushed toward p(h) and decoding prior samples gives faces.

The code is split h = [h_id | h_rest] (the first `identity_dim` entries, then the rest). A linear
head classifies the identity from h_id alone (cross-entropy), so identity is pushed into h_id and
pose, expression and lighting into h_rest. Latent mixing h_c = h_A (+) h_B = [h_A,id | h_B,rest]
then decodes to the identity of A with the rest of B: a swap of A onto B (`mix`). `slerp`
interpolates between codes along the great circle, the path that keeps the norm typical of
N(0, I) samples (White 2016, "Sampling Generative Networks").
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from genjax.models import faceswap


@dataclasses.dataclass(frozen=True)
class AAEConfig:
  """Architecture.

  image_shape, channels, decoder_channels: as in faceswap.SwapConfig (100x100x3 faces).
  latent_dim: size of the code h.
  identity_dim: the first identity_dim entries of h are h_id (0 < identity_dim < latent_dim).
  num_identities: classes of the identity head on h_id.
  disc_hidden: widths of the latent discriminator's hidden layers.
  """

  image_shape: tuple[int, int, int] = (100, 100, 3)
  channels: tuple[int, ...] = (32, 64, 128)
  latent_dim: int = 128
  identity_dim: int = 32
  decoder_channels: tuple[int, int] = (64, 32)
  num_identities: int = 158
  disc_hidden: tuple[int, ...] = (256, 256)

  def __post_init__(self):
    if not 0 < self.identity_dim < self.latent_dim:
      raise ValueError(
        f"identity_dim must be in (0, latent_dim={self.latent_dim}), got {self.identity_dim}."
      )

  def swap_config(self) -> faceswap.SwapConfig:
    return faceswap.SwapConfig(
      image_shape=self.image_shape,
      channels=self.channels,
      latent_dim=self.latent_dim,
      decoder_channels=self.decoder_channels,
      num_identities=1,
    )


class AdversarialAutoencoder(nnx.Module):
  """model(x) -> (logits of G(E(x)) [B, H, W, 3], {"h": code [B, latent_dim], "id_logits": [B, N]})."""

  def __init__(self, cfg: AAEConfig, *, rngs: nnx.Rngs):
    self.identity_dim = cfg.identity_dim
    self.latent_dim = cfg.latent_dim
    self.encoder = faceswap.Encoder(cfg.swap_config(), rngs=rngs)
    self.decoder = faceswap.Decoder(cfg.swap_config(), rngs=rngs)
    self.identity_head = nnx.Linear(cfg.identity_dim, cfg.num_identities, rngs=rngs)

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, h: jax.Array) -> jax.Array:
    """Pixels in [0, 1] of the codes h."""
    return jax.nn.sigmoid(self.decoder(h))

  def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
    h = self.encode(x)
    return self.decoder(h), {"h": h, "id_logits": self.identity_head(h[:, : self.identity_dim])}

  def mix(self, h_identity: jax.Array, h_rest: jax.Array) -> jax.Array:
    """h_c = [h_identity[:, :k] | h_rest[:, k:]]: identity of the first codes, rest of the second."""
    return mix(h_identity, h_rest, self.identity_dim)

  def swap(self, x_source: jax.Array, x_target: jax.Array) -> jax.Array:
    """Pixels of the source faces' identity with the targets' pose, expression and lighting."""
    return self.decode(self.mix(self.encode(x_source), self.encode(x_target)))


class LatentDiscriminator(nnx.Module):
  """D(h) [B, latent_dim] -> logits [B]: large for samples of the prior, small for codes of faces."""

  def __init__(self, cfg: AAEConfig, *, rngs: nnx.Rngs):
    widths = (cfg.latent_dim, *cfg.disc_hidden)
    self.hidden = nnx.List([
      nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)
    ])  # fmt: skip
    self.out = nnx.Linear(widths[-1], 1, rngs=rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    for layer in self.hidden:
      h = jax.nn.leaky_relu(layer(h), 0.2)
    return self.out(h)[:, 0]


def mix(h_identity: jax.Array, h_rest: jax.Array, identity_dim: int) -> jax.Array:
  """[h_identity[..., :k] | h_rest[..., k:]] with k = identity_dim; codes [..., latent_dim]."""
  if h_identity.shape != h_rest.shape:
    raise ValueError(f"mix: codes must have equal shapes, got {h_identity.shape}, {h_rest.shape}.")
  if not 0 < identity_dim < h_identity.shape[-1]:
    raise ValueError(f"mix: identity_dim {identity_dim} outside (0, {h_identity.shape[-1]}).")
  return jnp.concatenate([h_identity[..., :identity_dim], h_rest[..., identity_dim:]], axis=-1)


def slerp(h0: jax.Array, h1: jax.Array, t: jax.Array) -> jax.Array:
  """Spherical interpolation between codes h0, h1 [..., D] at fractions t [T] -> [T, ..., D].

  slerp(t) = sin((1 - t) w) / sin(w) h0 + sin(t w) / sin(w) h1 with w the angle between h0 and h1;
  it falls back to the linear path where w is ~0 (sin(w) -> 0, where both paths agree).
  """
  t = jnp.asarray(t, h0.dtype).reshape(-1, *([1] * h0.ndim))
  n0 = jnp.linalg.norm(h0, axis=-1, keepdims=True)
  n1 = jnp.linalg.norm(h1, axis=-1, keepdims=True)
  cos = jnp.clip((h0 * h1).sum(-1, keepdims=True) / jnp.maximum(n0 * n1, 1e-12), -1.0, 1.0)
  w = jnp.arccos(cos)
  small = jnp.sin(w) < 1e-6
  s = jnp.where(small, 1.0, jnp.sin(w))
  a = jnp.where(small, 1.0 - t, jnp.sin((1.0 - t) * w) / s)
  b = jnp.where(small, t, jnp.sin(t * w) / s)
  return a * h0 + b * h1
