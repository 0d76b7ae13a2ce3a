"""Pasting a swapped face back into its photo: inverse warp, a landmark mask, colour transfer and
alpha or Poisson blending.

The mask is the convex hull of the target's 68 landmarks, eroded and feathered so that it falls to
exactly 0 before the hull's edge: every pixel outside the hull is returned bit-identical.
"""

import numpy as np

from genjax.faces import align

BLENDS = ("alpha", "poisson")


def _cv2():
  try:
    import cv2
  except ImportError as e:
    from genjax.faces.detect import EXTRA_HINT

    raise ImportError(f"OpenCV is not installed; {EXTRA_HINT}") from e
  return cv2


def hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """uint8 [H, W]: 1 inside the convex hull of points [N, 2] (x, y), 0 outside."""
  cv2 = _cv2()
  mask = np.zeros(shape, np.uint8)
  hull = cv2.convexHull(np.round(np.asarray(points)).astype(np.int32))
  cv2.fillConvexPoly(mask, hull, 1)
  return mask


def face_mask(landmarks68: np.ndarray, shape: tuple[int, int], *, erode: float = 0.04,
              feather: float = 0.06) -> np.ndarray:  # fmt: skip
  """float32 [H, W] blending weights in [0, 1] from the 68 landmarks of a face.

  The hull is eroded by `erode` and then blurred over `feather` (both as fractions of the face's
  size, the square root of the hull's area); the blur's kernel is no wider than the erosion plus
  the feather, and the erosion is at least the blur's radius, so the weights are exactly 0 on and
  outside the hull.
  """
  cv2 = _cv2()
  hull = hull_mask(landmarks68, shape)
  size = np.sqrt(max(float(hull.sum()), 1.0))
  r_blur = max(1, int(round(feather * size)))
  r_erode = max(r_blur + 1, int(round((erode + feather) * size)))
  core = cv2.erode(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_erode + 1,) * 2))
  k = 2 * r_blur + 1
  soft = cv2.GaussianBlur(core.astype(np.float32), (k, k), r_blur / 2.0)
  return np.where(hull > 0, soft, 0.0).astype(np.float32)


_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                        [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]])  # fmt: skip
_WHITE = _RGB_TO_XYZ.sum(axis=1)  # D65 white of sRGB


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
  """sRGB in [0, 1] [..., 3] -> CIE L*a*b* (L in [0, 100]), D65."""
  rgb = np.asarray(rgb, np.float64)
  lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
  t = lin @ _RGB_TO_XYZ.T / _WHITE
  f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
  return np.stack(
    [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
  )


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
  """Inverse of rgb_to_lab (values may leave [0, 1] for out-of-gamut colours; not clipped)."""
  lab = np.asarray(lab, np.float64)
  fy = (lab[..., 0] + 16) / 116
  f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
  t = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
  lin = (t * _WHITE) @ np.linalg.inv(_RGB_TO_XYZ).T
  lin = np.maximum(lin, 0.0)
  return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def match_color(src: np.ndarray, ref: np.ndarray, weight: np.ndarray) -> np.ndarray:
  """Colour transfer (Reinhard et al. 2001): per LAB channel, src's weighted mean/std set to ref's.

  src, ref [H, W, 3] in [0, 1]; weight [H, W] >= 0 (the paste mask). Returns [H, W, 3] in [0, 1].
  """
  w = weight[..., None] / max(float(weight.sum()), 1e-12)
  ls, lr = rgb_to_lab(src), rgb_to_lab(ref)
  mu_s, mu_r = (ls * w).sum((0, 1)), (lr * w).sum((0, 1))
  sd_s = np.sqrt((np.square(ls - mu_s) * w).sum((0, 1))) + 1e-6
  sd_r = np.sqrt((np.square(lr - mu_r) * w).sum((0, 1)))
  return np.clip(lab_to_rgb((ls - mu_s) / sd_s * sd_r + mu_r), 0.0, 1.0).astype(np.float32)


def _bbox(mask: np.ndarray, pad: int = 2) -> tuple[slice, slice]:
  rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
  h, w = mask.shape
  return (slice(max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)),
          slice(max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)))  # fmt: skip


