"""Face-landmark regressor: an aligned face crop -> dlib's 68 landmarks, for a pose/expression loss.

x [B, S, S, 3] -> stride-2 conv stages (each with a residual 3x3 conv) -> flatten -> linear ->
[B, 68, 2] landmark (x, y) in crop pixels. Trained by experiments/landmarks on the aligned crops of
the LFW photos with dlib's landmarks as labels; a face-swap generator can then be asked to keep
the target's landmarks (experiments/simswap, loss.landmarks) through a differentiable stand-in for
dlib's shape predictor, which judges the swaps but is not differentiable.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from genjax import nn
from genjax.models import identity

NUM_POINTS = 68

# dlib's 68 points under a horizontal flip: point i of the mirrored face is point FLIP_68[i] of the
# face (jaw, brows, nose base, eyes and mouth swap sides; the nose bridge stays).
FLIP_68 = (
  *range(16, -1, -1),  # jaw 0..16
  *range(26, 21, -1), *range(21, 16, -1),  # brows 17..21 <-> 22..26
  27, 28, 29, 30, *range(35, 30, -1),  # nose bridge, nose base 31..35
  45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes 36..41 <-> 42..47
  *range(54, 47, -1), *range(59, 54, -1),  # outer lips 48..54, 55..59
  *range(64, 59, -1), *range(67, 64, -1),  # inner lips 60..64, 65..67
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class LandmarkConfig:
  """image_shape (S, S, 3); channels: one stride-2 3x3 conv (+ one residual 3x3 conv) per entry
  (identity.conv_stages, the identity net's trunk)."""

  image_shape: tuple[int, int, int] = (100, 100, 3)
  channels: tuple[int, ...] = (16, 32, 64, 96)


class LandmarkNet(nnx.Module):
  """model(x) -> landmarks [B, 68, 2] (x, y) in crop pixels."""

  def __init__(self, cfg: LandmarkConfig, *, rngs: nnx.Rngs):
    self.image_shape = tuple(cfg.image_shape)
    self.down, self.same, self.norms = identity.conv_stages(cfg.image_shape[-1], cfg.channels, rngs)
    side = cfg.image_shape[0]
    for _ in cfg.channels:
      side = -(-side // 2)  # SAME padding, stride 2
    self.head = nnx.Linear(side * side * cfg.channels[-1], 2 * NUM_POINTS,
                           kernel_init=nnx.initializers.zeros_init(), rngs=rngs)  # fmt: skip

  def __call__(self, x: jax.Array) -> jax.Array:
    nn.check_images(x, self.image_shape, "LandmarkNet")
    h = identity.run_stages(self.down, self.same, self.norms, 2.0 * x - 1.0)
    # the head predicts offsets (in units of the crop size) from the crop's centre
    out = self.head(h.reshape(h.shape[0], -1)).reshape(-1, NUM_POINTS, 2)
    return (out + 0.5) * jnp.asarray(self.image_shape[1::-1], x.dtype)


def flip(x: jax.Array, points: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mirror images [B, H, W, C] and their landmarks [B, 68, 2] (pixel centres at integers)."""
  w = x.shape[2]
  mirrored = points[:, jnp.asarray(FLIP_68)]
  return x[:, :, ::-1], mirrored.at[..., 0].set(w - 1 - mirrored[..., 0])


def point_error(points: jax.Array, ref: jax.Array, eps: float = 1e-6) -> jax.Array:
  """[B]: mean Euclidean distance of the 68 points to ref's, in pixels (smoothed at 0 by eps so the
  gradient is defined when they coincide)."""
  return jnp.sqrt(((points - ref) ** 2).sum(-1) + eps).mean(-1)


def normalized_error(points: jax.Array, ref: jax.Array) -> jax.Array:
  """[B]: mean point distance over ref's inter-ocular distance (outer eye corners, points 36 and
  45), the landmark error that genjax.evaluate.face_identity gives dlib's landmarks."""
  iod = jnp.linalg.norm(ref[:, 36] - ref[:, 45], axis=-1)
  return jnp.linalg.norm(points - ref, axis=-1).mean(-1) / iod
