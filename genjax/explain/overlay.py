"""Saliency heat maps blended over images, as arrays (and a figure grid of them)."""

import numpy as np


def _check_unit(name: str, a: np.ndarray) -> None:
  if not np.all((a >= 0.0) & (a <= 1.0)):  # NaN fails too
    lo, hi = a.min(), a.max()  # NaN shows as nan
    raise ValueError(f"{name} must lie in [0, 1] (no NaN); got values in [{lo}, {hi}]")


def overlay(image, heat, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
  """Blends a colour-mapped heat map over an image: (1 - alpha) * image_rgb + alpha * cmap(heat).

  The usual CAM figure (Selvaraju et al. 2017, fig. 1; Chattopadhay et al. 2018, fig. 1), computed
  as an array rather than by stacking two `imshow` layers, so it can be saved, compared or tested.

  Args:
    image: [H, W] or [H, W, 1] (grey, broadcast to RGB) or [H, W, 3], values in [0, 1].
    heat: [H, W], values in [0, 1] (e.g. a normalized CAM upsampled to the image).
    alpha: weight of the heat map, in [0, 1].
    cmap: a matplotlib colormap name.

  Returns:
    RGB image [H, W, 3], float64 in [0, 1].
  """
  import matplotlib

  image, heat = np.asarray(image, np.float64), np.asarray(heat, np.float64)
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f"image must be [H, W], [H, W, 1] or [H, W, 3]; got {image.shape}")
  if heat.shape != image.shape[:2]:
    raise ValueError(f"heat must be [H, W] = {image.shape[:2]} like the image; got {heat.shape}")
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f"alpha must lie in [0, 1]; got {alpha}")
  _check_unit("image", image)
  _check_unit("heat", heat)
  rgb = np.broadcast_to(image, (*image.shape[:2], 3))
  colours = matplotlib.colormaps[cmap](heat)[..., :3]  # drop the alpha channel
  return (1.0 - alpha) * rgb + alpha * colours


def grid(images, heats, titles=None, *, alpha: float = 0.5, cmap: str = "jet", size: float = 2.0):
  """A one-row matplotlib Figure of `overlay(images[i], heats[i])`, axes off, optional titles.

  Built on `matplotlib.figure.Figure` (no pyplot state); save it with `fig.savefig(path)`.
  """
  from matplotlib.figure import Figure

  n = len(images)
  if len(heats) != n or (titles is not None and len(titles) != n):
    got = f"{n} images, {len(heats)} heats" + ("" if titles is None else f", {len(titles)} titles")
    raise ValueError(f"want one heat (and title) per image; got {got}")
  fig = Figure(figsize=(size * n, size))
  for i, ax in enumerate(fig.subplots(1, n, squeeze=False)[0]):
    ax.imshow(overlay(images[i], heats[i], alpha=alpha, cmap=cmap))
    ax.set_axis_off()
    if titles is not None:
      ax.set_title(titles[i])
  return fig
