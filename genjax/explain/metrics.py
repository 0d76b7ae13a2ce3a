"""How faithful saliency maps are: Average Drop, Increase in Confidence, Win, deletion/insertion AUC,
and rank correlation for the model-parameter randomization sanity check.

Conventions: `y` is the model's confidence (softmax probability) for the explained class on the
original image, `o` on the explanation-masked image E = L * x (the normalized map L in [0, 1] times
the image, Chattopadhay et al. 2018, section 5.1). Every function returns per-example values, so
means, standard deviations and subsets are the caller's choice.
"""

import jax
import jax.numpy as jnp


def average_drop(y: jax.Array, o: jax.Array) -> jax.Array:
  """100 * max(0, Y - O) / Y per example (the paper averages it over images: 'Average Drop %')."""
  return 100.0 * jnp.maximum(0.0, y - o) / jnp.maximum(y, 1e-12)


def increase_in_confidence(y: jax.Array, o: jax.Array) -> jax.Array:
  """100 * 1[Y < O] per example (its mean is '% Increase in Confidence')."""
  return 100.0 * (y < o).astype(jnp.float32)


def win(drop_a: jax.Array, drop_b: jax.Array) -> jax.Array:
  """100 * 1[drop_a < drop_b]: method a 'wins' an image when its map loses less confidence.

  The paper counts, over images, how often Grad-CAM++'s fall in confidence is lower than
  Grad-CAM's; ties (e.g. both 0) count as a win for neither, so win(a, b) + win(b, a) <= 100.
  """
  return 100.0 * (drop_a < drop_b).astype(jnp.float32)


def masked_inputs(x: jax.Array, maps: jax.Array) -> jax.Array:
  """E = L * x: images [B, H, W, C] times maps [B, H, W] in [0, 1]."""
  return x * maps[..., None]


def _order(saliency: jax.Array) -> jax.Array:
  """Pixel indices [B, HW] from most to least salient (stable: ties keep raster order)."""
  flat = saliency.reshape(saliency.shape[0], -1)
  return jnp.argsort(-flat, axis=-1, stable=True)


def perturbation_curve(
  predict,
  x: jax.Array,
  saliency: jax.Array,
  c: jax.Array,
  start: jax.Array,
  end: jax.Array,
  *,
  steps: int,
) -> jax.Array:
  """Confidence in class c as pixels move from `start` to `end` in order of saliency.

  After t of `steps` steps the top round(t * HW / steps) pixels hold `end` and the others `start`.
  predict: images [N, H, W, C] -> probabilities [N, K]. Returns [B, steps + 1] for t = 0..steps.
  Deletion (Petsiuk et al. 2018): start = x, end = baseline. Insertion: start = baseline, end = x.
  """
  b, h, w, ch = x.shape
  n = h * w
  rank = jnp.argsort(_order(saliency), axis=-1)  # rank[b, i] = position of pixel i in the order

  def at(t):
    k = jnp.round(t * n / steps).astype(jnp.int32)
    moved = (rank < k).reshape(b, h, w, 1)
    img = jnp.where(moved, end, start)
    p = predict(img)
    return jnp.take_along_axis(p, c[:, None], axis=-1)[:, 0]

  return jax.lax.map(at, jnp.arange(steps + 1)).T


def auc(curve: jax.Array) -> jax.Array:
  """Area under curves [B, T+1] sampled uniformly on [0, 1] (trapezoid rule)."""
  return (curve[:, 1:] + curve[:, :-1]).sum(-1) / (2 * (curve.shape[-1] - 1))


def blur(x: jax.Array, size: int = 7) -> jax.Array:
  """Box blur of images [B, H, W, C] with a size x size window (edge-padded): the insertion baseline."""
  pad = size // 2
  xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
  k = jnp.ones((size, size, 1, 1), x.dtype) / size**2
  k = jnp.tile(k, (1, 1, 1, x.shape[-1]))
  return jax.lax.conv_general_dilated(xp, k, (1, 1), "VALID", feature_group_count=x.shape[-1],
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip


def _ranks(v: jax.Array) -> jax.Array:
  """Average ranks (ties share the mean of their positions) along the last axis, 0-based."""
  s = jnp.sort(v, axis=-1)
  lo = jax.vmap(lambda a, q: jnp.searchsorted(a, q, side="left"))(
    s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1])
  )
  hi = jax.vmap(lambda a, q: jnp.searchsorted(a, q, side="right"))(
    s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1])
  )
  return ((lo + hi - 1) / 2).reshape(v.shape).astype(jnp.float32)  # fmt: skip


def spearman(a: jax.Array, b: jax.Array) -> jax.Array:
  """Spearman rank correlation per example between maps a, b [B, ...] (0 when a map is constant)."""
  ra = _ranks(a.reshape(a.shape[0], -1))
  rb = _ranks(b.reshape(b.shape[0], -1))
  ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
  den = jnp.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
  return jnp.where(den > 0, (ra * rb).sum(-1) / jnp.where(den > 0, den, 1.0), 0.0)
