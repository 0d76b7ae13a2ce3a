"""Explains a trained classifier with CAM, Grad-CAM and Grad-CAM++ and measures how faithful the maps are.

  python scripts/explain_classifier.py --model runs/cam/ae-s0 --out runs/cam/explain [--n 10000]

Writes overlays_correct.png, overlays_wrong.png, explain.json and explain.md (the tables) to --out.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from experiments.cam import explain  # noqa: E402
from genjax.train import logging as tlog  # noqa: E402

flags.DEFINE_string("model", None, "Workdir of a trained classifier.", required=True)
flags.DEFINE_string("out", None, "Output folder.", required=True)
flags.DEFINE_enum("score", "exp", ["logit", "exp", "softmax"], "Explained score.")
flags.DEFINE_integer("n", 10000, "Test images for Average Drop / Increase / Win.")
flags.DEFINE_integer("n_curve", 1000, "Test images for the deletion and insertion curves.")
flags.DEFINE_integer("steps", 16, "Steps of the deletion and insertion curves.")
flags.DEFINE_integer("n_sanity", 500, "Test images for the randomization check.")
flags.DEFINE_integer("batch", 250, "Images per jitted call.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  tlog.quiet_library_logs()
  explain.run(FLAGS.model, FLAGS.out, score=FLAGS.score, n=FLAGS.n, n_curve=FLAGS.n_curve,
              steps=FLAGS.steps, batch=FLAGS.batch, n_sanity=FLAGS.n_sanity)  # fmt: skip
  print((Path(FLAGS.out) / "explain.md").read_text())


if __name__ == "__main__":
  app.run(main)
