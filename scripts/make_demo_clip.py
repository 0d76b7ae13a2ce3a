"""Makes a short test clip from still photos: each photo slowly zoomed and panned (genjax.faces.video
.ken_burns), one after another, with a faceless grey frame between them; for trying scripts/swap.py
on video where no video of a person is at hand.

  python scripts/make_demo_clip.py --out runs/faceswap/clip.mp4 --frames 16 \
      ../shared/data/faces/lfw/George_W_Bush/George_W_Bush_0004.jpg ...
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("photos", nargs="+", help="photos of the same size")
  p.add_argument("--out", required=True, help=".mp4 or .gif")
  p.add_argument("--frames", type=int, default=16, help="frames per photo")
  p.add_argument("--fps", type=float, default=12.0)
  a = p.parse_args()

  import numpy as np

  from genjax.faces import video

  frames = []
  for i, path in enumerate(a.photos):
    photo = next(video.frames(video.open_media(path)))
    if i:
      frames.append(np.full_like(photo, 128))  # a cut: no face in this frame
    frames += video.ken_burns(photo, a.frames)
  video.write_video(a.out, frames, fps=a.fps, note="test clip made from still LFW photos")
  print(f"{len(frames)} frames at {a.fps} fps in {a.out}")


if __name__ == "__main__":
  main()
