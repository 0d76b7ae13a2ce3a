"""Reading and writing what a swap works on: a photo, a folder of frames, or a video file.

Video goes through imageio-ffmpeg, whose wheel carries an ffmpeg binary (the `faces` extra). Written
videos carry the synthetic note as container metadata (comment and title); GIFs as their comment;
PNGs as text chunks (genjax.faces.mark).
"""

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from genjax.faces import mark

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif")


@dataclasses.dataclass(frozen=True)
class Media:
  """What `open_media` found: kind "photo" | "frames" | "video", the frames' names (for photos and
  frame folders), fps (video; 0 otherwise) and size (width, height) of the first frame."""

  kind: str
  path: Path
  names: tuple[str, ...]
  fps: float
  size: tuple[int, int]
  num_frames: int


def _ffmpeg():
  try:
    import imageio_ffmpeg
  except ImportError as e:
    from genjax.faces.detect import EXTRA_HINT

    raise ImportError(f"imageio-ffmpeg is not installed; {EXTRA_HINT}") from e
  return imageio_ffmpeg


def _read_image(path: Path) -> np.ndarray:
  from PIL import Image

  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"))


def _frame_files(folder: Path) -> list[Path]:
  return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)


def open_media(path: str | Path) -> Media:
  """Describes a photo, a folder of frames (name order) or a video file; a clear error otherwise."""
  path = Path(path)
  if not path.exists():
    raise FileNotFoundError(f"no such photo, frame folder or video: {path}")
  if path.is_dir():
    files = _frame_files(path)
    if not files:
      raise ValueError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    h, w = _read_image(files[0]).shape[:2]
    return Media("frames", path, tuple(f.name for f in files), 0.0, (w, h), len(files))
  suffix = path.suffix.lower()
  if suffix in IMAGE_SUFFIXES:
    h, w = _read_image(path).shape[:2]
    return Media("photo", path, (path.name,), 0.0, (w, h), 1)
  if suffix in VIDEO_SUFFIXES:
    reader = _ffmpeg().read_frames(str(path))
    meta = next(reader)
    reader.close()
    n, _ = _ffmpeg().count_frames_and_secs(str(path))
    return Media("video", path, (), float(meta["fps"]), tuple(meta["size"]), int(n))
  raise ValueError(f"{path}: not a photo ({', '.join(IMAGE_SUFFIXES)}) or video "
                   f"({', '.join(VIDEO_SUFFIXES)}).")  # fmt: skip


def frames(media: Media) -> Iterator[np.ndarray]:
  """The frames, uint8 [H, W, 3] RGB, in order."""
  if media.kind == "photo":
    yield _read_image(media.path)
  elif media.kind == "frames":
    for name in media.names:
      yield _read_image(media.path / name)
  else:
    w, h = media.size
    reader = _ffmpeg().read_frames(str(media.path), pix_fmt="rgb24")
    next(reader)  # the metadata
    for buf in reader:
      yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)


def write_video(path: str | Path, frames_: Iterable[np.ndarray], *, fps: float,
                note: str = mark.SYNTHETIC_NOTE) -> Path:  # fmt: skip
  """Writes uint8 [H, W, 3] frames as H.264 MP4 (any size: 4:2:0 chroma for even sizes, 4:4:4 for
  odd ones, never rescaled) or, for a .gif path, as an animated GIF; the note goes into the file's
  metadata."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  it = iter(frames_)
  first = next(it, None)
  if first is None:
    raise ValueError("write_video: no frames.")
  h, w = first.shape[:2]
  if path.suffix.lower() == ".gif":
    from PIL import Image

    ims = [Image.fromarray(f) for f in (first, *it)]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=round(1000 / fps), loop=0,
                comment=note.encode())  # fmt: skip
    return path
  pix = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
  writer = _ffmpeg().write_frames(
    str(path), (w, h), fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out=pix,
    macro_block_size=1, quality=None,
    output_params=["-crf", "18", "-metadata", f"comment={note}", "-metadata", f"title={note}"],
  )  # fmt: skip
  writer.send(None)
  for f in (first, *it):
    if f.shape != first.shape:
      raise ValueError(f"write_video: frame of shape {f.shape} after frames of {first.shape}.")
    writer.send(np.ascontiguousarray(f, np.uint8))
  writer.close()
  return path


def video_comment(path: str | Path) -> str:
  """The comment stored in a video's container (what `write_video` wrote), read back by ffmpeg."""
  import subprocess

  out = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-i", str(path), "-f", "ffmetadata", "-"],
                       capture_output=True, text=True, check=True).stdout  # fmt: skip
  for line in out.splitlines():
    if line.startswith("comment="):
      return line[len("comment=") :].replace("\\;", ";").replace("\\=", "=")
  return ""


def ken_burns(photo: np.ndarray, num_frames: int, *, zoom: float = 1.15, shift: float = 0.06,
              blank: tuple[int, ...] = ()) -> list[np.ndarray]:  # fmt: skip
  """A short clip from one photo: a slow zoom and pan (the camera moves, the face stays the same),
  frames at the photo's size; the frames listed in `blank` are a flat grey with no face (for the
  swap's pass-through path). Used by the tests and to make the README's demo clip."""
  import cv2

  h, w = photo.shape[:2]
  out = []
  for i in range(num_frames):
    t = i / max(num_frames - 1, 1)
    s = 1.0 + (zoom - 1.0) * t
    dx, dy = shift * w * (t - 0.5), 0.5 * shift * h * np.sin(np.pi * t)
    m = np.array([[s, 0, (1 - s) * w / 2 + dx], [0, s, (1 - s) * h / 2 + dy]])
    frame = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out.append(np.full_like(photo, 128) if i in blank else frame)
  return out
