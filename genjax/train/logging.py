"""Run logging: metrics as JSON lines and TensorBoard events in the workdir, image grids as PNG.

Everything here writes in process 0 only: in a multi-process run the other processes compute the
same values and skip the writes, so the workdir reads as that of one process.
"""

import json
import math
import socket
import time
from pathlib import Path

import numpy as np

from genjax.train import distributed


class MetricWriter:
  """Appends {"step": s, **scalars} to <workdir>/metrics.jsonl and writes TensorBoard scalars.

  A run resumed from step `start_step` first drops the rows a killed run wrote after that step,
  so the file reads as one uninterrupted run. Outside process 0 it writes nothing.
  """

  def __init__(self, workdir: str | Path, *, start_step: int = 0, tensorboard: bool = True):
    self.workdir = Path(workdir)
    self.active = distributed.is_main()
    self._jsonl = self._tb = None
    if not self.active:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    path = self.workdir / "metrics.jsonl"
    if path.exists():
      kept = [r for r in read_metrics(self.workdir) if r["step"] <= start_step]
      path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    self._jsonl = open(self.workdir / "metrics.jsonl", "a")  # noqa: SIM115 - closed in close()
    self._tb = _EventFile(self.workdir / "tensorboard") if tensorboard else None

  def write_scalars(self, step: int, scalars: dict) -> None:
    if not self.active:
      return
    row = {"step": int(step), "time": time.time()}
    row.update({k: float(v) for k, v in scalars.items()})
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      self._tb.scalars(step, row["time"], scalars)

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


class _EventFile:
  """A TensorBoard event file (TFRecord-framed Event protos), written without importing TensorFlow.

  tensorboard's own EventFileWriter reaches for tf.io.gfile, which imports all of TensorFlow when
  it is installed; the record framing and the protos are all an event file needs.
  """

  def __init__(self, logdir: Path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    self._event, self._summary = event_pb2.Event, summary_pb2.Summary
    logdir.mkdir(parents=True, exist_ok=True)
    name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}"
    self._file = open(logdir / name, "wb")  # noqa: SIM115 - closed in close()
    self._records = RecordWriter(self._file)
    self._write(self._event(wall_time=time.time(), file_version="brain.Event:2"))

  def _write(self, event) -> None:
    self._records.write(event.SerializeToString())
    self._file.flush()

  def scalars(self, step: int, wall_time: float, scalars: dict) -> None:
    values = [self._summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._write(
      self._event(wall_time=wall_time, step=int(step), summary=self._summary(value=values))
    )

  def close(self) -> None:
    self._file.close()


def write_json(path: str | Path, obj) -> Path:
  """Writes `obj` as indented JSON (results, reports) and returns the path."""
  path = Path(path)
  if distributed.is_main():
    path.write_text(json.dumps(obj, indent=2))
  return path


def read_metrics(workdir: str | Path) -> list[dict]:
  path = Path(workdir) / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def image_grid(images: np.ndarray, *, ncol: int | None = None, pad: int = 1) -> np.ndarray:
  """Tiles images [N, H, W, C] with values in [0, 1] into one [H', W', C] image (row-major)."""
  images = np.asarray(images, np.float32)
  if images.ndim != 4:
    raise ValueError(f"image_grid: want [N, H, W, C], got shape {images.shape}.")
  n, h, w, c = images.shape
  ncol = ncol or math.ceil(math.sqrt(n))
  nrow = math.ceil(n / ncol)
  grid = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.float32)
  for i, img in enumerate(images):
    r, q = divmod(i, ncol)
    grid[
      pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w
    ] = img
  return np.clip(grid, 0.0, 1.0)


def save_image_grid(path: str | Path, images: np.ndarray, *, ncol: int | None = None) -> Path:
  """Writes an image grid as PNG (grayscale when C == 1) and returns its path."""
  from PIL import Image

  grid = np.round(image_grid(images, ncol=ncol) * 255).astype(np.uint8)
  path = Path(path)
  if not distributed.is_main():
    return path
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
  return path


def quiet_library_logs() -> None:
  """In a script run by absl.app: library messages at WARNING and above only, unless --verbosity
  was given. Orbax logs every checkpoint operation at INFO through absl, which app.run shows."""
  from absl import flags
  from absl import logging as absl_logging

  if not flags.FLAGS["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)
