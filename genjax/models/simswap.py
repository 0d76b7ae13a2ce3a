"""Face swap (c): identity-injection generator and multi-scale PatchGAN (after SimSwap, Chen et al. 2020).

The generator G(x_target, v_source) encodes the target face, passes the code through residual
blocks whose AdaIN scale and shift are a linear function of the source identity vector v_source
(the unit embedding of a frozen identity net), and decodes it: the target's pose, expression and
lighting with the source's identity. One generator serves every pair of people, unlike (a).

  encoder   3x3 conv (c0), then stride-2 3x3 convs c0 -> c1 -> c2     100 -> 50 -> 25
  [bottleneck: one more stride-2 conv (25 -> 13), linear to a code of `bottleneck` entries, linear
   back to 25x25xc2]
  ID blocks x + AdaIN(conv(relu(AdaIN(conv(x), v))), v), num_blocks times at 25x25xc2
  decoder   4x4 stride-2 transposed convs c2 -> c1 -> c0 [each followed by AdaIN(., v) with
            adain_decoder], 3x3 conv to RGB logits

SimSwap's generator (bottleneck 0) carries the whole target at 25x25xc2 past the ID blocks; with a
weak identity net it learns to keep the target and move the net's embedding by patterns the eye
does not see (experiments/faceswap/README.md). With a bottleneck the code can hold pose,
expression and light but not the fine detail of a face, so the decoder must draw the face, and the
identity it draws comes in through AdaIN: the shared-encoder mechanism of model (a), with one
decoder whose normalization is set by the identity vector instead of one decoder per person.

With target_blur > 0 the generator sees the target's face interior (genjax.faces.align.interior_mask)
low-passed by a Gaussian of that many pixels: pose, expression, light and skin tone come through,
the fine detail by which a person is told apart does not, so the only identity the decoder can draw
there is the one AdaIN brings in (and a reconstruction pair, x_s = x_t, can no longer be solved by
copying the target's face through the code).

The discriminator is a PatchGAN (Isola et al. 2017) at num_scales resolutions (the image, then
average-pooled by 2 each time; pix2pixHD, Wang et al. 2018): 4x4 convs with leaky ReLU, stride 2,
2, 1, then a 4x4 conv to one logit per patch. It returns, per scale, the patch logits and the
feature maps of its hidden layers (for the feature-matching loss).

With disc_projection the discriminator also reads an identity vector v and judges the pair (face,
identity): each patch logit gains the projection term <W v, h> of its last hidden features h
(projection discriminator, Miyato & Koyama 2018), so a face drawn with another person's identity
than v is a fake the discriminator can learn to tell, and its judgement of identity is learned on
the training faces and keeps adapting, where the frozen identity net is a fixed target the
generator can learn to satisfy with patterns the eye does not see.

With code_classes > 0 (and a bottleneck) the discriminator module also holds a classifier that
tells the person from the generator's code (an MLP, code -> code_classes logits); trained against
an encoder that makes its prediction uniform, the code keeps pose, expression and light but not
who it is, so the decoder can draw the face only from the identity vector (a latent adversary as
in Fader Networks, Lample et al. 2017: the mechanism of model (a), whose decoders each know one
person, with one decoder for everyone).
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import nn
from genjax.faces import align, augment


@dataclasses.dataclass(frozen=True)
class SimSwapConfig:
  """Architecture.

  image_shape: (H, W, 3), H and W divisible by 4 (100x100x3 in the design).
  channels: (c0, c1, c2) widths of the encoder (and, reversed, the decoder).
  num_blocks: identity-injection residual blocks at H/4 x W/4.
  id_dim: size of the identity vector v (the identity net's embedding).
  disc_channels: widths of the PatchGAN's three hidden convs.
  num_scales: PatchGANs, one per resolution (image, image / 2, ...).
  bottleneck: 0 (SimSwap: no bottleneck) or the size of the code between encoder and ID blocks.
  adain_decoder: AdaIN(., v) after each transposed conv of the decoder too.
  target_blur: 0 (off) or the sigma in pixels of the Gaussian that low-passes the target's face
    interior before the encoder (interior_blur).
  disc_projection: the discriminator judges (face, identity vector) pairs (projection term).
  code_classes: 0 (off) or the number of people the code classifier tells apart (needs bottleneck).
  """

  image_shape: tuple[int, int, int] = (100, 100, 3)
  channels: tuple[int, int, int] = (32, 64, 128)
  num_blocks: int = 4
  id_dim: int = 128
  disc_channels: tuple[int, int, int] = (32, 64, 128)
  num_scales: int = 2
  bottleneck: int = 0
  adain_decoder: bool = False
  target_blur: float = 0.0
  disc_projection: bool = False
  code_classes: int = 0


def interior_blur(x: jax.Array, sigma: float) -> jax.Array:
  """Aligned crops x [B, H, W, C] whose face interior (align.interior_mask, feathered) is replaced by
  its Gaussian low-pass of sigma pixels (augment.blur); the rest unchanged; x when sigma <= 0."""
  if sigma <= 0:
    return x
  m = jnp.asarray(align.interior_mask(x.shape[1]), x.dtype)[None, :, :, None]
  return x + m * (augment.blur(x, sigma) - x)


def _conv(a: int, b: int, k: int, s: int, rngs: nnx.Rngs) -> nnx.Conv:
  return nn.Conv(a, b, kernel_size=(k, k), strides=(s, s), padding="SAME", rngs=rngs)


def _act(x: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x, 0.2)


class IDBlock(nnx.Module):
  """Residual block with identity injection: x + AdaIN(conv(relu(AdaIN(conv(x), v))), v)."""

  def __init__(self, features: int, id_dim: int, *, rngs: nnx.Rngs):
    self.conv1 = _conv(features, features, 3, 1, rngs)
    self.conv2 = _conv(features, features, 3, 1, rngs)
    self.norm1 = nn.AdaIN(features, id_dim, rngs=rngs)
    self.norm2 = nn.AdaIN(features, id_dim, rngs=rngs)

  def __call__(self, x: jax.Array, v: jax.Array) -> jax.Array:
    h = jax.nn.relu(self.norm1(self.conv1(x), v))
    return x + self.norm2(self.conv2(h), v)


class Generator(nnx.Module):
  """G(x_target [B, H, W, 3], v_source [B, id_dim]) -> logits [B, H, W, 3] (sigmoid gives pixels)."""

  def __init__(self, cfg: SimSwapConfig, *, rngs: nnx.Rngs):
    h, w, c = cfg.image_shape
    if h % 4 or w % 4:
      raise ValueError(f"Generator needs H, W divisible by 4, got image_shape {cfg.image_shape}.")
    c0, c1, c2 = cfg.channels
    self.image_shape, self.id_dim = tuple(cfg.image_shape), cfg.id_dim
    self.target_blur = float(cfg.target_blur)
    self.stem = _conv(c, c0, 3, 1, rngs)
    self.down1 = _conv(c0, c1, 3, 2, rngs)
    self.down2 = _conv(c1, c2, 3, 2, rngs)
    self.grid = (h // 4, w // 4, c2)
    if cfg.bottleneck:
      self.down3 = _conv(c2, c2, 3, 2, rngs)
      n = -(-h // 8) * -(-w // 8) * c2
      self.to_code = nnx.Linear(n, cfg.bottleneck, rngs=rngs)
      self.from_code = nnx.Linear(cfg.bottleneck, h // 4 * (w // 4) * c2, rngs=rngs)
    self.blocks = nnx.List([IDBlock(c2, cfg.id_dim, rngs=rngs) for _ in range(cfg.num_blocks)])
    self.up1 = nn.ConvTranspose2x(c2, c1, rngs=rngs)
    self.up2 = nn.ConvTranspose2x(c1, c0, rngs=rngs)
    if cfg.adain_decoder:
      self.up_norms = nnx.List([nn.AdaIN(f, cfg.id_dim, rngs=rngs) for f in (c1, c0)])
    self.to_rgb = _conv(c0, c, 3, 1, rngs)

  def __call__(self, x: jax.Array, v: jax.Array) -> jax.Array:
    nn.check_images(x, self.image_shape, "Generator")
    if v.shape != (x.shape[0], self.id_dim):
      raise ValueError(f"Generator: want v [{x.shape[0]}, {self.id_dim}], got {v.shape}.")
    return self.decode(self.encode(x), v)

  def encode(self, x: jax.Array) -> jax.Array:
    """The target's code: [B, bottleneck] with a bottleneck, else features [B, H/4, W/4, c2]."""
    h = _act(self.stem(2.0 * interior_blur(x, self.target_blur) - 1.0))
    h = _act(self.down2(_act(self.down1(h))))
    if hasattr(self, "to_code"):
      return self.to_code(_act(self.down3(h)).reshape(x.shape[0], -1))
    return h

  def decode(self, code: jax.Array, v: jax.Array) -> jax.Array:
    """Logits [B, H, W, 3] from a code of `encode` and identity vectors v [B, id_dim]."""
    h = code
    if hasattr(self, "to_code"):
      h = _act(self.from_code(code)).reshape(code.shape[0], *self.grid)
    for block in self.blocks:
      h = block(h, v)
    norms = getattr(self, "up_norms", (lambda h, v: h, lambda h, v: h))
    h = _act(norms[0](self.up1(h), v))
    h = _act(norms[1](self.up2(h), v))
    return self.to_rgb(h)

  def swap(self, x_target: jax.Array, v_source: jax.Array) -> jax.Array:
    """Pixels in [0, 1]: the targets with the identity v_source."""
    return jax.nn.sigmoid(self(x_target, v_source))


class PatchGAN(nnx.Module):
  """(x [B, H, W, 3], v [B, id_dim] or None) -> (patch logits [B, h, w], [hidden feature maps]).

  With id_dim > 0 each patch logit adds <embed(v), h> for the last hidden features h at that
  patch (projection discriminator); v is then required."""

  def __init__(self, channels: tuple[int, int, int], in_features: int, id_dim: int = 0, *,
               rngs: nnx.Rngs):  # fmt: skip
    widths = (in_features, *channels)
    self.convs = nnx.List([_conv(a, b, 4, s, rngs)
                           for a, b, s in zip(widths[:-1], widths[1:], (2, 2, 1), strict=True)])  # fmt: skip
    self.out = _conv(widths[-1], 1, 4, 1, rngs)
    self.id_dim = id_dim
    if id_dim:
      self.embed = nnx.Linear(id_dim, widths[-1], use_bias=False, rngs=rngs)

  def __call__(self, x: jax.Array, v: jax.Array | None = None) -> tuple[jax.Array, list[jax.Array]]:
    h, feats = 2.0 * x - 1.0, []
    for conv in self.convs:
      h = _act(conv(h))
      feats.append(h)
    logits = self.out(h)[..., 0]
    if self.id_dim:
      if v is None or v.shape != (x.shape[0], self.id_dim):
        raise ValueError(f"PatchGAN with projection: want v [{x.shape[0]}, {self.id_dim}], got "
                         f"{None if v is None else v.shape}.")  # fmt: skip
      logits = logits + jnp.einsum("bhwc,bc->bhw", h, self.embed(v))
    return logits, feats


def downsample(x: jax.Array) -> jax.Array:
  """2x2 average pooling (odd sizes: the last row / column is dropped)."""
  b, h, w, c = x.shape
  x = x[:, : h - h % 2, : w - w % 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class MultiScaleDiscriminator(nnx.Module):
  """model(x, v=None) -> [(patch logits [B, h_s, w_s], feature maps) for each scale s]; v, the
  identity vector each face is judged with, is required with cfg.disc_projection and ignored
  without it."""

  def __init__(self, cfg: SimSwapConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    self.projection = bool(cfg.disc_projection)
    id_dim = cfg.id_dim if cfg.disc_projection else 0
    self.nets = nnx.List([PatchGAN(cfg.disc_channels, cfg.image_shape[-1], id_dim, rngs=rngs)
                          for _ in range(cfg.num_scales)])  # fmt: skip
    if cfg.code_classes:
      if not cfg.bottleneck:
        raise ValueError("code_classes > 0 classifies the generator's code: set a bottleneck.")
      self.code_head = nnx.List([nnx.Linear(cfg.bottleneck, 256, rngs=rngs),
                                 nnx.Linear(256, cfg.code_classes, rngs=rngs)])  # fmt: skip

  def __call__(self, x: jax.Array, v: jax.Array | None = None):
    nn.check_images(x, self.image_shape, "MultiScaleDiscriminator")
    v = v if self.projection else None
    out = []
    for i, net in enumerate(self.nets):
      out.append(net(x, v))
      if i + 1 < len(self.nets):
        x = downsample(x)
    return out

  def reproject(self, out, dv: jax.Array) -> list[jax.Array]:
    """The patch logits of `out` = self(x, v) as self(x, v + dv) gives them, without a second pass.

    The projection term <embed(v), h> is linear in v (embed has no bias) and the features h do
    not depend on v, so each scale's logits move by <embed(dv), h> for its last hidden map h."""
    if not self.projection:
      raise ValueError("reproject needs a projection discriminator (disc_projection).")
    return [logits + jnp.einsum("bhwc,bc->bhw", feats[-1], net.embed(dv))
            for (logits, feats), net in zip(out, self.nets, strict=True)]  # fmt: skip

  def classify_code(self, code: jax.Array) -> jax.Array:
    """Logits [B, code_classes] of the person whose face the generator's code [B, bottleneck] is."""
    return self.code_head[1](_act(self.code_head[0](code)))

  def critic(self, x: jax.Array, v: jax.Array | None = None) -> jax.Array:
    """One score per example [B]: the mean patch logit, summed over scales (for the penalty)."""
    return sum(logits.mean(axis=(1, 2)) for logits, _ in self(x, v))


def unit(v: jax.Array) -> jax.Array:
  """Rows scaled to unit length (the identity vector fed to the AdaIN blocks)."""
  return v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
