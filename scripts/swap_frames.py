"""Swaps the face in every image of a folder (whole photos, or the frames of a video) with model (a).

  python scripts/swap_frames.py --workdir runs/faceswap/a --frames ../shared/data/faces/lfw/George_W_Bush \
      --out runs/faceswap/a/photos --to 1 --limit 8

Each image: crop the face box (default: the LFW box; --box top,left,size), encode, decode as
identity --to (0 = A, 1 = B), paste back with a feathered mask and LAB colour matching, and save as
PNG with a visible SYNTHETIC mark and PNG metadata. Frames are processed in name order, so a video
split into numbered frames (e.g. by ffmpeg) comes back as numbered swapped frames. No video reader
is installed here, so video files are not read directly. Research use only.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--workdir", required=True, help="a finished run of experiments/faceswap")
  p.add_argument("--frames", required=True, help="folder of .jpg/.png images (photos or frames)")
  p.add_argument("--out", required=True)
  p.add_argument("--to", type=int, default=1, help="decoder to draw with: 0 = A, 1 = B")
  p.add_argument("--box", default="", help="top,left,size of the face box (default: LFW)")
  p.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
  a = p.parse_args()

  from experiments.faceswap import train
  from genjax.data import faces

  frames = sorted(f for f in Path(a.frames).iterdir() if f.suffix.lower() in (".jpg", ".png"))
  frames = frames[: a.limit] if a.limit else frames
  box = faces.FaceBox(*map(int, a.box.split(","))) if a.box else faces.LFW_FACE_BOX
  written = train.swap_photos(a.workdir, frames, Path(a.out), identity=a.to, box=box)
  print(f"{len(written)} swapped images (marked SYNTHETIC) in {a.out}")


if __name__ == "__main__":
  main()
