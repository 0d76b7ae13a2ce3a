"""A CNN classifier whose convolutional encoder is shared with a decoder (autoencoder regularization).

    x [B, 28, 28, 1] -> stage1 -> pool -> stage2 -> pool -> stage3 -> GAP -> linear -> logits [B, K]
                                                              \\-> decoder -> x_hat logits [B, 28, 28, 1]

Each stage is `depth` x (3x3 conv, batch norm, activation). The stage outputs ("stage1", "stage2",
"stage3", taken after the activation and before pooling) are the layers the CAM methods explain.
The last stage feeds global average pooling and a linear head, so CAM (Zhou et al. 2016) is defined
there. With ReLU activations the map from any stage output to the logits is piecewise linear
(max pooling, batch norm in inference mode and the head are linear or piecewise linear), the case
in which Grad-CAM++'s closed-form derivatives are exact; gelu or softplus make it smooth.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import kernels, nn


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
  """Architecture of the classifier.

  channels: width of each convolutional stage (at least three stages).
  depth: convolutions per stage.
  activation: relu (piecewise linear), gelu or softplus (smooth).
  decoder: build the decoder that reconstructs x from the last stage (needed when lambda_rec > 0).
  """

  image_shape: tuple[int, int, int] = (28, 28, 1)
  num_classes: int = 10
  channels: tuple[int, ...] = (32, 64, 128)
  depth: int = 2
  activation: str = "relu"
  decoder: bool = True


class Stage(nnx.Module):
  """(2x2 max pooling unless first) -> depth x (3x3 conv, batch norm, activation)."""

  def __init__(self, c_in: int, c_out: int, depth: int, activation: str, *, pool: bool, rngs):
    convs, norms = [], []
    for _ in range(depth):
      convs.append(nn.Conv(c_in, c_out, (3, 3), padding=1, use_bias=False, rngs=rngs))
      norms.append(nnx.BatchNorm(c_out, momentum=0.9, rngs=rngs))
      c_in = c_out
    self.convs, self.norms = nnx.List(convs), nnx.List(norms)
    self.pool = pool
    self.act = nn.activation(activation)

  def __call__(self, h: jax.Array) -> jax.Array:
    if self.pool:
      h = kernels.max_pool_2x2(h)
    for conv, norm in zip(self.convs, self.norms, strict=True):
      h = self.act(norm(conv(h)))
    return h


class Classifier(nnx.Module):
  def __init__(self, cfg: ClassifierConfig, *, rngs: nnx.Rngs):
    if len(cfg.channels) < 3:
      raise ValueError(f"the classifier needs at least three stages, got channels={cfg.channels}.")
    h, w, c = self.image_shape = tuple(cfg.image_shape)
    pools = len(cfg.channels) - 1
    if h % 2**pools or w % 2**pools:
      raise ValueError(f"image size {h}x{w} must be divisible by {2**pools} ({pools} poolings).")
    self.layers = self.layer_names(cfg.channels)
    c_in = c
    for i, (name, c_out) in enumerate(zip(self.layers, cfg.channels, strict=True)):
      stage = Stage(c_in, c_out, cfg.depth, cfg.activation, pool=i > 0, rngs=rngs)
      setattr(self, name, stage)
      c_in = c_out
    self.head = nnx.Linear(c_in, cfg.num_classes, rngs=rngs)
    self.act = nn.activation(cfg.activation)
    # Decoder: last stage -> x2 -> ... -> full size, one transposed conv per pooling.
    widths = (*cfg.channels[::-1][:pools], c)  # e.g. 128 -> 64 -> 1 for three stages
    ups = [
      nn.ConvTranspose2x(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    self.up = nnx.List(ups) if cfg.decoder else None

  @staticmethod
  def layer_names(channels) -> tuple[str, ...]:
    """The explainable layers, module paths of the stages: ("stage1", ..., "stageN")."""
    return tuple(f"stage{i + 1}" for i in range(len(channels)))

  def features(self, x: jax.Array) -> dict:
    """x [B, H, W, C] -> {layer: activation [B, h, w, c]} (each stage's output)."""
    nn.check_images(x, self.image_shape, "Classifier")
    feats, h = {}, x
    for name in self.layers:
      h = feats[name] = getattr(self, name)(h)
    return feats

  def decode(self, a: jax.Array) -> jax.Array:
    """Last-stage activation -> reconstruction logits [B, H, W, C]."""
    if self.up is None:
      raise ValueError("this classifier was built with decoder=False.")
    h = a
    for k, layer in enumerate(self.up):
      h = layer(h)
      if k < len(self.up) - 1:
        h = self.act(h)
    return h

  def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
    """x -> (logits [B, K], {"features": {layer: A}, "x_hat": reconstruction logits or None})."""
    feats = self.features(x)
    last = feats[self.layers[-1]]
    logits = self.head(last.mean(axis=(1, 2)))
    x_hat = self.decode(last) if self.up is not None else None
    return logits, {"features": feats, "x_hat": x_hat}


def accuracy(logits: jax.Array, y: jax.Array) -> jax.Array:
  return jnp.mean(jnp.argmax(logits, -1) == y)
