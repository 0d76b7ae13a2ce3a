"""Face folders as arrays with identity labels and file names, aligned crops of whole photos, and
the fixed held-out split.

Data (research only; see ../shared/data/README.md): `lfw3d_90/<Person>/*.jpg`, the LFW3D crops of
158 people with >= 10 images, and `lfw/<Person>/*.jpg`, original 250x250 LFW photos of five of
them. `load` reads a folder of crops (PIL, or TFDS' `ImageFolder` with `reader="tfds"`), resized to
100x100x3; `load_aligned` finds the face in each whole photo and warps it onto the alignment
template (genjax.faces.align). Both cache uint8 arrays under $GENJAX_TFDS_DIR.

The split is one rule for every network here: a file is held out when crc32 of its name is 0 mod 10
(`is_held_out`), so a photo held out from the swap models is held out, as its LFW3D crop, from the
identity nets too, whichever folder or subset a network loads.
"""

import dataclasses
import functools
import os
import zlib
from pathlib import Path

import numpy as np

FACE_SIZE = 100
FACE_SHAPE = (FACE_SIZE, FACE_SIZE, 3)
HELD_OUT_EVERY = 10


# --- Datasets ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FaceDataset:
  """Faces in host memory: x uint8 [N, H, W, 3]; y int32 [N] indexes names (one per identity);
  files [N] the image file names; landmarks [N, 68, 2] (x, y) in crop pixels, for aligned crops."""

  x: np.ndarray
  y: np.ndarray
  names: tuple[str, ...]
  files: tuple[str, ...] = ()
  landmarks: np.ndarray | None = None

  def __post_init__(self):
    if self.x.ndim != 4 or self.x.shape[-1] != 3 or self.y.shape != (self.x.shape[0],):
      raise ValueError(f"FaceDataset: want x [N,H,W,3], y [N]; got {self.x.shape}, {self.y.shape}.")
    if self.files and len(self.files) != len(self.y):
      raise ValueError(f"FaceDataset: {len(self.files)} file names for {len(self.y)} images.")
    if self.landmarks is not None and self.landmarks.shape != (len(self.y), 68, 2):
      raise ValueError(f"FaceDataset: landmarks want [N, 68, 2], got {self.landmarks.shape}.")

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
  idx = np.asarray(idx, np.int64)
  return FaceDataset(
    x=ds.x[idx], y=ds.y[idx], names=ds.names,
    files=tuple(ds.files[i] for i in idx) if ds.files else (),
    landmarks=None if ds.landmarks is None else ds.landmarks[idx],
  )  # fmt: skip


def people(ds: FaceDataset, names) -> FaceDataset:
  """The images of `names` only, relabelled 0, 1, ... in the order given."""
  ids = [ds.label(n) for n in names]
  keep = np.flatnonzero(np.isin(ds.y, ids))
  relabel = np.full(len(ds.names), -1, np.int32)
  relabel[ids] = np.arange(len(ids))
  sub = subset(ds, keep)
  return dataclasses.replace(sub, y=relabel[sub.y], names=tuple(names))


def default_root(folder: str = "lfw3d_90") -> Path:
  """$GENJAX_DATA_DIR/faces/<folder>; else, in a source checkout, ../shared/data/faces/<folder>
  beside the project root. An installed package has no such neighbour: then a ValueError says to
  set GENJAX_DATA_DIR (no data path is ever looked for inside site-packages)."""
  base = os.environ.get("GENJAX_DATA_DIR")
  if base:
    return Path(base) / "faces" / folder
  project = Path(__file__).resolve().parents[2]
  if not (project / "pyproject.toml").is_file():
    raise ValueError(
      f"no face data folder: set GENJAX_DATA_DIR to the folder that holds faces/{folder} "
      "(genjax is installed, not run from its source checkout)."
    )
  return project.parent / "shared" / "data" / "faces" / folder


def _cache_path(name: str) -> Path | None:
  cache_dir = os.environ.get("GENJAX_TFDS_DIR")
  return Path(cache_dir) / "genjax_arrays" / "faces" / f"{name}.npz" if cache_dir else None


def _cached(name: str, make):
  """make() -> dict of arrays, saved to (and later read from) the array cache when there is one."""
  path = _cache_path(name)
  if path is not None and path.exists():
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  arrays = make()
  if path is not None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
  return arrays


