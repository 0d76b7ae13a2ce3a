"""Trains the Fashion-MNIST classifier with and without the autoencoder term over several seeds.

  python scripts/train_classifiers.py --workdir runs/cam --seeds 0,1,2 [--epochs 10]

Each run is a resumable workdir <workdir>/<setting>-s<seed>; <workdir>/classifiers.md gets the test
accuracy on the 10,000 test images as mean +- sd over seeds for lambda_rec = 1 ("ae") and 0 ("noae").
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from experiments.cam import train  # noqa: E402
from experiments.cam.configs import classifier  # noqa: E402

flags.DEFINE_string("workdir", None, "Root folder of the runs.", required=True)
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_list("settings", ["ae", "noae"], "Config variants to train.")
flags.DEFINE_float("epochs", 10, "Epochs per run (the train split's full batches; 468 of 128).")
flags.DEFINE_list("extra", [], "Extra config variants applied to every run, e.g. smoke.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  root = Path(FLAGS.workdir)
  table = {}
  for setting in FLAGS.settings:
    for seed in map(int, FLAGS.seeds):
      config = classifier.get_config(",".join([setting, *FLAGS.extra]))
      config.seed = seed
      config.epochs = FLAGS.epochs  # the smoke variant's num_steps takes precedence
      done = root / f"{setting}-s{seed}" / "results.json"
      results = (json.loads(done.read_text()) if done.exists()
                 else train.train_and_evaluate(config, done.parent))  # fmt: skip
      table.setdefault(setting, []).append(results["test_accuracy"])
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
  (root / "classifiers.md").write_text(text)
  print(text)


if __name__ == "__main__":
  app.run(main)