def paste_back(photo: np.ndarray, face: np.ndarray, m: np.ndarray, landmarks68: np.ndarray, *,
               blend: str = "alpha", color: bool = True, erode: float = 0.04,
               feather: float = 0.06) -> np.ndarray:  # fmt: skip
  """Puts a (swapped) aligned face crop back into the photo it was cut from.

  The crop is warped back by the inverse of m; inside the mask of the target's landmarks it is
  colour matched to the photo (Reinhard, LAB) and blended: "alpha" gives
  out = w * face' + (1 - w) * photo with the feathered weights w of `face_mask`; "poisson" solves
  for the face's gradients with the photo's values on the mask's edge (Perez et al. 2003, OpenCV's
  seamlessClone). Outside the hull of the landmarks the photo is returned unchanged.

  Args:
    photo: [H, W, 3] float in [0, 1].
    face: [s, s, 3] float in [0, 1], the aligned crop (e.g. a model's output).
    m: [2, 3] photo -> crop transform the crop was made with (genjax.faces.align.crop).
    landmarks68: [68, 2] the target's landmarks in photo pixels.

  Returns:
    [H, W, 3] float32.
  """
  if blend not in BLENDS:
    raise ValueError(f"paste_back: blend must be one of {BLENDS}, not {blend!r}.")
  photo = np.asarray(photo, np.float32)
  if photo.ndim != 3 or photo.shape[-1] != 3 or face.ndim != 3 or face.shape[-1] != 3:
    raise ValueError(f"paste_back: want [H, W, 3] photo and face; got {photo.shape}, {face.shape}.")
  h, w = photo.shape[:2]
  inv = align.invert(m)
  weights = face_mask(landmarks68, (h, w), erode=erode, feather=feather)
  covered = align.warp(np.ones(face.shape[:2], np.float32), inv, (h, w), border="zero")
  weights = weights * (covered >= 1.0 - 1e-6)  # only where the crop reaches
  out = photo.copy()
  if not weights.any():
    return out
  rs, cs = _bbox(weights > 0)
  new = align.warp(np.asarray(face, np.float32), inv, (h, w))[rs, cs]
  region, wgt = photo[rs, cs], weights[rs, cs]
  if color:
    new = match_color(new, region, wgt)
  if blend == "alpha":
    blended = wgt[..., None] * new + (1.0 - wgt[..., None]) * region
  else:
    blended = _poisson(new, region, wgt)
  inside = wgt > 0  # write only where the weight is positive: outside pixels stay bit-identical
  out[rs, cs][inside] = blended[inside]
  return out


def _poisson(new: np.ndarray, region: np.ndarray, wgt: np.ndarray) -> np.ndarray:
  """seamlessClone of new into region under the mask w > 0.5, on a padded canvas so that the mask
  never touches the border (OpenCV then places the source without a shift)."""
  cv2 = _cv2()
  pad = 8
  to_u8 = lambda v: np.round(np.clip(v, 0, 1) * 255).astype(np.uint8)
  src = cv2.copyMakeBorder(to_u8(new), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
  dst = cv2.copyMakeBorder(to_u8(region), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
  mask = np.pad((wgt > 0.5).astype(np.uint8) * 255, pad)
  if not mask.any():
    return region
  x, y, bw, bh = cv2.boundingRect(mask)
  out = cv2.seamlessClone(src, dst, mask, (x + bw // 2, y + bh // 2), cv2.NORMAL_CLONE)
  out = out[pad:-pad, pad:-pad].astype(np.float32) / 255.0
  # Blend the cloned face in with the same feathered weights, so the edge is soft as in "alpha".
  return wgt[..., None] * out + (1.0 - wgt[..., None]) * region
