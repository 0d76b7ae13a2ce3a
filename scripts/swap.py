"""Swaps a face in a photo, a folder of frames or a video with model (a), (b) or (c). Research use only.

  python scripts/swap.py --model a --workdir runs/faceswap/a-s0 --input photo.jpg --out out.png \
      --source Colin_Powell
  python scripts/swap.py --model c --workdir runs/faceswap/c-s0 --input clip.mp4 --out out.mp4 \
      --source Colin_Powell        # or --source DIR_OR_PHOTO of the source person

Every face of each frame is found (dlib); the largest is swapped (or, with --pick identity, the one
most like the photos in --target_ref); landmarks are smoothed over video frames; a frame without a
face passes unchanged and is counted. --source: for (a) the decoder's person (a name of its pair);
for (b) and (c) photos of the source person, or the name of a person of the LFW photos (their
training photos). Every output is marked SYNTHETIC (visible label and metadata).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments import FACE_SWAP_MODELS, face_swapper  # noqa: E402


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--model", choices=sorted(FACE_SWAP_MODELS), required=True)
  p.add_argument("--workdir", required=True, help="a run of the model's experiment")
  p.add_argument("--input", required=True, help="photo, folder of frames, or video file")
  p.add_argument("--out", required=True, help=".png for a photo, a folder for frames, .mp4/.gif")
  p.add_argument("--source", required=True, help="who the face becomes (see above)")
  p.add_argument("--pick", choices=("largest", "identity"), default="largest")
  p.add_argument("--target_ref", nargs="*", default=(), help="photos of the face to replace")
  p.add_argument("--blend", choices=("alpha", "poisson"), default="alpha")
  p.add_argument("--no_color", action="store_true", help="no colour transfer")
  p.add_argument("--smoothing", type=float, default=0.5, help="landmark EMA weight over frames")
  a = p.parse_args()

  from genjax.faces import swap, video

  opts = swap.SwapOptions(blend=a.blend, color=not a.no_color, smoothing=a.smoothing, pick=a.pick)
  media = video.open_media(a.input)  # fail early on a bad input, before loading a model
  reference = swap.mean_descriptor(a.target_ref) if a.pick == "identity" else None
  swap_faces, size = face_swapper(a.model, a.workdir, a.source)
  report = swap.run(media, a.out, swap_faces, size, opts, reference=reference)
  print(f"{report.summary()}; written to {a.out} (marked SYNTHETIC)")


if __name__ == "__main__":
  main()
