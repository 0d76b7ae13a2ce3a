"""The swap of a photo, a folder of frames or a video: find every face, choose one, smooth its
landmarks over frames, align it, redraw it with a model, paste it back, mark the result.

    media = video.open_media("clip.mp4")
    report = swap.run(media, "out.mp4", swap_faces, size=100)

`swap_faces(crops float [B, s, s, 3] in [0, 1]) -> the same shape` is the model's part (each
experiment's `face_swapper`); everything else here is the same for every model.
"""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genjax.faces import align, blend, detect, mark, video

PICKS = ("largest", "identity")


@dataclasses.dataclass(frozen=True)
class SwapOptions:
  """blend: "alpha" | "poisson" (genjax.faces.blend.paste_back); color: colour transfer on/off;
  smoothing: weight of the previous frame's landmarks in an exponential moving average over the
  frames of a video (0: none; the average restarts when the face jumps by over half its eye
  distance, e.g. at a cut); pick: "largest" face, or the one nearest to `reference` ("identity");
  upsample: the detector's upsampling (1 finds faces down to about 40 pixels)."""

  blend: str = "alpha"
  color: bool = True
  smoothing: float = 0.5
  pick: str = "largest"
  upsample: int = 1

  def __post_init__(self):
    if self.blend not in blend.BLENDS:
      raise ValueError(f"blend must be one of {blend.BLENDS}, not {self.blend!r}.")
    if self.pick not in PICKS:
      raise ValueError(f"pick must be one of {PICKS}, not {self.pick!r}.")
    if not 0.0 <= self.smoothing < 1.0:
      raise ValueError(f"smoothing must be in [0, 1), not {self.smoothing}.")


class LandmarkSmoother:
  """Exponential moving average of (landmarks5, landmarks68) over consecutive frames."""

  def __init__(self, weight: float):
    self.weight, self.prev = weight, None

  def reset(self) -> None:
    self.prev = None

  def __call__(self, l5: np.ndarray, l68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if self.prev is not None and self.weight > 0:
      p5, p68 = self.prev
      eye_distance = np.linalg.norm(l5[:2].mean(0) - l5[2:4].mean(0))
      if np.linalg.norm(l5 - p5, axis=1).mean() < 0.5 * eye_distance:
        l5 = self.weight * p5 + (1 - self.weight) * l5
        l68 = self.weight * p68 + (1 - self.weight) * l68
    self.prev = (l5, l68)
    return l5, l68


def choose(img: np.ndarray, found: list[detect.Face], pick: str, reference=None):
  """The face to swap: the largest, or (pick "identity") the one whose dlib descriptor is nearest to
  `reference` [128] (e.g. the mean descriptor of photos of the person to replace)."""
  if not found:
    return None
  if pick == "largest":
    return max(found, key=lambda f: f.area)
  if reference is None:
    raise ValueError('pick="identity" needs a reference descriptor.')
  return min(found, key=lambda f: float(np.linalg.norm(detect.descriptor(img, f) - reference)))


def swap_frame(frame: np.ndarray, swap_faces: Callable, size: int, opts: SwapOptions,
               smoother: LandmarkSmoother | None = None, reference=None):  # fmt: skip
  """(out uint8 [H, W, 3], faces found, swapped?) for one frame; unmarked. A frame without a face
  is returned unchanged (the same array), and the smoother restarts."""
  found = detect.detect(frame, upsample=opts.upsample)
  face = choose(frame, found, opts.pick, reference)
  if face is None:
    if smoother is not None:
      smoother.reset()
    return frame, 0, False
  l5, l68 = face.landmarks5, face.landmarks68
  if smoother is not None:
    l5, l68 = smoother(l5, l68)
  photo = frame.astype(np.float32) / 255.0
  crop, m = align.crop(photo, l5, size)
  new = np.asarray(swap_faces(crop[None]))[0]
  out = blend.paste_back(photo, new, m, l68, blend=opts.blend, color=opts.color)
  return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8), len(found), True


