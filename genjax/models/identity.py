"""Face-identity encoder trained with a margin-softmax head (CosFace / ArcFace) on LFW3D identities.

x [B, 100, 100, 3] -> stride-2 conv stages -> global average pool -> linear -> embedding v [B, D].
Two faces are the same person when cos(v_1, v_2) exceeds a threshold. The class weights W [D, K]
of the training identities live in the model; only the embedding is used after training (in the
identity loss of a swap model, or, for a second independently trained net, in evaluation).
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import nn


@dataclasses.dataclass(frozen=True)
class IdentityConfig:
  """image_shape (H, W, 3); channels: one stride-2 3x3 conv (+ one 3x3 conv) per entry;
  embed_dim: D; num_classes: K training identities."""

  image_shape: tuple[int, int, int] = (100, 100, 3)
  channels: tuple[int, ...] = (32, 64, 96, 128)
  embed_dim: int = 128
  num_classes: int = 128


def conv_stages(in_channels: int, channels, rngs: nnx.Rngs):
  """(down, same, norms): per entry of channels, a stride-2 3x3 conv, a 3x3 conv and its LayerNorm
  (the trunk of IdentityNet and of genjax.models.landmarks.LandmarkNet; run_stages and
  stage_maps apply it)."""
  widths = (in_channels, *channels)
  conv = lambda a, b, s: nn.Conv(a, b, kernel_size=(3, 3), strides=(s, s), padding="SAME",
                                  rngs=rngs)  # fmt: skip
  down = nnx.List([conv(a, b, 2) for a, b in zip(widths[:-1], widths[1:], strict=True)])
  same = nnx.List([conv(b, b, 1) for b in widths[1:]])
  return down, same, nnx.List([nnx.LayerNorm(b, rngs=rngs) for b in widths[1:]])


def stage_maps(down, same, norms, h: jax.Array) -> list[jax.Array]:
  """Each stage's output map for input h, finest first: per stage of conv_stages, relu(down(h)),
  then a residual relu(norm(same(h)))."""
  maps = []
  for d, s, n in zip(down, same, norms, strict=True):
    h = jax.nn.relu(d(h))
    h = h + jax.nn.relu(n(s(h)))
    maps.append(h)
  return maps


def run_stages(down, same, norms, h: jax.Array) -> jax.Array:
  """h through the stages of conv_stages: the last of stage_maps."""
  return stage_maps(down, same, norms, h)[-1]


class IdentityNet(nnx.Module):
  """model(x) -> (embedding [B, D], {"features": last conv map}); model.class_weights [D, K]."""

  def __init__(self, cfg: IdentityConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    self.down, self.same, self.norms = conv_stages(cfg.image_shape[-1], cfg.channels, rngs)
    self.embed = nnx.Linear(cfg.channels[-1], cfg.embed_dim, rngs=rngs)
    init = nnx.initializers.normal(1.0)
    self.class_weights = nnx.Param(init(rngs.params(), (cfg.embed_dim, cfg.num_classes)))

  def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
    nn.check_images(x, self.image_shape, "IdentityNet")
    h = run_stages(self.down, self.same, self.norms, 2.0 * x - 1.0)
    v = self.embed(h.mean(axis=(1, 2)))
    return v, {"features": h}


def cosine(v1: jax.Array, v2: jax.Array) -> jax.Array:
  """Row-wise cosine similarity of [B, D] embeddings -> [B]."""
  n = jnp.linalg.norm(v1, axis=-1) * jnp.linalg.norm(v2, axis=-1)
  return (v1 * v2).sum(-1) / jnp.maximum(n, 1e-12)
