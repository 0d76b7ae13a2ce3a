"""How faithful saliency maps are: Average Drop, Increase in Confidence, Win, deletion/insertion AUC,
ROAD curves, and rank correlation for the model-parameter randomization sanity check.

Conventions: `y` is the model's confidence (softmax probability) for the explained class on the
original image, `o` on the explanation-masked image E = L * x (the normalized map L in [0, 1] times
the image, Chattopadhay et al. 2018, section 5.1). Every function returns per-example values, so
means, standard deviations and subsets are the caller's choice.
"""

from collections.abc import Sequence

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


# Neighbour weights of noisy linear imputation (Rong et al. 2022): 1/6 for the 4 direct
# neighbours, 1/12 for the 4 diagonal ones. Symmetric, so convolution and correlation agree.
_STENCIL = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))


def _neighbour_sum(v: jax.Array) -> jax.Array:
  """sum_j w_ij v_j over the in-image 8-neighbours j of each pixel i of v [H, W] (zero padding)."""
  k = jnp.asarray(_STENCIL, v.dtype)[:, :, None, None]
  out = jax.lax.conv_general_dilated(v[None, :, :, None], k, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
  return out[0, :, :, 0]


def _linear_impute(x: jax.Array, removed: jax.Array, tol: float, maxiter: int) -> jax.Array:
  """Solves (D - W)_rr x_r = W_rk x_k for one channel x [H, W] with mask removed [H, W]."""
  m = removed.astype(x.dtype)
  d = _neighbour_sum(jnp.ones_like(x))  # D_ii = sum of the in-image neighbour weights
  # On the full grid: the system's rows at removed pixels, the identity at kept ones (there the
  # right-hand side is 0, so CG started from a removed-only x0 never touches them).
  a = lambda v: m * (d * v - _neighbour_sum(m * v)) + (1 - m) * v
  b = m * _neighbour_sum((1 - m) * x)
  # Start from the mean of the kept pixels: it removes the slowest (near-constant) error modes.
  x0 = m * ((1 - m) * x).sum() / jnp.maximum((1 - m).sum(), 1.0)
  # An absolute floor on the residual, far below any tolerance that matters: where every kept
  # neighbour is 0 (the background of a Fashion-MNIST image), b = 0 and a relative test alone
  # iterates toward x = 0 until p^T A p underflows to 0 and the step divides by it (NaN).
  atol = 1e-12 * jnp.abs(x).max()
  v, _ = jax.scipy.sparse.linalg.cg(a, b, x0=x0, tol=tol, atol=atol, maxiter=maxiter)
  return jnp.where(removed, v, x)


def noisy_linear_impute(
  x: jax.Array,
  removed: jax.Array,
  *,
  key: jax.Array,
  noise: float = 0.01,
  tol: float = 1e-6,
  maxiter: int = 2000,
) -> jax.Array:
  """Noisy linear imputation of ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation
  Strategy for Attribution Methods", ICML, section 4).

  Each removed pixel i becomes the weighted mean of its in-image 8-neighbours N(i),
    x_i = sum_{j in N(i)} w_ij x_j / D_i,   D_i = sum_{j in N(i)} w_ij,
  with w = 1/6 for direct and 1/12 for diagonal neighbours. Neighbours may be removed too, so all
  removed pixels r are solved jointly from the kept ones k, per channel:
    (D_r - W_rr) x_r = W_rk x_k,
  then x_r += noise * N(0, 1) independently per pixel and channel. The matrix is symmetric and, when
  at least one pixel is kept (every 8-connected removed region then borders a kept pixel), diagonally
  dominant and irreducible, hence positive definite: it is solved matrix-free by conjugate gradients
  (`jax.scipy.sparse.linalg.cg`, the stencil as a 3x3 convolution) started from the mean of the kept
  pixels, stopping at relative residual `tol` (1e-12 max |x| when b = 0) or after `maxiter`
  iterations. A 224 x 224 image with 90% removed in one blob needs ~500 iterations; in float32 the result is then within ~1e-3 of the
  exact solution (kappa ~ 1e4 times float32 rounding), far below the default noise. Kept pixels are
  returned unchanged, exactly. With nothing kept the removed pixels become 0 (+ noise).

  Args:
    x: images [B, H, W, C].
    removed: boolean mask [B, H, W] of the pixels to impute.
    key: PRNG key for the noise.
    noise: standard deviation of the Gaussian noise added to imputed pixels.
    tol, maxiter: the CG stopping rule.

  Returns:
    Images [B, H, W, C].
  """
  if x.ndim != 4 or removed.shape != x.shape[:3]:
    raise ValueError(f"want x [B, H, W, C] and removed [B, H, W]; got {x.shape}, {removed.shape}")
  b, h, w, ch = x.shape
  removed = removed.astype(bool)
  # One solve per example and channel, under a single vmap (a nested one compiles ~3x slower).
  xt = jnp.moveaxis(x, -1, 1).reshape(b * ch, h, w)
  solve = jax.vmap(lambda xc, r: _linear_impute(xc, r, tol, maxiter))
  x_hat = jnp.moveaxis(solve(xt, jnp.repeat(removed, ch, axis=0)).reshape(b, ch, h, w), 1, -1)
  eps = noise * jax.random.normal(key, x.shape, x_hat.dtype)
  return jnp.where(removed[..., None], x_hat + eps, x)


def road_curve(
  predict,
  x: jax.Array,
  saliency: jax.Array,
  c: jax.Array,
  *,
  key: jax.Array,
  fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
  order: str = "morf",
  noise: float = 0.01,
) -> jax.Array:
  """ROAD: confidence in class c after removing a fraction of pixels and imputing them
  (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution Methods").

  For each fraction p the round(p * H * W) pixels first in the order are removed and filled by
  `noisy_linear_impute`: MoRF ("most relevant first", order="morf") takes the most salient first, so
  a faithful map makes the curve fall fast (lower is better); LeRF ("least relevant first",
  order="lerf") takes the least salient first, so the curve should stay high. Ties keep raster order
  in both (like `perturbation_curve`). Fraction i uses the noise key fold_in(key, i).

  Args:
    predict: images [N, H, W, C] -> probabilities [N, K].
    x: images [B, H, W, C].
    saliency: maps [B, H, W].
    c: classes [B] to read the confidence of.
    key: PRNG key for the imputation noise.
    fractions: removal fractions in [0, 1].
    order: "morf" or "lerf".
    noise: standard deviation of the imputation noise.

  Returns:
    Confidences [B, len(fractions)].
  """
  if order not in ("morf", "lerf"):
    raise ValueError(f"order must be 'morf' or 'lerf', got {order!r}")
  b, h, w, _ = x.shape
  if saliency.shape != (b, h, w) or c.shape != (b,):
    raise ValueError(
      f"want saliency [B, H, W], c [B] for x {x.shape}; got {saliency.shape}, {c.shape}"
    )
  rank = jnp.argsort(_order(saliency if order == "morf" else -saliency), axis=-1).reshape(b, h, w)
  ks = jnp.round(jnp.asarray(fractions, jnp.float32) * h * w).astype(jnp.int32)

  def at(i):
    img = noisy_linear_impute(x, rank < ks[i], key=jax.random.fold_in(key, i), noise=noise)
    return jnp.take_along_axis(predict(img), c[:, None], axis=-1)[:, 0]

  return jax.lax.map(at, jnp.arange(len(fractions))).T


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
