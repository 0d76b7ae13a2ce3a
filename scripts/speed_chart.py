"""The README's speed chart: genjax's measured speed ratio to each named peer, one bar per benchmark.

  python scripts/speed_chart.py  # writes docs/figures/speed.png

The ratios are the ones the benchmarks printed (side by side in one run, median of alternating
rounds) as reported in the README and the experiment READMEs, with the command that measured each;
where two runs disagreed both are drawn. They are not re-measured here: run the command to do so.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# (what, peer, ratios measured, command)
MEASURED = (
  ("conv autoencoder step", "PyTorch", (0.86,), "bench_autoencoder.py --seconds 10 --repeats 3"),
  ("dense VAE step", "PyTorch", (1.15,), "bench_vae.py"),
  ("conv VAE step, 1 device", "PyTorch", (0.90, 1.04), "bench_vae.py --model conv --seconds 4 --repeats 9"),
  ("conv VAE step, 2 XLA CPU devices", "PyTorch", (1.26, 1.54), "the same, --devices 1,2"),
  ("DCGAN step", "PyTorch", (1.63,), "bench_gan.py --seconds 4 --repeats 9"),
  ("face swap (a) step", "PyTorch", (1.05,), "bench_faceswap.py --model a,c --seconds 10 --repeats 3"),
  ("face swap (c) step", "PyTorch", (0.79,), "the same"),
  ("Grad-CAM++, Fashion-MNIST CNN", "tf-keras-vis", (7.8,), "bench_cam.py --model runs/cam/ae-s0"),
  ("Grad-CAM, ResNet-18", "pytorch-grad-cam", (2.34,), "bench_explain.py --methods gradcam,gradcam++"),
  ("Grad-CAM++, ResNet-18", "pytorch-grad-cam", (2.10,), "the same"),
  ("Score-CAM, ResNet-18", "pytorch-grad-cam", (1.10,), "bench_explain.py"),
)  # fmt: skip


def main() -> None:
  fig, ax = plt.subplots(figsize=(9, 0.36 * len(MEASURED) + 1.0))
  for i, (*_, ratios, _) in enumerate(reversed(MEASURED)):
    color = "tab:green" if min(ratios) >= 1 else "tab:red" if max(ratios) < 1 else "tab:orange"
    ax.barh(i, min(ratios), color=color, alpha=0.8)
    if len(ratios) > 1:
      ax.plot(ratios, [i, i], "k|-", ms=10)
    ax.text(max(ratios) * 1.04, i, " / ".join(f"{r:.2f}x" for r in ratios), va="center", fontsize=8)
  ax.axvline(1.0, color="k", lw=1)
  ax.set_xscale("log")
  ax.set_xlim(0.5, 12)
  ax.set_yticks(
    range(len(MEASURED)), [f"{w} vs {p}" for w, p, _, _ in reversed(MEASURED)], fontsize=8
  )
  ticks = (0.5, 1, 2, 5, 10)
  ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
  ax.minorticks_off()
  ax.set_xlabel("genjax speed / peer speed (log scale; 1 = parity; CPU, 2 cores)")
  ax.set_title("Measured speed ratios (each benchmark side by side in one run)", fontsize=10)
  fig.tight_layout()
  out = ROOT / "docs" / "figures" / "speed.png"
  fig.savefig(out, dpi=110)
  plt.close(fig)
  print(out)


if __name__ == "__main__":
  main()
