"""The strip of result figures at the top of the README, cut from the committed result figures.

  python scripts/readme_strip.py  # writes docs/figures/strip.png

Each panel is a crop of a figure that an experiment wrote (its command is in the README next to
the figure): conv autoencoder reconstructions (docs/figures/ae_variants.png, conv-plain), dense VAE
samples at beta = 1, WGAN-GP samples at step 2000 (seed 0), Grad-CAM++ at stage3 of the
AE-regularized classifier on four correctly classified test images, and face swap (a) on two
held-out photos of George_W_Bush (top: the photo, bottom: (a)'s swap to Colin_Powell).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "docs" / "figures"


def _read(name: str) -> np.ndarray:
  img = plt.imread(FIG / name)
  if img.ndim == 2:  # grey
    img = img[..., None]
  return np.broadcast_to(img[..., :3], (*img.shape[:2], 3)) if img.shape[2] < 3 else img[..., :3]


def _grid(tiles: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
  """Tiles (rows of equal-size RGB arrays) on a white grid."""
  h, w = tiles[0][0].shape[:2]
  out = np.ones((len(tiles) * (h + gap) - gap, len(tiles[0]) * (w + gap) - gap, 3), np.float32)
  for i, row in enumerate(tiles):
    for j, t in enumerate(row):
      out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = t
  return out


def _bands(fraction: np.ndarray, threshold: float = 0.3) -> list[tuple[int, int]]:
  """[start, stop) of each run of indices where `fraction` exceeds `threshold`."""
  above = np.concatenate([[False], fraction > threshold, [False]])
  edges = np.flatnonzero(above[1:] != above[:-1])
  return list(zip(edges[::2], edges[1::2], strict=True))


def autoencoder(panel: int = 8) -> np.ndarray:
  """The conv-plain panel (the 9th run of the study) of ae_variants.png: each panel is a row of 16
  test images over a row of their reconstructions; found by their dark pixels, not by position."""
  img = _read("ae_variants.png")
  dark = img.mean(-1) < 0.8
  rows = _bands(dark.mean(1))[2 * panel : 2 * panel + 2]  # the panel's two image rows
  band = dark[rows[0][0] : rows[1][1]]
  x = np.flatnonzero(band.mean(0) > 0.3)
  cell = (x[-1] + 1 - x[0]) / 16
  side = min(b - a for a, b in rows)
  tile = lambda r, c: img[rows[r][0] : rows[r][0] + side, int(x[0] + c * cell) :][:, :side]
  return _grid(
    [[tile(r, c) for c in cols] for cols in ((0, 2, 4, 6), (7, 9, 12, 14)) for r in (0, 1)]
  )


def vae() -> np.ndarray:
  return _read("vae/dense-beta1-samples.png")


def gan() -> np.ndarray:
  return _read("gan/samples.png")[412:572, 532:692]  # wgan_gp, step 2000


def gradcam_pp() -> np.ndarray:
  img = _read("cam/overlays_correct.png")  # rows: images; columns: input, ..., gradcam++ stage3
  rows = [(54, 149), (170, 265), (631, 726), (978, 1073)]  # T-shirt, trouser, sandal, bag
  return _grid([[img[a:b, 14:109], img[a:b, 787:882]] for a, b in rows])


def face_swap() -> np.ndarray:
  img = _read(
    "faceswap/before_after_George_W_Bush_to_Colin_Powell.png"
  )  # rows: photo, paste, a, b, c
  tile = lambda r, c: img[r * 180 : (r + 1) * 180, c * 180 : (c + 1) * 180]
  return _grid([[tile(0, c) for c in (2, 4)], [tile(2, c) for c in (2, 4)]])


PANELS = (
  ("regularized AE\n(test images / reconstructions)", autoencoder),
  ("VAE samples\n(beta = 1)", vae),
  ("DCGAN samples\n(WGAN-GP, 2000 steps)", gan),
  ("Grad-CAM++\n(stage3)", gradcam_pp),
  ("face swap (a), held-out\nBush -> Powell", face_swap),
)


def main() -> None:
  images = [(title, fn()) for title, fn in PANELS]
  widths = [im.shape[1] / im.shape[0] for _, im in images]
  fig, axes = plt.subplots(1, len(images), figsize=(sum(widths) * 2.2 + 1, 2.9),
                           gridspec_kw={"width_ratios": widths})  # fmt: skip
  for ax, (title, im) in zip(axes, images, strict=True):
    ax.imshow(np.clip(im, 0, 1))
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
  fig.tight_layout(pad=0.3, w_pad=0.8)
  out = FIG / "strip.png"
  fig.savefig(out, dpi=110, bbox_inches="tight", pad_inches=0.05)
  plt.close(fig)
  print(out)


if __name__ == "__main__":
  main()
