"""Face alignment: a similarity transform from five landmarks to a fixed template, and its inverse.

The five landmarks are dlib's (shape_predictor_5_face_landmarks): 0, 1 the outer and inner corner
of the eye on the image's right, 2, 3 the outer and inner corner of the other eye, 4 the base of
the nose. A crop is the photo warped by M (2x3, photo -> crop pixels) so that the landmarks land on
`template(size)`; `paste` warps a crop back with M's inverse.
"""

import numpy as np

# The template in units of the distance between the eye centres, origin at their midpoint, y down:
# the Procrustes mean of dlib's five landmarks over the 1,138 original LFW photos of
# ../shared/data/faces/lfw in which dlib finds a face, made left-right symmetric.
TEMPLATE_UNIT = np.array([[0.696, 0.0], [0.304, 0.0], [-0.696, 0.0], [-0.304, 0.0], [0.0, 0.807]])
# Where the template sits in a crop, as fractions of its side: 0.32 of the side between the eye
# centres, their midpoint at (0.5, 0.27). On the same photos the eyebrows then lie below 0.11 (5th
# percentile of their top), the chin near 0.93 and the jaw's ends near 0.12 and 0.88: the face
# fills the crop, from the eyebrows to the chin.
TEMPLATE_SCALE, TEMPLATE_CENTER = 0.32, (0.5, 0.27)


# The face interior of an aligned crop (eyebrows to chin, jaw to jaw; see TEMPLATE_CENTER): an
# ellipse centred at (0.5, 0.52) of the side with semi-axes 0.34 across and 0.40 down.
INTERIOR_CENTER, INTERIOR_AXES = (0.5, 0.52), (0.34, 0.40)


def interior_mask(size: int, feather: float = 0.15) -> np.ndarray:
  """float32 [size, size] in [0, 1]: 1 inside the face-interior ellipse shrunk by `feather` (a
  fraction of its radius), 0 outside the ellipse, a smoothstep between."""
  yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
  (cx, cy), (ax, ay) = INTERIOR_CENTER, INTERIOR_AXES
  r = np.sqrt(np.square((xx - cx) / ax) + np.square((yy - cy) / ay))
  t = np.clip((1.0 - r) / feather, 0.0, 1.0)
  return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def template(size: int) -> np.ndarray:
  """[5, 2] (x, y) pixel positions of the five landmarks in a size x size crop."""
  return (TEMPLATE_UNIT * TEMPLATE_SCALE + np.asarray(TEMPLATE_CENTER)) * size


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """The least-squares similarity (rotation, uniform scale, translation) taking src to dst.

  Umeyama (1991), "Least-squares estimation of transformation parameters between two point
  patterns": with centred points s, d and the SVD U S V^T of cov = d^T s / n, R = U diag(1, det) V^T
  and scale = tr(diag(S) diag(1, det)) / var(s).

  Args:
    src, dst: [N, 2] (x, y) points, N >= 2.

  Returns:
    M [2, 3] float64 with dst ~= src @ M[:, :2].T + M[:, 2].
  """
  src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
  if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
    raise ValueError(f"similarity: want two [N, 2] arrays, N >= 2; got {src.shape}, {dst.shape}.")
  mu_s, mu_d = src.mean(0), dst.mean(0)
  s, d = src - mu_s, dst - mu_d
  var = np.square(s).sum(1).mean()
  if var == 0:
    raise ValueError("similarity: the source points coincide.")
  u, sv, vt = np.linalg.svd(d.T @ s / len(src))
  sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
  a = (np.trace(np.diag(sv) @ sign) / var) * (u @ sign @ vt)
  return np.concatenate([a, (mu_d - a @ mu_s)[:, None]], 1)


def invert(m: np.ndarray) -> np.ndarray:
  """The inverse of a 2x3 affine map."""
  a_inv = np.linalg.inv(m[:, :2])
  return np.concatenate([a_inv, (-a_inv @ m[:, 2])[:, None]], 1)


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
  """points [..., 2] (x, y) mapped by the 2x3 affine m."""
  return np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]


def compose(m2: np.ndarray, m1: np.ndarray) -> np.ndarray:
  """The affine map 'm1, then m2'."""
  return np.concatenate([m2[:, :2] @ m1[:, :2], (m2[:, :2] @ m1[:, 2] + m2[:, 2])[:, None]], 1)


def crop_transform(landmarks5: np.ndarray, size: int) -> np.ndarray:
  """M [2, 3] (photo -> crop pixels) that puts five landmarks on the template of a size x size crop."""
  return similarity(landmarks5, template(size))


def warp(img: np.ndarray, m: np.ndarray, size: tuple[int, int], *, border: str = "replicate"):
  """img [H, W, C] (or [H, W]) warped by the 2x3 affine m (input -> output pixels) into an output of
  size (height, width), bilinear; outside the input, `border` "replicate" repeats the edge and
  "zero" gives 0. Pixel centres are at integer coordinates, as in OpenCV."""
  import cv2

  modes = {"replicate": cv2.BORDER_REPLICATE, "zero": cv2.BORDER_CONSTANT}
  if border not in modes:
    raise ValueError(f"warp: border must be one of {tuple(modes)}, not {border!r}.")
  h, w = size
  return cv2.warpAffine(np.asarray(img), np.asarray(m, np.float64), (w, h), flags=cv2.INTER_LINEAR,
                        borderMode=modes[border], borderValue=0)  # fmt: skip


def crop(photo: np.ndarray, landmarks5: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
  """The aligned size x size crop of the face with these five landmarks, and its M (photo -> crop)."""
  m = crop_transform(landmarks5, size)
  return warp(photo, m, (size, size)), m


# The identity nets (experiments/identity) see LFW3D crops resized to 100x100, in which dlib's five
# landmarks lie on average here (measured on every 20th of the 4,324 crops, the whole crop as the
# face box). `identity_view` maps an aligned crop onto that framing, so those nets can read it.
LFW3D_LANDMARKS_100 = np.array([[80.98, 36.96], [63.26, 38.09], [18.18, 38.36], [35.90, 38.73],
                                [50.22, 74.51]])  # fmt: skip


def identity_view_transform(size: int, view_size: int = 100) -> np.ndarray:
  """M [2, 3]: aligned size x size crop -> the identity nets' view_size x view_size framing."""
  return similarity(template(size), LFW3D_LANDMARKS_100 * view_size / 100)


def warp_batch(x, m: np.ndarray, size: tuple[int, int]):
  """JAX, differentiable: images x [B, H, W, C] warped by one 2x3 affine m (input -> output
  pixels) to [B, size[0], size[1], C], bilinear, edge values repeated outside."""
  import jax
  import jax.numpy as jnp

  inv = invert(np.asarray(m, np.float64))
  rows, cols = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
  src = apply(inv, np.stack([cols, rows], -1))  # (x, y) in the input for every output pixel
  coords = jnp.asarray(np.stack([src[..., 1], src[..., 0]]), jnp.float32)  # (row, col)

  def one_channel(img):
    return jax.scipy.ndimage.map_coordinates(img, list(coords), order=1, mode="nearest")

  per_image = jax.vmap(one_channel, in_axes=-1, out_axes=-1)
  return jax.vmap(per_image)(x)
