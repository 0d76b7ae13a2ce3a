"""Face-landmark regressor: an aligned face crop -> dlib's 68 landmarks, for a pose/expression loss.

x [B, S, S, 3] -> stride-2 conv stages (each with a residual 3x3 conv) -> a head -> [B, 68, 2]
landmark (x, y) in crop pixels. Two heads: "linear" (flatten, one linear layer: the points regressed
from the whole last map) and "heatmap" (integral regression, Sun et al. 2018: the last map brought
back up to the second stage's resolution through the finer maps, as in a feature pyramid, one
logit map per point, a softmax over the map's cells and the expected cell centre: points that are
localized where they appear, and differentiable in the image). Trained by experiments/landmarks
on the aligned crops of the LFW photos with dlib's landmarks as labels; a face-swap generator can
then be asked to keep the target's landmarks (experiments/simswap, loss.landmarks) through a
differentiable stand-in for dlib's shape predictor, which judges the swaps but is not
differentiable.
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
  (identity.conv_stages, the identity net's trunk); head: "linear" or "heatmap" (module
  docstring; "heatmap" needs at least three stages)."""

  image_shape: tuple[int, int, int] = (100, 100, 3)
  channels: tuple[int, ...] = (16, 32, 64, 96)
  head: str = "linear"  # "linear" | "heatmap"


HEADS = ("linear", "heatmap")
HEATMAP_STAGE = 1  # the heatmap head's resolution: that of stage 1's output (S / 4)


class LandmarkNet(nnx.Module):
  """model(x) -> landmarks [B, 68, 2] (x, y) in crop pixels."""

  def __init__(self, cfg: LandmarkConfig, *, rngs: nnx.Rngs):
    if cfg.head not in HEADS:
      raise ValueError(f"LandmarkConfig.head must be one of {HEADS}, not {cfg.head!r}.")
    if cfg.head == "heatmap" and len(cfg.channels) < HEATMAP_STAGE + 2:
      raise ValueError(f"the heatmap head needs at least {HEATMAP_STAGE + 2} conv stages, "
                       f"LandmarkConfig.channels has {len(cfg.channels)}.")  # fmt: skip
    self.image_shape = tuple(cfg.image_shape)
    self.head_kind = cfg.head
    self.down, self.same, self.norms = identity.conv_stages(cfg.image_shape[-1], cfg.channels, rngs)
    zeros = nnx.initializers.zeros_init()
    if cfg.head == "linear":
      side = cfg.image_shape[0]
      for _ in cfg.channels:
        side = -(-side // 2)  # SAME padding, stride 2
      self.head = nnx.Linear(side * side * cfg.channels[-1], 2 * NUM_POINTS, kernel_init=zeros,
                             rngs=rngs)  # fmt: skip
    else:
      # one 3x3 conv per step up, on [the coarser map resized, the finer map], to the finer width
      fine = cfg.channels[HEATMAP_STAGE:-1][::-1]  # the finer maps' widths, coarsest first
      coarse = (cfg.channels[-1], *fine[:-1])  # the width of what comes up to each
      self.up = nnx.List([nn.Conv(c + f, f, kernel_size=(3, 3), padding="SAME", rngs=rngs)
                          for c, f in zip(coarse, fine, strict=True)])  # fmt: skip
      # zero logits at init: every point starts at the crop's centre
      self.head = nn.Conv(fine[-1], NUM_POINTS, kernel_size=(1, 1), kernel_init=zeros, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    nn.check_images(x, self.image_shape, "LandmarkNet")
    size = jnp.asarray(self.image_shape[1::-1], x.dtype)  # (W, H)
    if self.head_kind == "linear":
      h = identity.run_stages(self.down, self.same, self.norms, 2.0 * x - 1.0)
      # the head predicts offsets (in units of the crop size) from the crop's centre
      out = self.head(h.reshape(h.shape[0], -1)).reshape(-1, NUM_POINTS, 2)
      return (out + 0.5) * size
    maps = identity.stage_maps(self.down, self.same, self.norms, 2.0 * x - 1.0)
    t = maps[-1]
    for conv, fine in zip(self.up, maps[HEATMAP_STAGE:-1][::-1], strict=True):
      t = jax.image.resize(t, (*fine.shape[:3], t.shape[3]), "bilinear")
      t = jax.nn.relu(conv(jnp.concatenate([t, fine], axis=-1)))
    return soft_argmax(self.head(t), size)


def soft_argmax(logits: jax.Array, size: jax.Array) -> jax.Array:
  """[B, h, w, P] logit maps -> [B, P, 2] expected (x, y) in image pixels, under a softmax over the
  h * w cells; cell (i, j) covers the image's pixels [j W / w, (j + 1) W / w) (its centre at
  (j + 1/2) W / w - 1/2, pixel centres at integers), size = (W, H)."""
  b, h, w, p = logits.shape
  prob = jax.nn.softmax(logits.reshape(b, h * w, p), axis=1).reshape(b, h, w, p)
  cx = (jnp.arange(w, dtype=logits.dtype) + 0.5) * size[0] / w - 0.5
  cy = (jnp.arange(h, dtype=logits.dtype) + 0.5) * size[1] / h - 0.5
  ex = jnp.einsum("bhwp,w->bp", prob, cx)
  ey = jnp.einsum("bhwp,h->bp", prob, cy)
  return jnp.stack([ex, ey], axis=-1)


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
