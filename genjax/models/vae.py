"""Variational autoencoders (Kingma & Welling 2014): q(z|x) = N(mu, diag sigma^2), p(x|z) Bernoulli or Gaussian.

Both models return (out, aux): `out` is the decoder output for z = mu + sigma * eps (Bernoulli
logits, or Gaussian means), aux holds mu, logvar, z and, for a Gaussian decoder, x_logvar. With
dtype="bfloat16" the layers compute in bfloat16 on float32 parameters; mu, logvar and the decoder
output come out as float32, so the ELBO is summed in float32.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import losses, nn


@dataclasses.dataclass(frozen=True)
class VAEConfig:
  """Architecture and pixel model of a VAE.

  kind: "dense" (MLP) or "conv" (two stride-2 convs down, two stride-2 transposed convs up).
  image_shape: (H, W, C); the conv model needs H and W divisible by 4.
  hidden: widths of the dense hidden layers, or the channels of the two conv stages.
  latent_dim: size of z.
  likelihood: "bernoulli" (decoder logits) or "gaussian" (decoder means).
  x_sigma: standard deviation of the Gaussian decoder (fixed, or the initial value if learned).
  learn_x_sigma: learn one log variance per pixel, floored at log(x_sigma_min^2) because a pixel
    that is constant in the data (the black border) would otherwise drive its variance to 0 and the
    likelihood to infinity.
  dtype: compute dtype, "float32" or "bfloat16" (parameters are float32 either way).
  """

  kind: str = "dense"
  image_shape: tuple[int, int, int] = (28, 28, 1)
  hidden: tuple[int, ...] = (512,)
  latent_dim: int = 20
  activation: str = "relu"
  likelihood: str = "bernoulli"
  x_sigma: float = 0.1
  learn_x_sigma: bool = False
  x_sigma_min: float = 0.01
  dtype: str = "float32"


def reparameterize(key: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) drawn from `key`; differentiable in mu, logvar."""
  eps = jax.random.normal(key, mu.shape, mu.dtype)
  return mu + jnp.exp(0.5 * logvar) * eps


