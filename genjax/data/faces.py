"""Face folders as arrays with identity labels, face-swap augmentation, face crop and paste-back.

Data (research only; see ../shared/data/README.md): `lfw3d_90/<Person>/*.jpg`, aligned LFW3D crops
of 158 people with >= 10 images, and `lfw/<Person>/*.jpg`, original 250x250 LFW photos of five of
them. Folders are read with PIL (default, no TensorFlow) or through TFDS' `ImageFolder`
(`reader="tfds"`: the same faces and labels; TensorFlow's JPEG decoder puts pixels a few levels
from PIL's), resized to 100x100x3 and cached as uint8 arrays.
Every image a swap produces is marked as synthetic: `mark_synthetic` draws a visible label and
`save_synthetic_png` writes PNG metadata saying so.
"""

import dataclasses
import functools
import os
import zlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

FACE_SIZE = 100
FACE_SHAPE = (FACE_SIZE, FACE_SIZE, 3)
SYNTHETIC_NOTE = "SYNTHETIC: face-swap output of a research model (genjax); not a real photograph."


# --- Loading -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FaceDataset:
  """Faces in host memory: x uint8 [N, H, W, 3]; y int32 [N] indexes names (one per identity)."""

  x: np.ndarray
  y: np.ndarray
  names: tuple[str, ...]

  def __post_init__(self):
    if self.x.ndim != 4 or self.x.shape[-1] != 3 or self.y.shape != (self.x.shape[0],):
      raise ValueError(f"FaceDataset: want x [N,H,W,3], y [N]; got {self.x.shape}, {self.y.shape}.")

  def __len__(self) -> int:
    return self.x.shape[0]

  def images(self, idx=slice(None)) -> np.ndarray:
    """float32 pixels in [0, 1] of the examples `idx`."""
    return self.x[idx].astype(np.float32) / 255.0

  def label(self, name: str) -> int:
    if name not in self.names:
      raise ValueError(f"identity {name!r} is not in the dataset ({len(self.names)} identities).")
    return self.names.index(name)

  def of(self, name: str) -> "FaceDataset":
    """The images of one identity."""
    return subset(self, np.flatnonzero(self.y == self.label(name)))


def subset(ds: FaceDataset, idx: np.ndarray) -> FaceDataset:
  return FaceDataset(x=ds.x[idx], y=ds.y[idx], names=ds.names)


def default_root(folder: str = "lfw3d_90") -> Path:
  """$GENJAX_DATA_DIR/faces/<folder>, else ../shared/data/faces/<folder> from the project root."""
  base = os.environ.get("GENJAX_DATA_DIR")
  if base:
    return Path(base) / "faces" / folder
  return Path(__file__).resolve().parents[3] / "shared" / "data" / "faces" / folder


def _labelled(by_person: dict, root: Path, size: int, min_images: int):
  """{person: [() -> PIL image, ...] in file order} -> (x, y, names): the people with >= min_images
  images, in sorted order, each image decoded, converted to RGB and resized (bicubic)."""
  from PIL import Image

  names = tuple(sorted(n for n, images in by_person.items() if len(images) >= min_images))
  if not sum(len(by_person[n]) for n in names):
    raise FileNotFoundError(f"no <person>/*.jpg folders with >= {min_images} images under {root}.")
  x = np.stack([np.asarray(get().convert("RGB").resize((size, size), Image.BICUBIC))
                for n in names for get in by_person[n]])  # fmt: skip
  y = np.repeat(np.arange(len(names), dtype=np.int32), [len(by_person[n]) for n in names])
  return x, y, names


def _read_folder(root: Path, size: int, min_images: int):
  from PIL import Image

  def opener(path):
    def get():
      with Image.open(path) as im:
        return im.convert("RGB")

    return get

  by_person = {p.name: [opener(f) for f in sorted(p.glob("*.jpg"))]
               for p in root.iterdir() if p.is_dir()}  # fmt: skip
  return _labelled(by_person, root, size, min_images)


