"""The autoencoder study: every variant, dense and conv, plus a lambda sweep of the L1 and L2 penalties.

Each run is an ordinary train_and_evaluate workdir under <root>/ (so an interrupted sweep resumes
run by run, and genjax.train.study trains a config that the plan repeats once); at the end
results.md (a table), lambda.png (test error and weight norm against lambda) and variants.png
(reconstructions of every variant) are written to <root>.
"""

from pathlib import Path

import numpy as np

from experiments.autoencoder import train
from experiments.autoencoder.configs import variants
from genjax.train import study

VARIANT_RUNS = ("plain", "l1", "l2", "frobenius", "sparse", "denoising", "contractive", "mse")
# ||W||_F^2 = 2 * (1/2 ||W||^2): the squared-Frobenius path is the L2 path at lambda / 2, so the grid
# sweeps L1 and L2 (the frobenius variant run above checks that penalty end to end).
LAMBDAS = {
  "l1": (1e-5, 1e-4, 1e-3),
  "l2": (1e-4, 1e-3, 1e-2),
}


def runs(archs=("dense", "conv"), epochs: dict | None = None, conv_variants=VARIANT_RUNS):
  """Yields (name, config) for every run of the study."""
  for arch in archs:
    for v in VARIANT_RUNS if arch == "dense" else conv_variants:
      c = variants.apply(variants.base(arch), v)
      if epochs:
        c.num_steps = epochs[arch] * (60000 // c.batch_size)
      yield f"{arch}-{v}", c
  for kind, grid in LAMBDAS.items():
    for lam in grid:
      c = variants.apply(variants.base("dense"), kind)
      c.loss.weight_decay = lam
      if epochs:
        c.num_steps = epochs["dense"] * (60000 // c.batch_size)
      yield f"dense-{kind}-lambda{lam:g}", c


# Seconds per training step at batch 128 and per run (loading, compiling, the test evaluation and
# figures), from the study's own runs on the idle 2-core CPU at c00290b (4 min 39 s for all 15
# trainings); conv-contractive, not in the default plan, from 25 to 200 steps on a shared one. The
# contractive term's per-example encoder Jacobian dominates its step.
SECONDS_PER_STEP = {
  "dense": 0.009,
  "dense-contractive": 0.14,
  "conv": 0.04,
  "conv-contractive": 2.0,
}
SECONDS_PER_RUN = {"dense": 6.0, "conv": 12.0}
BASIS = (
  f"steps of {SECONDS_PER_STEP['dense'] * 1e3:.0f} ms dense, "
  f"{SECONDS_PER_STEP['dense-contractive'] * 1e3:.0f} ms dense contractive, "
  f"{SECONDS_PER_STEP['conv'] * 1e3:.0f} ms conv, {SECONDS_PER_STEP['conv-contractive']:g} s conv "
  f"contractive, plus {SECONDS_PER_RUN['dense']:g} s (dense) or {SECONDS_PER_RUN['conv']:g} s "
  "(conv) per run to load, compile and evaluate, from this study's runs on an idle 2-core CPU"
)


def seconds(config) -> float:
  """Expected seconds of one run of `config` on the 2-core CPU (by SECONDS_PER_STEP and _RUN)."""
  kind = config.model.kind
  per_step = SECONDS_PER_STEP[kind + ("-contractive" if config.loss.contractive else "")]
  return config.num_steps * per_step + (SECONDS_PER_RUN[kind] if config.dataset != "mock" else 4.0)


def run_all(
  root: str, *, archs=("dense", "conv"), epochs=None, conv_variants=VARIANT_RUNS, overrides=None
) -> list:
  """Trains every run of the study once (a repeated config reads its first run's results), then
  writes the report; returns [(name, results)] in plan order."""
  plan = []
  for name, config in runs(archs, epochs, conv_variants):
    if overrides:
      overrides(config)
    plan.append(study.Run(name, config, seconds(config)))
  rows = study.run("autoencoder study", root, plan, train.train_and_evaluate, basis=BASIS)
  write_report(Path(root), rows)
  return rows


def write_report(root: Path, rows: list) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  lines = ["| run | recon loss | lambda | steps | test MSE | test BCE (nats/pixel) | weight norm |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
  for name, r in rows:
    c = r["config"]
    lam = c["loss"]["weight_decay"] if c["loss"]["penalty"] != "none" else 0.0
    lines.append(f"| {name} | {c['loss']['reconstruction']} | {lam:g} | {r['step']} | {r['test_mse']:.5f} | "
                 f"{r['test_bce']:.4f} | {r['weight_norm']:.1f} |")  # fmt: skip
  (root / "results.md").write_text("\n".join(lines) + "\n")

  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for kind in LAMBDAS:
    pts = sorted(
      (r["config"]["loss"]["weight_decay"], r)
      for n, r in rows
      if n.startswith(f"dense-{kind}-lambda")
    )
    if not pts:
      continue
    lam = [p[0] for p in pts]
    axes[0].semilogx(lam, [p[1]["test_mse"] for p in pts], "o-", label=kind)
    axes[1].semilogx(lam, [p[1]["weight_norm"] for p in pts], "o-", label=kind)
  axes[0].set(
    xlabel="lambda", ylabel="test reconstruction MSE", title="Test error vs lambda (dense AE)"
  )
  axes[1].set(xlabel="lambda", ylabel="||W|| (all weight matrices)", title="Weight norm vs lambda")
  for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(root / "lambda.png", dpi=120)
  plt.close(fig)

  grids = [(n, plt.imread(root / n / "reconstructions.png")) for n, _ in rows if "lambda" not in n
           and (root / n / "reconstructions.png").exists()]  # fmt: skip
  if grids:
    fig, axes = plt.subplots(len(grids), 1, figsize=(12, 1.6 * len(grids)))
    for ax, (n, img) in zip(np.atleast_1d(axes), grids, strict=True):
      ax.imshow(img, cmap="gray")  # the grids are single-channel
      ax.set_axis_off()
      ax.set_title(f"{n}: top row test images, bottom row reconstructions", fontsize=8)
    fig.tight_layout()
    fig.savefig(root / "variants.png", dpi=110)
    plt.close(fig)
