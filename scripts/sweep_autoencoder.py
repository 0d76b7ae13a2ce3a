"""Runs the whole autoencoder study on Fashion-MNIST and writes the table and figures.

  python scripts/sweep_autoencoder.py --workdir runs/ae [--dense_epochs 1 --conv_epochs 1
      --conv_variants plain,l2,denoising]

The defaults are the settings of the README's table: 17 runs of one epoch, two of which repeat
another run's config and are trained once. Writes <workdir>/results.md, lambda.png, variants.png
and one workdir per run (resumable).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from experiments.autoencoder import sweep  # noqa: E402
from genjax.train import logging as tlog  # noqa: E402

flags.DEFINE_string("workdir", None, "Root folder of the study.", required=True)
flags.DEFINE_integer("dense_epochs", 1, "Epochs per dense run (468 full batches of 128 each).")
flags.DEFINE_integer("conv_epochs", 1, "Epochs per conv run.")
flags.DEFINE_list("archs", ["dense", "conv"], "Architectures of the variant runs.")
flags.DEFINE_list(
  "conv_variants",
  ["plain", "l2", "denoising"],
  f"Variants trained with the conv model, of {sweep.VARIANT_RUNS}.",
)
flags.DEFINE_boolean("smoke", False, "2 steps per run on generated data (checks the pipeline).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  tlog.quiet_library_logs()
  smoke = None
  if FLAGS.smoke:
    from experiments.autoencoder.configs import variants

    smoke = lambda c: variants.apply(c, "smoke")
  epochs = None if FLAGS.smoke else {"dense": FLAGS.dense_epochs, "conv": FLAGS.conv_epochs}
  rows = sweep.run_all(
    FLAGS.workdir,
    archs=tuple(FLAGS.archs),
    epochs=epochs,
    conv_variants=tuple(FLAGS.conv_variants),
    overrides=smoke,
  )
  print(Path(FLAGS.workdir, "results.md").read_text())
  print(f"{len(rows)} rows; figures in {FLAGS.workdir}")


if __name__ == "__main__":
  app.run(main)