def _read_folder_tfds(root: Path, size: int, min_images: int):
  """As `_read_folder`, through `tfds.ImageFolder`: <root.parent> is its root, <root.name> the split,
  the person folders its labels; decoded by TensorFlow (kept off any GPU), resized with PIL."""
  from PIL import Image

  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf
  import tensorflow_datasets as tfds

  tf.config.set_visible_devices([], "GPU")  # TensorFlow only reads files; the GPU belongs to JAX.
  builder = tfds.ImageFolder(str(root.parent))
  label_names = builder.info.features["label"].names  # people of every split, sorted
  examples = sorted(  # the PIL reader's order within a person: by file name
    tfds.as_numpy(builder.as_dataset(split=root.name, shuffle_files=False)),
    key=lambda ex: Path(ex["image/filename"].decode()).name,
  )
  by_person: dict[str, list] = {}
  for ex in examples:
    by_person.setdefault(label_names[int(ex["label"])], []).append(
      lambda a=ex["image"]: Image.fromarray(a)
    )
  return _labelled(by_person, root, size, min_images)


@functools.lru_cache(maxsize=4)
def load(
  root: str | None = None, *, size: int = FACE_SIZE, min_images: int = 1, reader: str = "pil"
) -> FaceDataset:
  """Loads every <root>/<person>/*.jpg, resized to size x size x 3, labelled by person.

  Args:
    root: folder of per-person folders (default: `default_root()`, the LFW3D crops).
    size: output height and width (the design's faces are 100x100x3).
    min_images: skip people with fewer images.
    reader: "pil" (default; no TensorFlow import) or "tfds" (`tfds.ImageFolder` over
      <root.parent>/<root.name>/<person>/*.jpg; the same faces and labels, pixels within a few
      levels of PIL's decoding: max 5, mean 1.0 of 255 on the 380 LFW3D crops of Colin_Powell and
      Tony_Blair).

  Returns:
    FaceDataset with identities in sorted folder order. With $GENJAX_TFDS_DIR set, the decoded
    arrays are cached there (genjax_arrays/faces/) so later processes skip JPEG decoding.
  """
  root = Path(root) if root else default_root()
  if reader not in ("pil", "tfds"):
    raise ValueError(f"reader must be 'pil' or 'tfds', not {reader!r}")
  if not root.is_dir():
    raise FileNotFoundError(
      f"face folder {root} does not exist; set GENJAX_DATA_DIR to the folder holding faces/."
    )
  cache_dir = os.environ.get("GENJAX_TFDS_DIR")
  cache = (
    Path(cache_dir)
    / "genjax_arrays"
    / "faces"
    / f"{root.name}_{size}_{min_images}{'' if reader == 'pil' else '_tfds'}.npz"
    if cache_dir
    else None
  )
  if cache is not None and cache.exists():
    with np.load(cache) as f:
      x, y, names = f["x"], f["y"], tuple(str(n) for n in f["names"])
  else:
    x, y, names = (_read_folder if reader == "pil" else _read_folder_tfds)(root, size, min_images)
    if cache is not None:
      cache.parent.mkdir(parents=True, exist_ok=True)
      tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
      np.savez(tmp, x=x, y=y, names=np.asarray(names))
      os.replace(tmp, cache)
  x.flags.writeable = False
  return FaceDataset(x=x, y=y, names=names)


def mock(n: int = 64, *, num_ids: int = 4, size: int = FACE_SIZE, seed: int = 0) -> FaceDataset:
  """Small generated faces for tests: a skin ellipse with eyes and mouth placed per identity."""
  rng = np.random.default_rng(seed)
  ids = np.random.default_rng(1234).uniform(size=(num_ids, 6))  # the same identities for any seed
  y = np.arange(n, dtype=np.int32) % num_ids
  yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
  x = np.empty((n, size, size, 3), np.float32)
  for i, k in enumerate(y):
    p, (dy, dx) = ids[k], rng.normal(0, 0.02, 2)
    bg = rng.uniform(0.1, 0.9, 3)
    face = ((yy - 0.5 - dy) / 0.42) ** 2 + ((xx - 0.5 - dx) / (0.3 + 0.06 * p[0])) ** 2 < 1
    img = np.where(face[..., None], np.array([0.85, 0.62, 0.5]) * (0.8 + 0.3 * p[1]), bg)
    for side in (-1, 1):
      eye = (yy - 0.4 - 0.05 * p[2] - dy) ** 2 + (xx - 0.5 - side * (0.1 + 0.05 * p[3]) - dx) ** 2
      img = np.where((eye < 0.0015 + 0.001 * p[4])[..., None], 0.1, img)
    mouth = (np.abs(yy - 0.68 - dy) < 0.015) & (np.abs(xx - 0.5 - dx) < 0.06 + 0.06 * p[5])
    img = np.where(mouth[..., None], np.array([0.6, 0.2, 0.2]), img)
    x[i] = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
  return FaceDataset(x=np.round(x * 255).astype(np.uint8), y=y,
                     names=tuple(f"person_{k}" for k in range(num_ids)))  # fmt: skip


