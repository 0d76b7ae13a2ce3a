"""Trains the frozen Fashion-MNIST feature classifier used by the GAN sample-quality metrics.

  python scripts/train_gan_evaluator.py --workdir runs/gan/evaluator

Writes <workdir>/checkpoints and <workdir>/results.json (test accuracy); the GAN configs point at
this workdir through --config.evaluator_dir.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from genjax.evaluate import features  # noqa: E402
from genjax.train import logging as tlog  # noqa: E402

flags.DEFINE_string("workdir", None, "Where the classifier's checkpoint and results go.")
flags.DEFINE_integer("num_steps", 1500, "Adam steps of batch 128 (an epoch is 468 full batches).")
flags.DEFINE_string("dataset", "fashion_mnist", "TFDS name, or 'mock' for a smoke run.")
flags.DEFINE_integer("seed", 0, "Seed of the initialization and the data order.")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  tlog.quiet_library_logs()
  results = features.train(
    FLAGS.workdir, dataset=FLAGS.dataset, num_steps=FLAGS.num_steps, seed=FLAGS.seed
  )
  print(results)


if __name__ == "__main__":
  app.run(main)