def _dataset(arrays: dict) -> FaceDataset:
  x = arrays["x"]
  x.flags.writeable = False
  return FaceDataset(
    x=x, y=arrays["y"], names=tuple(str(n) for n in arrays["names"]),
    files=tuple(str(f) for f in arrays["files"]), landmarks=arrays.get("landmarks"),
  )  # fmt: skip


def _person_files(root: Path, min_images: int) -> dict[str, list[Path]]:
  if not root.is_dir():
    raise FileNotFoundError(
      f"face folder {root} does not exist; set GENJAX_DATA_DIR to the folder holding faces/."
    )
  by_person = {p.name: sorted(p.glob("*.jpg")) for p in root.iterdir() if p.is_dir()}
  by_person = {n: fs for n, fs in sorted(by_person.items()) if len(fs) >= min_images}
  if not by_person:
    raise FileNotFoundError(f"no <person>/*.jpg folders with >= {min_images} images under {root}.")
  return by_person


def read_rgb(path: Path) -> np.ndarray:
  """[H, W, 3] uint8 pixels of an image file (grey or RGBA converted to RGB)."""
  from PIL import Image

  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"))


def _read_folder(root: Path, size: int, min_images: int) -> dict:
  from PIL import Image

  by_person = _person_files(root, min_images)
  x = np.stack([np.asarray(Image.fromarray(read_rgb(f)).resize((size, size), Image.BICUBIC))
                for fs in by_person.values() for f in fs])  # fmt: skip
  y = np.repeat(np.arange(len(by_person), dtype=np.int32), [len(v) for v in by_person.values()])
  files = [f.name for fs in by_person.values() for f in fs]
  return dict(x=x, y=y, names=np.asarray(list(by_person)), files=np.asarray(files))


