"""The VAE study on Fashion-MNIST in one process: beta in {0.5, 1, 4} x {dense, conv}, plus a 2-D latent.

  python scripts/sweep_vae.py --workdir runs/vae [--runs dense,conv,latent2] [--dense_steps 938]
      [--conv_steps 469] [--dense_iwae 1000] [--conv_iwae 200] [--iwae_k 1000]

One process (one JAX start, one data load, a shared compilation cache) runs each model in its own
resumable workdir and writes <workdir>/results_<runs>.md, the table of the experiment README. A run
whose results.json already holds this config at its last step is read back, not evaluated again.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments.vae import train as vae_train  # noqa: E402
from experiments.vae.configs import conv, dense  # noqa: E402

flags.DEFINE_string("workdir", None, "Parent folder of the runs.", required=True)
flags.DEFINE_string("runs", "dense,conv,latent2", "Which groups to run.")
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


def plan():
  for group in FLAGS.runs.split(","):
    module, steps, n_iwae = {"dense": (dense, FLAGS.dense_steps, FLAGS.dense_iwae),
                             "conv": (conv, FLAGS.conv_steps, FLAGS.conv_iwae),
                             "latent2": (dense, FLAGS.dense_steps, FLAGS.dense_iwae)}[group]  # fmt: skip
    for beta in ("1", "0.5", "4") if group != "latent2" else ("1",):
      config = module.get_config(f"beta{beta}" + (",latent2" if group == "latent2" else ""))
      config.num_steps, config.iwae_examples, config.iwae_k = steps, n_iwae, FLAGS.iwae_k
      yield (f"{group}-beta{beta}" if group != "latent2" else "dense-latent2"), config


def finished(workdir: Path, config) -> dict | None:
  """The stored results of a run that reached config.num_steps with exactly this config, or None."""
  path = workdir / "results.json"
  if not path.exists():
    return None
  r = json.loads(path.read_text())
  same = r.get("config") == json.loads(json.dumps(config.to_dict()))
  return r if same and r.get("step") == config.num_steps else None


def main(argv):
  del argv
  jax.config.update("jax_compilation_cache_dir", str(Path(FLAGS.workdir) / "jax-cache"))
  table = Path(FLAGS.workdir) / f"results_{FLAGS.runs.replace(',', '_')}.md"
  table.parent.mkdir(parents=True, exist_ok=True)
  table.write_text(HEADER)
  for name, config in plan():
    r = finished(Path(FLAGS.workdir) / name, config)
    r = r or vae_train.train_and_evaluate(config, str(Path(FLAGS.workdir) / name))
    with table.open("a") as f:
      f.write(f"| {name} | {config.beta:g} | {r['step']} | {r['test_neg_elbo']:.2f} | "
              f"{r['test_iwae_nll']:.2f} ({r['iwae_k']}, {r['iwae_examples']}) | "
              f"{r['test_neg_elbo_on_iwae_examples']:.2f} | {r['test_kl']:.2f} | {r['test_mse']:.5f} |\n")  # fmt: skip
    print(name, {k: v for k, v in r.items() if k != "config"}, flush=True)


if __name__ == "__main__":
  app.run(main)