# --- Splits --------------------------------------------------------------------------------------


def split_by_image(y: np.ndarray, *, test_fraction: float = 0.1, seed: int = 0, names=None):
  """Same identities on both sides: per identity, a fraction of its images (>= 1 if it has >= 2)
  goes to test. Returns (train_idx, test_idx), sorted.

  Each identity's images are shuffled by its own generator, seeded by (seed, crc32 of its name)
  when `names` (indexed by label) is given, else by (seed, label). With names, a person's held-out
  images are the same whichever other people the dataset holds: the two-person set of model (a)
  and the all-people set of models (b) and (c) hold out the same faces of the pair.
  """
  train, test = [], []
  for k in np.unique(y):
    tag = zlib.crc32(names[k].encode()) if names is not None else int(k)
    idx = np.random.default_rng([seed, tag]).permutation(np.flatnonzero(y == k))
    n_test = min(len(idx) - 1, max(1, round(test_fraction * len(idx)))) if len(idx) > 1 else 0
    test.extend(idx[:n_test])
    train.extend(idx[n_test:])
  return np.sort(np.asarray(train, np.int64)), np.sort(np.asarray(test, np.int64))


def split_by_identity(y: np.ndarray, *, num_test_ids: int, seed: int = 0, keep_train=()):
  """Disjoint identities: `num_test_ids` randomly chosen identities (never those in keep_train)
  hold all their images in test. Returns (train_idx, test_idx), sorted."""
  ids = np.setdiff1d(np.unique(y), np.asarray(keep_train, np.int64))
  if num_test_ids > len(ids):
    raise ValueError(f"split_by_identity: {num_test_ids} test identities of {len(ids)} available.")
  test_ids = np.random.default_rng(seed).choice(ids, num_test_ids, replace=False)
  is_test = np.isin(y, test_ids)
  return np.flatnonzero(~is_test), np.flatnonzero(is_test)


# --- Training augmentation (JAX, per batch) -------------------------------------------------------


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


