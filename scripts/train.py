"""Trains one experiment config.

  python scripts/train.py --config experiments/<name>/configs/<file>.py[:variant] --workdir DIR

The experiment is the folder that holds the config; its train.py provides train_and_evaluate.
Override any field from the command line, e.g. --config.num_steps=100 --config.seed=1.
A workdir that holds checkpoints is resumed (with the config it was started with: only the run's
length, reporting, data paths and evaluation may change); a value out of range or a workdir of
another run stops with one message naming the fields.

Several processes (hosts, or one per GPU) run the same command: under srun, mpirun or on a Cloud
TPU VM they find each other, elsewhere set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES
and JAX_PROCESS_ID (see genjax.train.distributed). Process 0 writes the logs and the results.
"""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from genjax.train import config as tconfig  # noqa: E402
from genjax.train import distributed  # noqa: E402
from genjax.train import logging as tlog  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to an experiment config file[:variant].")
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and figures go.")
flags.mark_flags_as_required(["config", "workdir"])


def experiment_of(config_path: str) -> str:
  parts = Path(config_path.split(":")[0]).resolve().relative_to(ROOT).parts
  if len(parts) < 4 or parts[0] != "experiments" or parts[2] != "configs":
    raise app.UsageError(
      f"--config must be experiments/<name>/configs/<file>.py, got {config_path}"
    )
  return parts[1]


def main(argv):
  del argv
  tlog.quiet_library_logs()
  distributed.initialize()  # before any JAX computation
  name = experiment_of(flags.FLAGS["config"].config_filename)
  train = importlib.import_module(f"experiments.{name}.train")
  try:
    results = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except tconfig.ConfigError as e:  # a bad value or a workdir of another run: no traceback
    sys.exit(f"error: {e}")
  if distributed.is_main():
    print({k: v for k, v in results.items() if k != "config"})


if __name__ == "__main__":
  app.run(main)
