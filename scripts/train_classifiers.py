"""Trains the Fashion-MNIST classifier with and without the autoencoder term over several seeds.

  python scripts/train_classifiers.py --workdir runs/cam [--settings noae,ae --seeds 0,1,2
      --epochs 10]

The defaults are the settings of the README's table. Each run is a resumable workdir
<workdir>/<setting>-s<seed> (trained once: genjax.train.study); <workdir>/classifiers.md gets the
test accuracy on the 10,000 test images as mean +- sd over seeds for lambda_rec = 0 ("noae") and 1
("ae").
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from experiments.cam import train  # noqa: E402
from experiments.cam.configs import classifier  # noqa: E402
from genjax.train import logging as tlog  # noqa: E402
from genjax.train import study  # noqa: E402

flags.DEFINE_string("workdir", None, "Root folder of the runs.", required=True)
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_list("settings", ["noae", "ae"], "Config variants to train.")
flags.DEFINE_float("epochs", 10, "Epochs per run (the train split's full batches; 468 of 128).")
flags.DEFINE_list("extra", [], "Extra config variants applied to every run, e.g. smoke.")
FLAGS = flags.FLAGS


# Seconds per training step (batch 128): ae-s0's 1.3 to 1.7 steps/s on the 2-core CPU
# (experiments/cam/README.md; 1.3 s/step measured while five other jobs shared it), for noae too;
# per run: loading, compiling and the test evaluation.
SECONDS_PER_STEP = 0.75
SECONDS_PER_RUN = 30.0
BASIS = (f"steps of {SECONDS_PER_STEP:g} s (ae-s0's 1.3 to 1.7 steps/s in the README) plus "
         f"{SECONDS_PER_RUN:g} s per run on a 2-core CPU, slower when other jobs share "
         "it")  # fmt: skip


def seconds(config) -> float:
  """Expected seconds of one run; an epoch is the train split's 468 full batches of 128."""
  steps = config.num_steps or round(config.epochs * 468)
  return steps * SECONDS_PER_STEP + (SECONDS_PER_RUN if config.dataset != "mock" else 10.0)


def main(argv):
  del argv
  tlog.quiet_library_logs()
  plan, setting_of = [], {}
  for setting in FLAGS.settings:
    for seed in map(int, FLAGS.seeds):
      config = classifier.get_config(",".join([setting, *FLAGS.extra]))
      config.seed = seed
      config.epochs = FLAGS.epochs  # the smoke variant's num_steps takes precedence
      plan.append(study.Run(f"{setting}-s{seed}", config, seconds(config)))
      setting_of[f"{setting}-s{seed}"] = setting
  rows = study.run("classifier study", FLAGS.workdir, plan, train.train_and_evaluate, basis=BASIS)
  table = {}
  for name, results in rows:
    table.setdefault(setting_of[name], []).append(results["test_accuracy"])
  lines = [
    "| setting | lambda_rec | seeds | test accuracy (mean +- sd) | per seed |",
    "|---|---|---|---|---|",
  ]
  for setting, accs in table.items():
    a = 100 * np.array(accs)
    lam = classifier.get_config(setting).lambda_rec
    lines.append(f"| {setting} | {lam:g} | {len(a)} | {a.mean():.2f} +- {a.std(ddof=1) if len(a) > 1 else 0:.2f} % "
                 f"| {', '.join(f'{v:.2f}' for v in a)} |")  # fmt: skip
  text = "\n".join(lines) + "\n"
  (Path(FLAGS.workdir) / "classifiers.md").write_text(text)
  print(text)


if __name__ == "__main__":
  app.run(main)
