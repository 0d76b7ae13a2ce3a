"""Fashion-MNIST (and other small TFDS image sets) as arrays (batched by genjax.data.batching).

Where the data comes from:
  * offline: a folder holding the four official files (TFDS' manual directory). Give it as
    `manual_dir=...` or through the environment variable GENJAX_DATA_DIR (a folder that contains
    `fashion_mnist/`). TFDS checks the files against its registered sha256 sums and prepares them.
  * online: nothing to set; TFDS downloads as usual.
Prepared data goes to `data_dir` (default: $GENJAX_TFDS_DIR, else TFDS' own ~/tensorflow_datasets).
"""

import dataclasses
import functools
import hashlib
import os
from pathlib import Path

import numpy as np

FASHION_MNIST_FILES = {
  "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
  "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
  "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
  "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
CLASS_NAMES = (
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# Figure labels: the same classes, short.
SHORT_NAMES = (
  "T-shirt", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Boot",
)  # fmt: skip


class DataError(RuntimeError):
  """The data could not be found or read; the message says what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
  """A labelled image set held in host memory: x float32 [N, H, W, C] in [0, 1], y int32 [N]."""

  x: np.ndarray
  y: np.ndarray

  def __post_init__(self):
    if self.x.ndim != 4 or self.y.shape != (self.x.shape[0],):
      raise ValueError(
        f"ArrayDataset: want x [N,H,W,C] and y [N]; got {self.x.shape}, {self.y.shape}."
      )

  def __len__(self) -> int:
    return self.x.shape[0]


def default_manual_dir(name: str = "fashion_mnist") -> Path | None:
  root = os.environ.get("GENJAX_DATA_DIR")
  return Path(root) / name if root else None


def check_manual_dir(manual_dir: Path) -> None:
  """Checks that the four official files are present and intact, before TFDS sees them."""
  if not manual_dir.is_dir():
    raise DataError(
      f"Fashion-MNIST folder {manual_dir} does not exist. Point GENJAX_DATA_DIR (or --data_dir) at "
      "the folder that holds fashion_mnist/ with the four official .gz files, or unset it to let "
      "tensorflow-datasets download them."
    )
  for fname, want in FASHION_MNIST_FILES.items():
    path = manual_dir / fname
    if not path.is_file():
      raise DataError(
        f"{path} is missing. The folder must hold the four official Fashion-MNIST files: "
        f"{', '.join(FASHION_MNIST_FILES)} (from github.com/zalandoresearch/fashion-mnist)."
      )
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != want:
      raise DataError(
        f"{path} is corrupted or not the official file (sha256 {got[:12]}..., expected "
        f"{want[:12]}...). Replace it with the official release file."
      )


def _prepare(name: str, data_dir: str | None, manual_dir: Path | None):
  if manual_dir is not None and name == "fashion_mnist":
    check_manual_dir(manual_dir)  # before importing TensorFlow, which takes a while
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  try:
    import tensorflow as tf
    import tensorflow_datasets as tfds
  except ImportError as e:  # pragma: no cover - depends on the install
    raise DataError(
      "tensorflow-datasets needs TensorFlow, which `pip install -e .` chooses by platform "
      f"(tensorflow-cpu on Linux x86_64 and Windows AMD64, tensorflow elsewhere): {e}"
    ) from None
  tf.config.set_visible_devices([], "GPU")  # TensorFlow only reads files; the GPU belongs to JAX.
  builder = tfds.builder(name, data_dir=data_dir)
  config = None
  if manual_dir is not None:
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
  try:
    builder.download_and_prepare(download_config=config)
  except Exception as e:
    where = f"from {manual_dir}" if manual_dir else "by download"
    raise DataError(
      f"tensorflow-datasets could not prepare {name!r} {where} into {builder.data_dir}: "
      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. Offline, set GENJAX_DATA_DIR "
      "to a folder holding fashion_mnist/ with the official files; if a previous preparation was "
      f"interrupted, delete {builder.data_dir} and retry."
    ) from None
  return tfds, builder


def load(
  name: str = "fashion_mnist",
  split: str = "train",
  *,
  data_dir: str | None = None,
  manual_dir: str | Path | None = None,
) -> ArrayDataset:
  """Loads a whole TFDS image split into memory as float32 pixels in [0, 1].

  Args:
    name: TFDS dataset name ("fashion_mnist", "mnist", ...).
    split: TFDS split string, e.g. "train", "test", "train[:1000]".
    data_dir: where TFDS keeps prepared data (default $GENJAX_TFDS_DIR or TFDS' default).
    manual_dir: folder of the official files for offline preparation (default
      $GENJAX_DATA_DIR/<name> when that variable is set; otherwise TFDS downloads).

  Returns:
    ArrayDataset with x [N, H, W, C] float32 and y [N] int32.
  """
  data_dir = data_dir or os.environ.get("GENJAX_TFDS_DIR")
  manual = Path(manual_dir) if manual_dir else default_manual_dir(name)
  return _load_cached(name, split, data_dir, manual)


def _array_cache(name: str, split: str, data_dir: str | None) -> Path | None:
  if not data_dir:
    return None
  safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in split)
  return Path(data_dir) / "genjax_arrays" / name / f"{safe}.npz"


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, split: str, data_dir: str | None, manual: Path | None) -> ArrayDataset:
  """One read per process (sweeps and seed loops reuse it); the arrays are made read-only.

  With a TFDS data_dir, the prepared split is also kept as uint8 arrays in
  <data_dir>/genjax_arrays/, so later processes skip importing TensorFlow (minutes on a small
  machine). Delete that folder to re-read from TFDS.
  """
  cache = _array_cache(name, split, data_dir)
  if cache is not None and cache.exists():
    with np.load(cache) as f:
      images, labels = f["image"], f["label"]
  else:
    tfds, builder = _prepare(name, data_dir, manual)
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    images, labels = arrays["image"], arrays["label"]
    if cache is not None:
      cache.parent.mkdir(parents=True, exist_ok=True)
      tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
      np.savez(tmp, image=images, label=labels)
      os.replace(tmp, cache)  # atomic: a killed run never leaves half a cache
  x = images.astype(np.float32) / 255.0
  y = labels.astype(np.int32)
  x.flags.writeable = False
  y.flags.writeable = False
  return ArrayDataset(x=x, y=y)


def mock(n: int = 256, *, shape=(28, 28, 1), num_classes: int = 10, seed: int = 0) -> ArrayDataset:
  """Small generated image set for tests and smoke runs: class-dependent blobs plus noise."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, num_classes, n).astype(np.int32)
  h, w, c = shape
  yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
  centres = rng.uniform(0.25, 0.75, (num_classes, 2))
  blob = np.exp(
    -((yy - centres[y, 0, None, None]) ** 2 + (xx - centres[y, 1, None, None]) ** 2) * 20
  )
  x = np.clip(blob[..., None] + 0.1 * rng.standard_normal((n, h, w, c)), 0, 1).astype(np.float32)
  return ArrayDataset(x=np.broadcast_to(x, (n, h, w, c)).copy(), y=y)


def get_dataset(name: str, split: str, **kw) -> ArrayDataset:
  """`load`, with name "mock" giving the generated set (for tests and smoke configs)."""
  if name == "mock":
    return mock(seed=0 if split.startswith("train") else 1)
  return load(name, split, **kw)