class _VAE(nnx.Module):
  """What dense and conv VAEs share: the pixel model, sampling and the forward pass."""

  def _init_pixel_model(self, cfg: VAEConfig) -> None:
    if cfg.likelihood not in losses.LIKELIHOODS:
      raise ValueError(f"unknown likelihood {cfg.likelihood!r}; expected {losses.LIKELIHOODS}.")
    self.likelihood = cfg.likelihood
    self.latent_dim = cfg.latent_dim
    self.fixed_x_logvar = 2.0 * math.log(cfg.x_sigma)
    self.min_x_logvar = 2.0 * math.log(cfg.x_sigma_min)
    self.learn_x_sigma = cfg.likelihood == "gaussian" and cfg.learn_x_sigma
    if self.learn_x_sigma:
      self.x_logvar = nnx.Param(jnp.full(self.image_shape, self.fixed_x_logvar, jnp.float32))

  def output_logvar(self) -> jax.Array | None:
    """Log variance of the Gaussian decoder ([H, W, C] if learned, a scalar if fixed); None for Bernoulli."""
    if self.likelihood != "gaussian":
      return None
    if self.learn_x_sigma:
      return jnp.maximum(self.x_logvar[...], self.min_x_logvar)
    return jnp.asarray(self.fixed_x_logvar, jnp.float32)

  def mean(self, out: jax.Array) -> jax.Array:
    """E[x | z] from the decoder output: sigmoid(logits) for Bernoulli, the mean for Gaussian."""
    return jax.nn.sigmoid(out) if self.likelihood == "bernoulli" else out

  def log_likelihood(self, out: jax.Array, x: jax.Array) -> jax.Array:
    """log p(x | z) per example [B] from the decoder output for z."""
    return losses.log_likelihood(self.likelihood, out, x, x_logvar=self.output_logvar())

  def __call__(self, x: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
    """x [B, H, W, C] -> (decoder output for z ~ q(z | x) [B, H, W, C], aux)."""
    mu, logvar = self.encode(x)
    z = reparameterize(key, mu, logvar)
    aux = {"mu": mu, "logvar": logvar, "z": z}
    if self.likelihood == "gaussian":
      aux["x_logvar"] = self.output_logvar()
    return self.decode(z), aux


class DenseVAE(_VAE):
  def __init__(self, cfg: VAEConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    self._init_pixel_model(cfg)  # first: a bad config fails before any weight is drawn
    widths = (math.prod(self.image_shape), *cfg.hidden)
    pairs = lambda w: zip(w[:-1], w[1:], strict=True)
    linear = functools.partial(nnx.Linear, dtype=nn.compute_dtype(cfg.dtype), rngs=rngs)
    self.enc = nnx.List([linear(a, b) for a, b in pairs(widths)])
    self.to_stats = linear(widths[-1], 2 * cfg.latent_dim)  # [mu, logvar]
    back = (cfg.latent_dim, *widths[::-1])
    self.dec = nnx.List([linear(a, b) for a, b in pairs(back)])
    self.act = nn.activation(cfg.activation)

  def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x [B, H, W, C] -> (mu, logvar), each [B, latent_dim]."""
    nn.check_images(x, self.image_shape, "DenseVAE.encode")
    h = x.reshape(x.shape[0], -1)
    for layer in self.enc:
      h = self.act(layer(h))
    mu, logvar = jnp.split(self.to_stats(h).astype(jnp.float32), 2, axis=-1)
    return mu, logvar

  def decode(self, z: jax.Array) -> jax.Array:
    """z [B, latent_dim] -> decoder output [B, H, W, C]."""
    h = z
    for layer in self.dec[:-1]:
      h = self.act(layer(h))
    return self.dec[-1](h).reshape(z.shape[0], *self.image_shape).astype(jnp.float32)


class ConvVAE(_VAE):
  """28x28: conv(s2) 28->14 -> conv(s2) 14->7 -> dense -> (mu, logvar); z -> dense -> 7x7 -> 14 -> 28."""

  def __init__(self, cfg: VAEConfig, *, rngs: nnx.Rngs):
    h, w, c = self.image_shape = tuple(cfg.image_shape)
    if h % 4 or w % 4:
      raise ValueError(f"ConvVAE needs H and W divisible by 4, got image_shape {cfg.image_shape}.")
    self._init_pixel_model(cfg)
    c1, c2 = cfg.hidden[:2] if len(cfg.hidden) >= 2 else (32, 64)
    self.bottom = (h // 4, w // 4, c2)
    flat, dtype = math.prod(self.bottom), nn.compute_dtype(cfg.dtype)
    conv = lambda a, b: nn.Conv(a, b, kernel_size=(3, 3), strides=(2, 2), padding=1, dtype=dtype,
                                rngs=rngs)  # fmt: skip
    self.conv1, self.conv2 = conv(c, c1), conv(c1, c2)
    self.to_stats = nnx.Linear(flat, 2 * cfg.latent_dim, dtype=dtype, rngs=rngs)
    self.from_z = nnx.Linear(cfg.latent_dim, flat, dtype=dtype, rngs=rngs)
    self.up1 = nn.ConvTranspose2x(c2, c1, dtype=dtype, rngs=rngs)
    self.up2 = nn.ConvTranspose2x(c1, c, dtype=dtype, rngs=rngs)
    self.act = nn.activation(cfg.activation)

  def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    nn.check_images(x, self.image_shape, "ConvVAE.encode")
    h = self.act(self.conv2(self.act(self.conv1(x))))
    stats = self.to_stats(h.reshape(x.shape[0], -1)).astype(jnp.float32)
    mu, logvar = jnp.split(stats, 2, axis=-1)
    return mu, logvar

  def decode(self, z: jax.Array) -> jax.Array:
    h = self.act(self.from_z(z)).reshape(z.shape[0], *self.bottom)
    return self.up2(self.act(self.up1(h))).astype(jnp.float32)


def make(cfg: VAEConfig, *, rngs: nnx.Rngs) -> DenseVAE | ConvVAE:
  if cfg.kind == "dense":
    return DenseVAE(cfg, rngs=rngs)
  if cfg.kind == "conv":
    return ConvVAE(cfg, rngs=rngs)
  raise ValueError(f"unknown VAE kind {cfg.kind!r}; expected 'dense' or 'conv'.")
