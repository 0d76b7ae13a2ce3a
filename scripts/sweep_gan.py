"""Runs the GAN study (ns, saturating, wgan_gp, ns_r1 x seeds) and writes its table and figures.

  python scripts/sweep_gan.py --workdir runs/gan [--evaluator_dir runs/gan/evaluator --seeds 0,1,2]

The defaults are the settings of the README's table (4 objectives x 3 seeds, the config's 2000
steps and 5000 evaluation samples). The frozen evaluator is read from --evaluator_dir (default
<workdir>/evaluator), and trained there first if it holds none, as scripts/train_gan_evaluator.py
does with its defaults. Writes <workdir>/results.md,
losses.png, samples.png and one workdir per run (resumable). Runs share one process and an on-disk
compilation cache, so each objective compiles once.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from genjax.train import logging as tlog  # noqa: E402

flags.DEFINE_string("workdir", None, "Root folder of the study.", required=True)
flags.DEFINE_string(
  "evaluator_dir", None, "Workdir of the frozen classifier (default <workdir>/evaluator)."
)
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every objective.")
flags.DEFINE_list("variants", ["ns", "saturating", "wgan_gp", "ns_r1"], "Objectives.")
flags.DEFINE_integer("num_steps", None, "Override the steps of every run.")
flags.DEFINE_integer("eval_samples", None, "Override the number of evaluation samples.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  tlog.quiet_library_logs()
  import jax

  jax.config.update("jax_compilation_cache_dir", str(Path(FLAGS.workdir) / "jax_cache"))
  from experiments.gan import sweep

  def overrides(c):
    c.evaluator_dir = FLAGS.evaluator_dir or str(Path(FLAGS.workdir) / "evaluator")
    if FLAGS.num_steps:
      c.num_steps = FLAGS.num_steps
    if FLAGS.eval_samples:
      c.eval_samples = FLAGS.eval_samples

  seeds = tuple(int(s) for s in FLAGS.seeds)
  rows = sweep.run_all(FLAGS.workdir, seeds=seeds, variants=tuple(FLAGS.variants),
                       overrides=overrides)  # fmt: skip
  print(Path(FLAGS.workdir, "results.md").read_text())
  print(f"{len(rows)} rows; figures in {FLAGS.workdir}")


if __name__ == "__main__":
  app.run(main)