def _bilinear(img: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
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


def _augment_one(key: jax.Array, x: jax.Array, cfg: AugmentConfig):
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
  target = _bilinear(x, src_r, src_c)
  warped = _bilinear(x, src_r + d[..., 0], src_c + d[..., 1])
  # Colour jitter, the same for both.
  b, ct, sat = u(k[6], cfg.brightness), 1.0 + u(k[7], cfg.contrast), 1.0 + u(k[8], cfg.saturation)

  def colour(v):
    v = (v - v.mean()) * ct + v.mean() + b
    gray = v.mean(axis=-1, keepdims=True)
    return jnp.clip(gray + sat * (v - gray), 0.0, 1.0)

  return colour(warped), colour(target)


def augment(key: jax.Array, x: jax.Array, cfg: AugmentConfig = AugmentConfig()):
  """Face-swap training pair from a batch x [B, H, W, 3] in [0, 1] (jit-able).

  Returns:
    (x_in, x_target), both [B, H, W, 3] in [0, 1]: x_target is x under a random flip, small affine
    and colour jitter; x_in is the same plus a random warp.
  """
  keys = jax.random.split(key, x.shape[0])
  return jax.vmap(lambda kk, v: _augment_one(kk, v, cfg))(keys, x)


# --- Whole photos: crop, colour match in LAB, feathered paste-back -------------------------------


@dataclasses.dataclass(frozen=True)
class FaceBox:
  """A square region of a photo: rows top:top+size, columns left:left+size."""

  top: int
  left: int
  size: int


# The original LFW photos (250x250) are centred on the face that LFW's detector found; this box
# covers the same forehead-to-chin region as the LFW3D crops.
LFW_FACE_BOX = FaceBox(top=84, left=84, size=84)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
  from PIL import Image

  u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
  return np.asarray(Image.fromarray(u8).resize((size, size), Image.BICUBIC), np.float32) / 255.0


def crop_face(photo: np.ndarray, box: FaceBox = LFW_FACE_BOX, size: int = FACE_SIZE) -> np.ndarray:
  """photo float [H, W, 3] in [0, 1] -> the box resized to [size, size, 3]."""
  region = photo[box.top : box.top + box.size, box.left : box.left + box.size]
  if region.shape[:2] != (box.size, box.size):
    raise ValueError(f"crop_face: box {box} does not fit in a photo of shape {photo.shape}.")
  return _resize(region, size)


def feather_mask(size: int, *, feather: float = 0.15, radius: float = 0.46) -> np.ndarray:
  """[size, size] blending weights: 1 inside an ellipse, falling linearly to 0 over the last
  `feather` of its radius, exactly 0 outside (radius as a fraction of the box; the ellipse is
  taller than wide, like a face)."""
  yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
  rho = np.sqrt((yy / radius) ** 2 + (xx / (0.85 * radius)) ** 2)
  return np.clip((1.0 - rho) / feather, 0.0, 1.0).astype(np.float32)


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


def paste_back(photo: np.ndarray, face: np.ndarray, box: FaceBox = LFW_FACE_BOX, *,
               feather: float = 0.15, color_match: bool = True) -> np.ndarray:  # fmt: skip
  """Blends a (swapped) face back into the photo it was cropped from.

  out = m * face' + (1 - m) * photo inside the box, with m the feathered elliptical mask and face'
  the face resized to the box and (optionally) colour matched to the photo under the mask; every
  pixel where m = 0 (all of the photo outside the ellipse) is returned unchanged.

  Args:
    photo: [H, W, 3] float in [0, 1].
    face: [h, w, 3] float in [0, 1] (e.g. 100x100 model output).
    box: where the face was cropped.

  Returns:
    [H, W, 3] float32 photo.
  """
  region = photo[box.top : box.top + box.size, box.left : box.left + box.size]
  if region.shape[:2] != (box.size, box.size):
    raise ValueError(f"paste_back: box {box} does not fit in a photo of shape {photo.shape}.")
  m = feather_mask(box.size, feather=feather)
  new = _resize(face, box.size)
  if color_match:
    new = match_color(new, region, m)
  out = np.array(photo, np.float32, copy=True)
  blended = m[..., None] * new + (1.0 - m[..., None]) * region
  inside = m > 0  # write only where the mask is positive, so outside pixels are bit-identical
  out[box.top : box.top + box.size, box.left : box.left + box.size][inside] = blended[inside]
  return out


# --- Marking outputs as synthetic -----------------------------------------------------------------


def mark_synthetic(img: np.ndarray, *, text: str = "SYNTHETIC") -> np.ndarray:
  """Draws a visible label (white text on a black band) on an image [H, W, 3] in [0, 1]."""
  from PIL import Image, ImageDraw

  u8 = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
  draw = ImageDraw.Draw(u8)
  x0, y0, x1, y1 = draw.textbbox((0, 0), text)
  h = y1 - y0 + 4
  draw.rectangle((0, u8.height - h, x1 - x0 + 4, u8.height), fill=(0, 0, 0))
  draw.text((2 - x0, u8.height - h + 2 - y0), text, fill=(255, 255, 255))
  return np.asarray(u8, np.float32) / 255.0


def save_synthetic_png(path: str | Path, img: np.ndarray, *, note: str = SYNTHETIC_NOTE) -> Path:
  """Saves an image [H, W, 3] in [0, 1] as PNG with a visible SYNTHETIC mark and metadata
  (tEXt chunks "synthetic" = "true" and "Description" = note)."""
  from PIL import Image
  from PIL.PngImagePlugin import PngInfo

  info = PngInfo()
  info.add_text("synthetic", "true")
  info.add_text("Description", note)
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  u8 = np.round(np.clip(mark_synthetic(img), 0, 1) * 255).astype(np.uint8)
  Image.fromarray(u8).save(path, pnginfo=info)
  return path