def _read_folder_tfds(root: Path, size: int, min_images: int) -> dict:
  """As `_read_folder`, through `tfds.ImageFolder`: <root.parent> is its root, <root.name> the split,
  the person folders its labels; decoded by TensorFlow (kept off any GPU), resized with PIL."""
  from PIL import Image

  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf
  import tensorflow_datasets as tfds

  tf.config.set_visible_devices([], "GPU")  # TensorFlow only reads files; the GPU belongs to JAX.
  wanted = _person_files(root, min_images)
  builder = tfds.ImageFolder(str(root.parent))
  label_names = builder.info.features["label"].names  # people of every split, sorted
  examples = sorted(  # the PIL reader's order: by person, then by file name
    tfds.as_numpy(builder.as_dataset(split=root.name, shuffle_files=False)),
    key=lambda ex: (label_names[int(ex["label"])], Path(ex["image/filename"].decode()).name),
  )
  examples = [ex for ex in examples if label_names[int(ex["label"])] in wanted]
  names = list(wanted)
  x = np.stack([np.asarray(Image.fromarray(ex["image"]).resize((size, size), Image.BICUBIC))
                for ex in examples])  # fmt: skip
  y = np.asarray([names.index(label_names[int(ex["label"])]) for ex in examples], np.int32)
  files = [Path(ex["image/filename"].decode()).name for ex in examples]
  return dict(x=x, y=y, names=np.asarray(names), files=np.asarray(files))


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
    FaceDataset with identities in sorted folder order and images in file-name order. With
    $GENJAX_TFDS_DIR set, the decoded arrays are cached there (genjax_arrays/faces/).
  """
  root = Path(root) if root else default_root()
  if reader not in ("pil", "tfds"):
    raise ValueError(f"reader must be 'pil' or 'tfds', not {reader!r}")
  read = _read_folder if reader == "pil" else _read_folder_tfds
  tag = f"{root.name}_{size}_{min_images}{'' if reader == 'pil' else '_tfds'}_v2"
  return _dataset(_cached(tag, lambda: read(root, size, min_images)))


def _align_folder(root: Path, size: int, min_images: int, progress: bool) -> dict:
  """Every photo: dlib's faces, the one nearest the photo's centre (LFW centres the person it is
  labelled with), warped onto the template; photos without a face are left out and named."""
  from tqdm import tqdm

  from genjax.faces import align, detect

  by_person = _person_files(root, min_images)
  xs, ys, files, lms, missed = [], [], [], [], []
  todo = [(k, f) for k, fs in enumerate(by_person.values()) for f in fs]
  for k, f in tqdm(todo, desc=f"aligning {root.name}", disable=not progress):
    photo = read_rgb(f)
    face = detect.nearest(detect.detect(photo), np.array(photo.shape[1::-1]) / 2)
    if face is None:
      missed.append(f.name)
      continue
    crop, m = align.crop(photo, face.landmarks5, size)
    xs.append(crop)
    ys.append(k)
    files.append(f.name)
    lms.append(align.apply(m, face.landmarks68))
  return dict(x=np.stack(xs), y=np.asarray(ys, np.int32), names=np.asarray(list(by_person)),
              files=np.asarray(files), landmarks=np.asarray(lms, np.float32),
              missed=np.asarray(missed, dtype=str))  # fmt: skip


@functools.lru_cache(maxsize=4)
def load_aligned(root: str | None = None, *, size: int = FACE_SIZE, min_images: int = 1,
                 progress: bool = True) -> FaceDataset:  # fmt: skip
  """Aligned face crops of whole photos (default: the original LFW photos, `default_root("lfw")`).

  Each photo's face is found by dlib (the one nearest the centre when there are several) and warped
  by the similarity that puts its five landmarks on `genjax.faces.align.template(size)`. The crops'
  68 landmarks (crop pixels) come along for masks and landmark errors. Needs the `faces` extra the
  first time; the result is cached under $GENJAX_TFDS_DIR (about a minute of detection on 2 cores
  for the 1,140 LFW photos, 2 of which have no face dlib finds and are left out).
  """
  root = Path(root) if root else default_root("lfw")
  arrays = _cached(f"{root.name}_aligned_{size}_{min_images}",
                   lambda: _align_folder(root, size, min_images, progress))  # fmt: skip
  arrays.pop("missed", None)
  return _dataset(arrays)


def mock(n: int = 64, *, num_ids: int = 4, size: int = FACE_SIZE, seed: int = 0,
         landmarks: bool = False) -> FaceDataset:  # fmt: skip
  """Small generated faces for tests: a skin ellipse with eyes and mouth placed per identity; with
  `landmarks`, 68 points in dlib's order on the drawn features (_mock_landmarks)."""
  rng = np.random.default_rng(seed)
  ids = np.random.default_rng(1234).uniform(size=(num_ids, 6))  # the same identities for any seed
  y = np.arange(n, dtype=np.int32) % num_ids
  yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
  x = np.empty((n, size, size, 3), np.float32)
  lms = np.empty((n, 68, 2), np.float32)
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
    lms[i] = _mock_landmarks(p, dy, dx) * size - 0.5  # pixel centres at integers
  names = tuple(f"person_{k}" for k in range(num_ids))
  files = tuple(f"{names[k]}_{i:04d}.png" for i, k in enumerate(y))
  return FaceDataset(x=np.round(x * 255).astype(np.uint8), y=y, names=names, files=files,
                     landmarks=lms if landmarks else None)  # fmt: skip


def _mock_landmarks(p: np.ndarray, dy: float, dx: float) -> np.ndarray:
  """[68, 2] (x, y) in units of the image side: points in dlib's 68-point order on the features
  that `mock` draws (jaw on the lower half of the face ellipse, brows above the eyes, nose, eye
  rims, lip rims), so that tests of landmark code have labels that follow the faces."""
  cx, cy, ax = 0.5 + dx, 0.5 + dy, 0.3 + 0.06 * p[0]
  ey, ex, er = 0.4 + 0.05 * p[2] + dy, 0.1 + 0.05 * p[3], np.sqrt(0.0015 + 0.001 * p[4])
  my, mw = 0.68 + dy, 0.06 + 0.06 * p[5]
  t = np.linspace(0, np.pi, 17)
  jaw = np.stack([cx - ax * np.cos(t), cy + 0.42 * np.sin(t)], 1)
  brow = lambda x0: np.stack([x0 + np.linspace(-0.06, 0.06, 5), np.full(5, ey - 0.07)], 1)
  bridge = np.stack([np.full(4, cx), np.linspace(ey, 0.58 + dy, 4)], 1)
  base = np.stack([cx + np.linspace(-0.04, 0.04, 5), np.full(5, 0.6 + dy)], 1)
  ring = lambda x0, y0, rx, ry, n: np.stack(
    [x0 - rx * np.cos(a := np.linspace(0, 2 * np.pi, n, endpoint=False)), y0 - ry * np.sin(a)], 1
  )
  eyes = [ring(cx + s * ex, ey, er, er, 6) for s in (-1, 1)]
  lips = [ring(cx, my, mw, 0.015, 12), ring(cx, my, 0.7 * mw, 0.008, 8)]
  return np.concatenate([jaw, brow(cx - ex), brow(cx + ex), bridge, base, *eyes, *lips])


