"""Paste-back options side by side: each photo swapped by one model, pasted with alpha or Poisson
blending, with and without colour transfer (genjax.faces.blend.paste_back). Research use only.

  python scripts/blend_figure.py --model a --workdir runs/faceswap/a-s0 --source Colin_Powell \
      --out docs/figures/faceswap/blends.png ../shared/data/faces/lfw/George_W_Bush/George_W_Bush_0004.jpg ...

Rows: the photo, then alpha + colour, alpha, Poisson + colour, Poisson; every swapped tile marked.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments import FACE_SWAP_MODELS, face_swapper  # noqa: E402

OPTIONS = (("alpha", True), ("alpha", False), ("poisson", True), ("poisson", False))


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("photos", nargs="+")
  p.add_argument("--model", choices=sorted(FACE_SWAP_MODELS), required=True)
  p.add_argument("--workdir", required=True)
  p.add_argument("--source", required=True, help="as in scripts/swap.py")
  p.add_argument("--out", required=True)
  a = p.parse_args()

  from genjax.evaluate import face_swaps
  from genjax.faces import swap, video

  fn, size = face_swapper(a.model, a.workdir, a.source)
  rows = [[] for _ in range(len(OPTIONS) + 1)]
  for path in a.photos:
    frame = next(video.frames(video.open_media(path)))
    rows[0].append(frame)
    for i, (how, color) in enumerate(OPTIONS, 1):
      opts = swap.SwapOptions(blend=how, color=color)
      rows[i].append(swap.swap_frame(frame, fn, size, opts)[0])
  face_swaps.save_figure(a.out, face_swaps.grid(rows))
  print(f"{len(a.photos)} photos x {len(OPTIONS)} paste-backs in {a.out}")


if __name__ == "__main__":
  main()
