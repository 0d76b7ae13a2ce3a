"""Judging face swaps with a recognizer this project did not train: dlib's ResNet face descriptor
(face-recognition-models; 99.38% on LFW pairs, same person below a distance of 0.6), and dlib's 68
landmarks for pose and expression.

For a swap of a target photo towards a source person:
  match        the swapped face is within 0.6 of the source's mean descriptor and at least 0.6 from
               the target's: a recognizer that knows both people says "source, not target";
  top-1        the nearest of the gallery's people (mean descriptors) is the source;
  landmarks    mean distance of the 68 landmarks of the swapped face to the target's, over the
               target's outer-eye-corner distance: did pose and expression survive?
A swap in which dlib finds no face counts as no match and has no landmark error.
"""

import dataclasses
import os
from pathlib import Path

import numpy as np

from genjax.faces import detect

SAME_PERSON = 0.6  # dlib's threshold for one person (dlib.net, face_recognition.py)


def inter_ocular(l68: np.ndarray) -> float:
  """Distance between the outer eye corners (points 36 and 45) of 68 landmarks."""
  return float(np.linalg.norm(l68[36] - l68[45]))


def landmark_error(l68: np.ndarray, ref68: np.ndarray) -> float:
  """Mean point distance of two sets of 68 landmarks, over ref's inter-ocular distance."""
  return float(np.linalg.norm(np.asarray(l68) - ref68, axis=1).mean() / inter_ocular(ref68))


def head_pose(l68: np.ndarray) -> dict:
  """How a face sits in its photo, from its 68 landmarks (pixels):

  yaw   where the nose tip (point 30) falls between the jaw's ends (points 0 and 16), along the
        eye line: (a - b) / (a + b) with a, b its distances to either end; 0 facing the camera,
        towards +-1 as the head turns (the sign says which way);
  roll  the angle of the eye line (eye centres, points 36-41 and 42-47), degrees;
  eyes  the outer-eye-corner distance (inter_ocular), pixels: the face's size in the photo.
  """
  p = np.asarray(l68, np.float64)
  u = p[42:48].mean(0) - p[36:42].mean(0)
  u /= np.linalg.norm(u)
  a, b = (p[30] - p[0]) @ u, (p[16] - p[30]) @ u
  return {"yaw": float((a - b) / (a + b)), "roll": float(np.degrees(np.arctan2(u[1], u[0]))),
          "eyes": inter_ocular(p)}  # fmt: skip


def describe(photo: np.ndarray, near=None):
  """(face, descriptor [128]) of the face nearest to `near` (x, y) (default: the photo's centre),
  or (None, None) when dlib finds none."""
  photo = np.asarray(photo)
  point = np.array(photo.shape[1::-1]) / 2 if near is None else near
  face = detect.nearest(detect.detect(photo), point)
  if face is None:
    return None, None
  return face, detect.descriptor(photo, face)


def crop_descriptor(crop: np.ndarray) -> np.ndarray:
  """Descriptor of a tight face crop (LFW3D): resized to 150 x 150, the whole crop as the face box."""
  from PIL import Image

  img = np.asarray(Image.fromarray(np.asarray(crop)).resize((150, 150), Image.BICUBIC))
  box = (0, 0, 149, 149)
  l5, l68 = detect.landmarks(img, box)
  return detect.descriptor(img, detect.Face(box=box, landmarks5=l5, landmarks68=l68))


def cached(name: str, make):
  cache_dir = os.environ.get("GENJAX_TFDS_DIR")
  path = Path(cache_dir) / "genjax_arrays" / "dlib" / f"{name}.npy" if cache_dir else None
  if path is not None and path.exists():
    return np.load(path)
  value = make()
  if path is not None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, value)
  return value


def crop_descriptors(ds, tag: str) -> np.ndarray:
  """[N, 128] descriptors of a dataset of tight crops (cached as `tag` under $GENJAX_TFDS_DIR)."""
  return cached(tag, lambda: np.stack([crop_descriptor(c) for c in ds.x]))


def class_means(descriptors: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
  """[C, 128] mean descriptor of each class (NaN rows for classes without examples)."""
  out = np.full((num_classes, descriptors.shape[1]), np.nan)
  for k in range(num_classes):
    if (y == k).any():
      out[k] = descriptors[y == k].mean(0)
  return out


@dataclasses.dataclass
class Scores:
  """Per swap: found (dlib found a face), distance to the source's and the target's mean
  descriptor, the gallery's nearest person, and the landmark error to the target."""

  found: np.ndarray
  d_source: np.ndarray
  d_target: np.ndarray
  nearest: np.ndarray
  landmark_error: np.ndarray

  def matches(self) -> np.ndarray:
    """[N] bool: dlib found a face within SAME_PERSON of the source and at least SAME_PERSON from
    the target (a swap without a face is a miss)."""
    return self.found & (self.d_source < SAME_PERSON) & (self.d_target >= SAME_PERSON)

  def summary(self, source_label) -> dict:
    """Shares over all swaps (a swap without a face counts as a miss); the landmark error is the
    mean over those with a face."""
    f = self.found
    src = np.asarray(source_label)
    return {
      "n": int(len(f)),
      "found": float(f.mean()),
      "match": float(self.matches().mean()),
      "within_source": float((f & (self.d_source < SAME_PERSON)).mean()),
      "beyond_target": float((f & (self.d_target >= SAME_PERSON)).mean()),
      "top1": float((f & (self.nearest == src)).mean()),
      "d_source": float(np.nanmean(np.where(f, self.d_source, np.nan))) if f.any() else np.nan,
      "d_target": float(np.nanmean(np.where(f, self.d_target, np.nan))) if f.any() else np.nan,
      "landmark_error": float(np.nanmean(self.landmark_error)) if f.any() else np.nan,
    }


def score(photos, target_faces, source_mean, target_mean, gallery) -> Scores:
  """Scores swapped photos [N] (uint8 [H, W, 3]) against the target faces they were made from.

  Args:
    photos: the swapped photos.
    target_faces: [N] genjax.faces.detect.Face of the original target in each photo (its box
      centre picks the face to score, its 68 landmarks are the pose reference).
    source_mean, target_mean: [128] mean descriptors of the two people.
    gallery: [P, 128] mean descriptors of the gallery's people (NaN rows are skipped).
  """
  n = len(photos)
  found = np.zeros(n, bool)
  d_s, d_t, err = (np.full(n, np.nan) for _ in range(3))
  nearest = np.full(n, -1)
  g = np.where(np.isnan(gallery), np.inf, gallery)
  for i, (photo, target) in enumerate(zip(photos, target_faces, strict=True)):
    face, v = describe(photo, near=target.center)
    if face is None:
      continue
    found[i] = True
    d_s[i], d_t[i] = np.linalg.norm(v - source_mean), np.linalg.norm(v - target_mean)
    nearest[i] = int(np.argmin(np.linalg.norm(g - v, axis=1)))
    err[i] = landmark_error(face.landmarks68, target.landmarks68)
  return Scores(found, d_s, d_t, nearest, err)
