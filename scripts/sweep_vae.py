"""The VAE study on Fashion-MNIST in one process: beta in {0.5, 1, 4} x {dense, conv}, plus a 2-D latent.

  python scripts/sweep_vae.py --workdir runs/vae [--runs dense,latent2,conv] [--dense_steps 938]
      [--conv_steps 469] [--dense_iwae 1000] [--conv_iwae 200] [--iwae_k 1000]

The defaults are the settings of the README's table (its 7 rows, in its order). One process (one
JAX start, one data load, a shared compilation cache) runs each model in its own resumable workdir
and writes <workdir>/results_<runs>.md. A run whose results.json already holds this config at its
last step is read back, not evaluated again (genjax.train.study).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments.vae import train as vae_train  # noqa: E402
from experiments.vae.configs import conv, dense  # noqa: E402
from genjax.train import logging as tlog  # noqa: E402
from genjax.train import study  # noqa: E402

flags.DEFINE_string("workdir", None, "Parent folder of the runs.", required=True)
flags.DEFINE_string("runs", "dense,latent2,conv", "Which groups to run.")
flags.DEFINE_integer(
  "dense_steps", 938, "Steps of each dense run (batch 128; an epoch is 468 full batches)."
)
flags.DEFINE_integer("conv_steps", 469, "Steps of each conv run.")
flags.DEFINE_integer("dense_iwae", 1000, "Test images scored by the IWAE bound, dense (0 = all).")
flags.DEFINE_integer("conv_iwae", 200, "Test images scored by the IWAE bound, conv (0 = all).")
flags.DEFINE_integer("iwae_k", 1000, "Importance samples per image.")
FLAGS = flags.FLAGS

HEADER = ("| run | beta | steps | test -ELBO | test IWAE NLL (k, images) | -ELBO on those images "
          "| KL | recon MSE |\n|---|---|---|---|---|---|---|---|\n")  # fmt: skip


# Seconds per training step (batch 128), per 1000 test images scored by the IWAE bound at k = 1000,
# and per run for the rest (loading, compiling, evaluation, figures), fitted to the study's own
# runs on the idle 2-core CPU at b95fb3f (3 min 50 s for all 7: 23 to 30 s dense, 41 to 47 s conv).
SECONDS_PER_STEP = {"dense": 0.008, "conv": 0.04}
IWAE_SECONDS_PER_1000 = {"dense": 10.0, "conv": 95.0}
SECONDS_PER_RUN = 6.0
BASIS = (f"steps of {SECONDS_PER_STEP['dense'] * 1e3:.0f} ms dense, "
         f"{SECONDS_PER_STEP['conv'] * 1e3:.0f} ms conv, the IWAE bound (k = 1000) in "
         f"{IWAE_SECONDS_PER_1000['dense']:g} s dense, {IWAE_SECONDS_PER_1000['conv']:g} s conv "
         f"per 1000 images, plus {SECONDS_PER_RUN:g} s per run, from this study's runs on an idle "
         "2-core CPU")  # fmt: skip


def seconds(config) -> float:
  kind, n = config.model.kind, config.iwae_examples or 10000
  iwae = IWAE_SECONDS_PER_1000[kind] * n / 1000 * config.iwae_k / 1000
  return config.num_steps * SECONDS_PER_STEP[kind] + iwae + SECONDS_PER_RUN


def plan():
  for group in FLAGS.runs.split(","):
    module, steps, n_iwae = {"dense": (dense, FLAGS.dense_steps, FLAGS.dense_iwae),
                             "conv": (conv, FLAGS.conv_steps, FLAGS.conv_iwae),
                             "latent2": (dense, FLAGS.dense_steps, FLAGS.dense_iwae)}[group]  # fmt: skip
    for beta in ("1", "0.5", "4") if group != "latent2" else ("1",):
      config = module.get_config(f"beta{beta}" + (",latent2" if group == "latent2" else ""))
      config.num_steps, config.iwae_examples, config.iwae_k = steps, n_iwae, FLAGS.iwae_k
      name = f"{group}-beta{beta}" if group != "latent2" else "dense-latent2"
      yield study.Run(name, config, seconds(config))


def main(argv):
  del argv
  tlog.quiet_library_logs()
  jax.config.update("jax_compilation_cache_dir", str(Path(FLAGS.workdir) / "jax-cache"))
  table = Path(FLAGS.workdir) / f"results_{FLAGS.runs.replace(',', '_')}.md"
  table.parent.mkdir(parents=True, exist_ok=True)
  table.write_text(HEADER)

  def row(name, r):
    with table.open("a") as f:
      f.write(f"| {name} | {r['config']['beta']:g} | {r['step']} | {r['test_neg_elbo']:.2f} | "
              f"{r['test_iwae_nll']:.2f} ({r['iwae_k']}, {r['iwae_examples']}) | "
              f"{r['test_neg_elbo_on_iwae_examples']:.2f} | {r['test_kl']:.2f} | {r['test_mse']:.5f} |\n")  # fmt: skip
    print(name, {k: v for k, v in r.items() if k != "config"}, flush=True)

  study.run("VAE study", FLAGS.workdir, plan(), vae_train.train_and_evaluate, basis=BASIS,
            on_result=row)  # fmt: skip


if __name__ == "__main__":
  app.run(main)
