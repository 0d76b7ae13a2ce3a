"""Marking every swapped output as synthetic: a visible label on the image, and metadata (PNG text
chunks here; the video writer in genjax.faces.video adds a container comment)."""

from pathlib import Path

import numpy as np

SYNTHETIC_NOTE = "SYNTHETIC: face-swap output of a research model (genjax); not a real photograph."


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
