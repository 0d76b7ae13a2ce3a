"""The GAN study: four objectives x several seeds on Fashion-MNIST, then a table and figures.

Each run is an ordinary train_and_evaluate workdir <root>/<variant>-s<seed> (an interrupted sweep
resumes run by run; finished runs are read back). Runs go seed by seed, so a partial sweep has every
variant at the first seeds. write_report gives <root>/results.md (mean +- sd over seeds),
losses.png (D and G loss curves, seed 0) and samples.png (sample grids over training, seed 0).
"""

from pathlib import Path

import numpy as np

from experiments.gan import train
from experiments.gan.configs import dcgan
from genjax.train import logging as tlog
from genjax.train import study

VARIANTS = ("ns", "saturating", "wgan_gp", "ns_r1")
METRICS = ("fd", "classifier_score", "class_entropy")
NOTE = (
  "Features, scores and class histograms come from this project's own Fashion-MNIST classifier "
  "(genjax.evaluate.features), not Inception-v3: the numbers are NOT comparable with Inception "
  "FIDs or Inception scores."
)


# Seconds per training step (batch 64) and per run (loading, compiling, sample grids, 5000 samples
# scored), fitted to the study's own runs on the idle 2-core CPU at c00290b (20 min 31 s for all
# 12: 67 to 85 s each for ns, saturating and ns_r1, 2 to 3 min for wgan_gp). WGAN-GP takes 2 critic
# steps with a gradient penalty per step; the evaluator is 1500 steps of a small classifier.
SECONDS_PER_STEP = {"ns": 0.03, "saturating": 0.03, "wgan_gp": 0.058, "ns_r1": 0.033}
SECONDS_PER_RUN = 15.0
SECONDS_EVALUATOR = 45.0  # where no run has trained the frozen classifier yet
BASIS = (
  "steps of " + ", ".join(f"{s * 1e3:.0f} ms {v}" for v, s in SECONDS_PER_STEP.items())
  + f", plus {SECONDS_PER_RUN:g} s per run to load, compile and score the samples and "
  f"{SECONDS_EVALUATOR:g} s for the evaluator if it is not trained yet, from this study's runs on "
  "an idle 2-core CPU"
)  # fmt: skip


def seconds(variant: str, config) -> float:
  """Expected seconds of one run on the 2-core CPU (SECONDS_PER_STEP, SECONDS_PER_RUN)."""
  return config.num_steps * SECONDS_PER_STEP[variant] + (
    SECONDS_PER_RUN if config.dataset != "mock" else 10.0
  )


def run_all(root: str, *, seeds=(0, 1, 2), variants=VARIANTS, overrides=None) -> list:
  """Trains each run once (seed by seed), rewriting the report after each; returns
  [(variant, seed, results)]."""
  root = Path(root)
  plan, of, evaluators = [], {}, set()
  for seed in seeds:
    for v in variants:
      config, name = dcgan.get_config(v), f"{v}-s{seed}"
      config.seed = seed
      if overrides:
        overrides(config)
      t, evaluator = seconds(v, config), Path(config.evaluator_dir or root / name / "evaluator")
      if not (evaluator / "results.json").exists() and evaluator not in evaluators:
        evaluators.add(evaluator)  # the first run to need it trains it
        t += SECONDS_EVALUATOR if config.dataset != "mock" else 3.0
      plan.append(study.Run(name, config, t))
      of[name] = (v, seed)
  rows = []

  def report(name, results):
    rows.append((*of[name], results))
    write_report(root, rows)

  study.run("GAN study", root, plan, train.train_and_evaluate, basis=BASIS, on_result=report)
  return rows


def _mean_sd(values) -> str:
  v = np.asarray(values, np.float64)
  return f"{v.mean():.3f} +- {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def write_report(root: Path, rows: list) -> None:
  """results.md: one line per variant, mean +- sd (sample sd, ddof=1) over the finished seeds."""
  root = Path(root)
  lines = [
    "| objective | seeds | steps | Frechet distance (ours) | classifier score (ours) "
    "| class-histogram entropy (nats) |",
    "|---|---|---|---|---|---|",
  ]
  for v in dict.fromkeys(r[0] for r in rows):
    res = [r[2] for r in rows if r[0] == v]
    cells = " | ".join(_mean_sd([r[m] for r in res]) for m in METRICS)
    lines.append(f"| {v} | {len(res)} | {res[0]['step']} | {cells} |")
  r0 = rows[0][2]
  floors = [r[2]["fd_floor_train_vs_test"] for r in rows]
  lines += [
    f"| real train vs real test (floor) | - | - | {_mean_sd(floors)} | "
    f"{r0['classifier_score_real']:.3f} | {r0['class_entropy_real']:.3f} |",
    "",
    f"{r0['eval_samples']} samples per run against as many real test images; evaluator test "
    f"accuracy {r0['evaluator_test_accuracy']:.4f}. {NOTE}",
  ]
  (root / "results.md").write_text("\n".join(lines) + "\n")
  _figures(root, [(v, s) for v, s, _ in rows if s == rows[0][1]], rows[0][1])


def _figures(root: Path, runs: list, seed: int) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from PIL import Image

  fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3), squeeze=False)
  for ax, (v, s) in zip(axes[0], runs, strict=True):
    m = [r for r in tlog.read_metrics(root / f"{v}-s{s}") if "d_loss" in r]
    steps = [r["step"] for r in m]
    ax.plot(steps, [r["d_loss"] for r in m], label="D loss")
    ax.plot(steps, [r["g_loss"] for r in m], label="G loss")
    ax.set_title(f"{v} (seed {s})")
    ax.set_xlabel("step")
    ax.legend()
  fig.tight_layout()
  fig.savefig(root / "losses.png", dpi=80)
  plt.close(fig)

  # Sample grids over training: one row per objective, one column per saved step.
  grids = {v: sorted((root / f"{v}-s{s}" / "samples").glob("step_*.png")) for v, s in runs}
  ncol = max(len(g) for g in grids.values())
  fig, axes = plt.subplots(len(runs), ncol, figsize=(2.2 * ncol, 2.4 * len(runs)), squeeze=False)
  for i, (v, _) in enumerate(runs):
    for j in range(ncol):
      ax = axes[i, j]
      ax.axis("off")
      if j < len(grids[v]):
        ax.imshow(np.asarray(Image.open(grids[v][j])), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{v} {grids[v][j].stem.replace('step_', 'step ').lstrip('0')}", fontsize=8)
  fig.suptitle(f"samples over training (seed {seed}, fixed z)")
  fig.tight_layout()
  fig.savefig(root / "samples.png", dpi=80)
  plt.close(fig)
