"""Face-swap evaluation of models (a), (b), (c) and two baselines by dlib, which no one here trained.

  python scripts/eval_faceswap.py --a runs/faceswap/a-s0,runs/faceswap/a-s1,runs/faceswap/a-s2 \
      --b runs/faceswap/b-s0 --c runs/faceswap/c-s0 --out runs/faceswap/eval

Targets: the held-out original LFW photos of the pair (genjax.data.faces.is_held_out), which no
network here trained on. Each is swapped towards the other person with the whole photo pipeline
(dlib landmarks, alignment, the model, paste-back) and scored by genjax.evaluate.face_identity:
"match" (within 0.6 of the source's mean descriptor and at least 0.6 from the target's), top-1
among the 158 LFW3D people, the 68-landmark error to the target, and the change of the face region
against the model's self-swap error. Baselines: copy target (the photo unchanged) and paste source
(a held-out photo of the source, aligned and pasted by the same code). Several workdirs per model
(seeds) give mean +- sd; each match share also gets a 95% bootstrap interval over the held-out
photos (genjax.evaluate.face_swaps.match_interval), and results.json keeps every photo's match and
dlib distances per seed and how its face sits (yaw, roll, eye distance); results.md adds the rank
correlation of each photo's match share with that pose (face_swaps.pose_association). Writes
<out>/results.md, results.json and before/after figures.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from genjax.train import logging as tlog  # noqa: E402

flags.DEFINE_string("a", "", "Workdirs of model (a), comma-separated (seeds).")
flags.DEFINE_string("b", "", "Workdirs of model (b).")
flags.DEFINE_string("c", "", "Workdirs of model (c).")
flags.DEFINE_string("pair", "George_W_Bush,Colin_Powell", "The pair A,B.")
flags.DEFINE_string("out", "runs/faceswap/eval", "Where results and figures go.")
flags.DEFINE_enum("blend", "alpha", ["alpha", "poisson"], "Paste-back blending.")
flags.DEFINE_bool("color", True, "Colour transfer in the paste-back.")
flags.DEFINE_integer("figure_photos", 6, "Photos per direction in the before/after figures.")
FLAGS = flags.FLAGS


def swappers(a: str, b: str, c: str) -> dict:
  """method -> [make(source) -> (swap_faces, size)], one per workdir of the comma-separated lists;
  each bound to its own workdir."""
  from experiments import FACE_SWAP_NAMES, face_swapper

  dirs = {"a": a, "b": b, "c": c}
  return {FACE_SWAP_NAMES[m]: [lambda source, m=m, w=w: face_swapper(m, w, source)
                               for w in dirs[m].split(",")]
          for m in FACE_SWAP_NAMES if dirs[m]}  # fmt: skip


def main(argv):
  del argv
  tlog.quiet_library_logs()
  from genjax.evaluate import face_swaps

  rows, figures = face_swaps.evaluate(tuple(FLAGS.pair.split(",")),
                                      swappers(FLAGS.a, FLAGS.b, FLAGS.c),
                                      paste={"blend": FLAGS.blend, "color": FLAGS.color},
                                      figure_photos=FLAGS.figure_photos)  # fmt: skip
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.json").write_text(json.dumps(rows, indent=2))
  table = face_swaps.markdown(rows)
  (out / "results.md").write_text(table)
  for name, grid in figures.items():
    face_swaps.save_figure(out / f"{name}.png", grid)
  print(table)


if __name__ == "__main__":
  app.run(main)
