"""Face-swap training augmentation in JAX, per batch: flip, small affine, colour jitter on input and
target alike, and a random warp of the input only (the model learns to undo it); a Gaussian blur
(low-passed views for an identity loss)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """Face-swap augmentation. The affine, flip and colour change apply to input and target alike;
  the random warp (a smooth displacement field) only to the input, so the model must undo it.

  rotate: max rotation in degrees; scale, shift: max relative zoom and translation;
  warp: std of the control-point displacement, as a fraction of the image size;
  warp_grid: control points per side; brightness, contrast, saturation: max jitter.
  """

  flip: bool = True
  rotate: float = 10.0
  scale: float = 0.05
  shift: float = 0.05
  warp: float = 0.03
  warp_grid: int = 5
  brightness: float = 0.1
  contrast: float = 0.1
  saturation: float = 0.1


def bilinear(img: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
  """img [H, W, C] sampled at float coordinates rows, cols [H', W'] (edge values repeat outside).

  A convex combination of the four neighbours, so values stay in the input's range.
  """
  h, w = img.shape[:2]
  rows, cols = jnp.clip(rows, 0, h - 1), jnp.clip(cols, 0, w - 1)
  r0, c0 = jnp.floor(rows).astype(jnp.int32), jnp.floor(cols).astype(jnp.int32)
  r1, c1 = jnp.minimum(r0 + 1, h - 1), jnp.minimum(c0 + 1, w - 1)
  fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
  top = img[r0, c0] * (1 - fc) + img[r0, c1] * fc
  bottom = img[r1, c0] * (1 - fc) + img[r1, c1] * fc
  return top * (1 - fr) + bottom * fr


def _augment_one(key: jax.Array, x: jax.Array, cfg: AugmentConfig, mask=None):
  h, w, _ = x.shape
  k = jax.random.split(key, 9)
  u = lambda kk, m: jax.random.uniform(kk, (), minval=-m, maxval=m)
  # Inverse affine map: output pixel -> source coordinates about the centre.
  ang, s = jnp.deg2rad(u(k[0], cfg.rotate)), 1.0 + u(k[1], cfg.scale)
  ty, tx = u(k[2], cfg.shift) * h, u(k[3], cfg.shift) * w
  flip = jnp.where(jnp.logical_and(cfg.flip, jax.random.bernoulli(k[4])), -1.0, 1.0)
  cy, cx = (h - 1) / 2, (w - 1) / 2
  r, c = jnp.meshgrid(jnp.arange(h, dtype=x.dtype) - cy, jnp.arange(w, dtype=x.dtype) - cx,
                      indexing="ij")  # fmt: skip
  c = c * flip
  src_r = (jnp.cos(ang) * r - jnp.sin(ang) * c) / s + cy - ty
  src_c = (jnp.sin(ang) * r + jnp.cos(ang) * c) / s + cx - tx
  # Random warp: Gaussian displacements of a coarse grid of control points (edges pinned at 0),
  # upsampled bilinearly to a smooth field, as in the face-swap tools' random_warp.
  g = cfg.warp_grid
  d = jax.random.normal(k[5], (g, g, 2)) * cfg.warp * jnp.array([h, w], x.dtype)
  d = d.at[0].set(0).at[-1].set(0).at[:, 0].set(0).at[:, -1].set(0)
  d = jax.image.resize(d, (h, w, 2), "linear")
  target = bilinear(x, src_r, src_c)
  warped = bilinear(x, src_r + d[..., 0], src_c + d[..., 1])
  # Colour jitter, the same for both.
  b, ct, sat = u(k[6], cfg.brightness), 1.0 + u(k[7], cfg.contrast), 1.0 + u(k[8], cfg.saturation)

  def colour(v):
    v = (v - v.mean()) * ct + v.mean() + b
    gray = v.mean(axis=-1, keepdims=True)
    return jnp.clip(gray + sat * (v - gray), 0.0, 1.0)

  if mask is None:
    return colour(warped), colour(target)
  return colour(warped), colour(target), bilinear(mask[..., None], src_r, src_c)[..., 0]


def augment(key: jax.Array, x: jax.Array, cfg: AugmentConfig = AugmentConfig(), mask=None):
  """Face-swap training pair from a batch x [B, H, W, 3] in [0, 1] (jit-able).

  Args:
    mask: optional [B, H, W] weights (e.g. the face region) moved with the target's geometry.

  Returns:
    (x_in, x_target), both [B, H, W, 3] in [0, 1]: x_target is x under a random flip, small affine
    and colour jitter; x_in is the same plus a random warp. With a mask, also the mask under the
    target's flip and affine, [B, H, W].
  """
  keys = jax.random.split(key, x.shape[0])
  if mask is None:
    return jax.vmap(lambda kk, v: _augment_one(kk, v, cfg))(keys, x)
  return jax.vmap(lambda kk, v, m: _augment_one(kk, v, cfg, m))(keys, x, mask)


def blur_matrix(n: int, sigma: float, truncate: float = 4.0) -> np.ndarray:
  """[n, n] M with (M v)[i] = sum_t g[t] v[clip(i + t - r, 0, n - 1)]: the 1-D Gaussian filter of
  standard deviation sigma (taps out to r = int(truncate sigma + 0.5), normalized), edge values
  repeated beyond the border (scipy.ndimage's mode "nearest")."""
  r = int(truncate * sigma + 0.5)
  t = np.arange(-r, r + 1)
  g = np.exp(-0.5 * np.square(t / sigma))
  g /= g.sum()
  m = np.zeros((n, n))
  for i in range(n):
    np.add.at(m[i], np.clip(i + t, 0, n - 1), g)
  return m


def blur(x: jax.Array, sigma: float) -> jax.Array:
  """Images x [B, H, W, C] low-passed by a Gaussian of standard deviation sigma pixels (separable:
  one banded matrix product along H, one along W; edges repeated); x itself when sigma <= 0."""
  if sigma <= 0:
    return x
  m_h = jnp.asarray(blur_matrix(x.shape[1], sigma), x.dtype)
  m_w = jnp.asarray(blur_matrix(x.shape[2], sigma), x.dtype)
  x = jnp.einsum("ih,bhwc->biwc", m_h, x, precision="highest")
  return jnp.einsum("jw,biwc->bijc", m_w, x, precision="highest")