def face_regions(ds: FaceDataset) -> np.ndarray:
  """uint8 [N, H, W]: 1 inside the convex hull of each crop's 68 landmarks (the region a swap
  replaces), 0 outside; all ones for a dataset without landmarks (e.g. `mock`)."""
  if ds.landmarks is None:
    return np.ones(ds.x.shape[:3], np.uint8)
  from genjax.faces import blend

  return np.stack([blend.hull_mask(lm, ds.x.shape[1:3]) for lm in ds.landmarks])


# --- Splits --------------------------------------------------------------------------------------


def is_held_out(file_name: str) -> bool:
  """The fixed test split: crc32(file name) = 0 mod 10 (about one image in ten of each person).

  A function of the name alone, so an LFW photo and its LFW3D crop (same file name) fall on the
  same side, for every network, seed and subset.
  """
  return zlib.crc32(Path(file_name).name.encode()) % HELD_OUT_EVERY == 0


def split_held_out(ds: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
  """(train_idx, test_idx) of a dataset by `is_held_out` of its file names, sorted."""
  if not ds.files:
    raise ValueError("split_held_out: the dataset has no file names.")
  test = np.asarray([is_held_out(f) for f in ds.files])
  return np.flatnonzero(~test), np.flatnonzero(test)


def split_by_identity(y: np.ndarray, *, num_test_ids: int, seed: int = 0, keep_train=()):
  """Disjoint identities: `num_test_ids` randomly chosen identities (never those in keep_train)
  hold all their images in test. Returns (train_idx, test_idx), sorted."""
  ids = np.setdiff1d(np.unique(y), np.asarray(keep_train, np.int64))
  if num_test_ids > len(ids):
    raise ValueError(f"split_by_identity: {num_test_ids} test identities of {len(ids)} available.")
  test_ids = np.random.default_rng(seed).choice(ids, num_test_ids, replace=False)
  is_test = np.isin(y, test_ids)
  return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def swap_data(dataset: str, *, root: str = "", size: int = FACE_SIZE, names=None, seed: int = 0,
              mock_ids: int = 4) -> tuple[FaceDataset, FaceDataset]:  # fmt: skip
  """(train, held-out) faces for a swap model: "lfw" gives the aligned crops of the original photos
  (`load_aligned`; `names` keeps and relabels those people), "mock" generated faces of `mock_ids`
  people; split by `is_held_out`."""
  if dataset == "mock":
    ds = mock(96, num_ids=mock_ids, size=size, seed=seed)
  elif dataset == "lfw":
    ds = load_aligned(root or None, size=size)
  else:
    raise ValueError(f"dataset must be 'lfw' or 'mock', not {dataset!r}.")
  if names:
    ds = people(ds, names)
  tr, te = split_held_out(ds)
  return subset(ds, tr), subset(ds, te)


def batches(ds: FaceDataset, mesh, *, seed: int, batch_size: int):
  """get(step) -> (x float32 [B, H, W, 3] in [0, 1], y [B], face region float32 [B, H, W]),
  sharded over the mesh's data axis; the batch is a function of (seed, step) only (epochs of a
  fixed permutation per (seed, epoch), genjax.data.batching)."""
  import jax.numpy as jnp

  from genjax.data import batching

  to_float = lambda b: (b[0].astype(jnp.float32) / 255.0, b[1], b[2].astype(jnp.float32))
  return batching.batches((ds.x, ds.y, face_regions(ds)), mesh, seed=seed, batch_size=batch_size,
                          prepare=to_float)  # uint8 on the device, float32 batches  # fmt: skip
