"""Faces in an image: dlib's detector, its 5- and 68-point landmarks, and the face descriptor.

The weights come with the `face-recognition-models` wheel (no download at run time); dlib itself
with `dlib-bin`. Both are the `faces` extra: `pip install -e ".[faces]"`.
Images are uint8 [H, W, 3] RGB; points are float (x, y) pixel coordinates.
"""

import dataclasses
import functools

import numpy as np

EXTRA_HINT = 'the face tools need the `faces` extra: pip install -e ".[faces]"'


def _require(module: str):
  try:
    return __import__(module)
  except ImportError as e:
    raise ImportError(f"{module} is not installed; {EXTRA_HINT}") from e


def _weights(name: str) -> str:
  """Path of a weight file of face-recognition-models, found without importing the package (its
  __init__ needs pkg_resources, which new setuptools no longer ship)."""
  import importlib.util
  from pathlib import Path

  spec = importlib.util.find_spec("face_recognition_models")
  if spec is None or not spec.submodule_search_locations:
    raise ImportError(f"face-recognition-models is not installed; {EXTRA_HINT}")
  path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
  if not path.exists():
    raise FileNotFoundError(f"{path} is missing from face-recognition-models; reinstall it.")
  return str(path)


@functools.cache
def _models():
  dlib = _require("dlib")
  return {
    "detector": dlib.get_frontal_face_detector(),
    "sp5": dlib.shape_predictor(_weights("shape_predictor_5_face_landmarks.dat")),
    "sp68": dlib.shape_predictor(_weights("shape_predictor_68_face_landmarks.dat")),
    "descriptor": dlib.face_recognition_model_v1(
      _weights("dlib_face_recognition_resnet_model_v1.dat")
    ),
  }


@dataclasses.dataclass(frozen=True)
class Face:
  """One detected face: box (left, top, right, bottom), landmarks5 [5, 2], landmarks68 [68, 2]."""

  box: tuple[int, int, int, int]
  landmarks5: np.ndarray
  landmarks68: np.ndarray
  score: float = 0.0

  @property
  def area(self) -> int:
    left, top, right, bottom = self.box
    return max(0, right - left) * max(0, bottom - top)

  @property
  def center(self) -> np.ndarray:
    left, top, right, bottom = self.box
    return np.array([(left + right) / 2, (top + bottom) / 2])


def _as_image(img: np.ndarray) -> np.ndarray:
  img = np.asarray(img)
  if img.ndim != 3 or img.shape[-1] != 3:
    raise ValueError(f"want an RGB image [H, W, 3], got shape {img.shape}.")
  if img.dtype != np.uint8:
    if not np.issubdtype(img.dtype, np.floating):
      raise ValueError(f"want uint8 or float pixels in [0, 1], got {img.dtype}.")
    img = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
  return np.ascontiguousarray(img)


def _points(shape) -> np.ndarray:
  return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def landmarks(img: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
  """(landmarks5 [5, 2], landmarks68 [68, 2]) of the face in box (left, top, right, bottom)."""
  import dlib

  m, img = _models(), _as_image(img)
  rect = dlib.rectangle(*(int(v) for v in box))
  return _points(m["sp5"](img, rect)), _points(m["sp68"](img, rect))


def detect(img: np.ndarray, *, upsample: int = 1) -> list[Face]:
  """Every face dlib's HOG detector finds, with landmarks, largest first.

  Args:
    img: uint8 (or float in [0, 1]) [H, W, 3] RGB.
    upsample: times the image is doubled before detection (1 finds faces down to about 40 px).
  """
  m, img = _models(), _as_image(img)
  rects, scores, _ = m["detector"].run(img, upsample, 0.0)
  found = []
  for r, s in zip(rects, scores, strict=True):
    box = (r.left(), r.top(), r.right(), r.bottom())
    l5, l68 = landmarks(img, box)
    found.append(Face(box=box, landmarks5=l5, landmarks68=l68, score=float(s)))
  return sorted(found, key=lambda f: -f.area)


def descriptor(img: np.ndarray, face: Face) -> np.ndarray:
  """dlib's 128-d ResNet face descriptor (dlib_face_recognition_resnet_model_v1; 99.38% on LFW
  pairs; two photos show one person when the Euclidean distance is below 0.6) of a face."""
  import dlib

  m, img = _models(), _as_image(img)
  rect = dlib.rectangle(*(int(v) for v in face.box))
  return np.asarray(m["descriptor"].compute_face_descriptor(img, m["sp68"](img, rect)), np.float64)


def nearest(faces: list[Face], point) -> Face | None:
  """The face whose box centre is nearest to point (x, y); None when there is none."""
  if not faces:
    return None
  return min(faces, key=lambda f: float(np.sum(np.square(f.center - np.asarray(point)))))