@dataclasses.dataclass
class Report:
  frames: int = 0
  swapped: int = 0
  without_face: int = 0
  faces_found: int = 0
  seconds: float = 0.0

  def summary(self) -> str:
    return (f"{self.frames} frames: {self.swapped} swapped, {self.without_face} without a face "
            f"(passed unchanged); {self.faces_found} faces found; {self.seconds:.1f} s")  # fmt: skip


def _marked(img: np.ndarray) -> np.ndarray:
  return np.round(mark.mark_synthetic(img.astype(np.float32) / 255.0) * 255).astype(np.uint8)


def run(media: video.Media, out: str | Path, swap_faces: Callable, size: int,
        opts: SwapOptions = SwapOptions(), *, reference=None, progress: bool = True) -> Report:  # fmt: skip
  """Swaps every frame of `media` and writes the result, every frame marked SYNTHETIC (visible
  label, plus PNG text chunks or the video's metadata).

  out: a photo gives a .png file; a frame folder a folder of .png frames (same names); a video an
  .mp4 or .gif file at the input's frame rate. Returns the counts.
  """
  from tqdm import tqdm

  out, report, t0 = Path(out), Report(), time.perf_counter()
  smoother = LandmarkSmoother(opts.smoothing) if media.kind != "photo" else None
  results = []
  for frame in tqdm(video.frames(media), total=media.num_frames, disable=not progress,
                    desc="swapping", unit="frame"):  # fmt: skip
    new, n, swapped = swap_frame(frame, swap_faces, size, opts, smoother, reference)
    report.frames += 1
    report.faces_found += n
    report.swapped += swapped
    report.without_face += not swapped
    results.append(new)
  if media.kind == "video":
    if out.suffix.lower() not in (".mp4", ".gif"):
      raise ValueError(f"a video is written as .mp4 or .gif, not {out.suffix!r}.")
    video.write_video(out, (_marked(f) for f in results), fps=media.fps or 25.0)
  elif media.kind == "photo":
    mark.save_synthetic_png(out if out.suffix.lower() == ".png" else out.with_suffix(".png"),
                            results[0] / 255.0)  # fmt: skip
  else:
    for name, f in zip(media.names, results, strict=True):
      mark.save_synthetic_png(out / f"{Path(name).stem}.png", f / 255.0)
  report.seconds = time.perf_counter() - t0
  return report


def aligned_faces(paths, size: int) -> np.ndarray:
  """float32 [N, size, size, 3] aligned crops of the largest face in each photo (photos or folders
  of photos); photos without a face are skipped, and none at all is an error."""
  crops = []
  for media in (video.open_media(p) for p in paths):
    for frame in video.frames(media):
      face = choose(frame, detect.detect(frame), "largest")
      if face is not None:
        crops.append(align.crop(frame.astype(np.float32) / 255.0, face.landmarks5, size)[0])
  if not crops:
    raise ValueError(f"no face found in {', '.join(map(str, paths))}.")
  return np.stack(crops)


def mean_descriptor(paths) -> np.ndarray:
  """[128] mean dlib descriptor of the largest face of each photo (for pick="identity")."""
  out = []
  for media in (video.open_media(p) for p in paths):
    for frame in video.frames(media):
      face = choose(frame, detect.detect(frame), "largest")
      if face is not None:
        out.append(detect.descriptor(frame, face))
  if not out:
    raise ValueError(f"no face found in {', '.join(map(str, paths))}.")
  return np.mean(out, 0)


def source_crops(source, size: int) -> np.ndarray:
  """Aligned crops [N, size, size, 3] of a source person: `source` is already such an array, a
  photo or folder of photos, or the name of a person of the LFW photos (their training photos,
  genjax.data.faces.load_aligned, none of the held-out ones)."""
  if isinstance(source, np.ndarray):
    return source.astype(np.float32)
  if Path(source).exists():
    return aligned_faces([source], size)
  from genjax.data import faces

  ds = faces.load_aligned(size=size)
  if source not in ds.names:
    raise ValueError(f"--source {source!r} is neither a photo or folder nor a person of "
                     f"{', '.join(ds.names)}.")  # fmt: skip
  ds = ds.of(source)
  return ds.images(faces.split_held_out(ds)[0])
