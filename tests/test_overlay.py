"""overlay: the blend's end points against matplotlib's colormap, and its shape and range errors."""

import matplotlib
import numpy as np
import pytest

from genjax.explain.overlay import grid, overlay


def test_alpha_end_points_and_the_blend():
  rng = np.random.default_rng(0)
  grey, rgb, heat = rng.uniform(size=(5, 6)), rng.uniform(size=(5, 6, 3)), rng.uniform(size=(5, 6))
  jet = matplotlib.colormaps["jet"](heat)[..., :3]
  for g in (grey, grey[..., None]):
    out = overlay(g, heat, alpha=0.0)
    assert out.shape == (5, 6, 3)
    np.testing.assert_array_equal(out, np.stack([grey] * 3, -1))  # grey broadcast to RGB
  np.testing.assert_array_equal(overlay(rgb, heat, alpha=0.0), rgb)
  np.testing.assert_array_equal(overlay(rgb, heat, alpha=1.0), jet)
  np.testing.assert_allclose(overlay(rgb, heat, alpha=0.3), 0.7 * rgb + 0.3 * jet, rtol=1e-12)
  # cold (0) is blue and hot (1) is red in jet; another colormap is honoured
  ends = overlay(np.zeros((1, 2)), np.array([[0.0, 1.0]]), alpha=1.0)
  assert ends[0, 0].argmax() == 2 and ends[0, 1].argmax() == 0
  np.testing.assert_array_equal(
    overlay(rgb, heat, alpha=1.0, cmap="viridis"), matplotlib.colormaps["viridis"](heat)[..., :3]
  )
  out = overlay(rgb, heat)
  assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize(
  "image, heat, alpha, match",
  [
    (np.zeros((4, 4, 2)), np.zeros((4, 4)), 0.5, "image must be"),
    (np.zeros((4,)), np.zeros((4, 4)), 0.5, "image must be"),
    (np.zeros((4, 4, 3)), np.zeros((4, 5)), 0.5, "heat must be"),
    (np.zeros((4, 4, 3)), np.zeros((4, 4, 1)), 0.5, "heat must be"),
    (np.full((4, 4), 1.5), np.zeros((4, 4)), 0.5, "image must lie"),
    (np.zeros((4, 4)), np.full((4, 4), -0.1), 0.5, "heat must lie"),
    (np.zeros((4, 4)), np.full((4, 4), np.nan), 0.5, "heat must lie"),
    (np.zeros((4, 4)), np.zeros((4, 4)), 1.5, "alpha"),
  ],
)
def test_bad_inputs_raise(image, heat, alpha, match):
  with pytest.raises(ValueError, match=match):
    overlay(image, heat, alpha=alpha)


def test_grid_draws_one_overlay_per_image():
  rng = np.random.default_rng(1)
  images, heats = rng.uniform(size=(3, 5, 6)), rng.uniform(size=(3, 5, 6))
  fig = grid(images, heats, ["a", "b", "c"], alpha=0.4)
  assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
  for ax, img, h in zip(fig.axes, images, heats, strict=True):
    np.testing.assert_array_equal(ax.images[0].get_array(), overlay(img, h, alpha=0.4))
  with pytest.raises(ValueError, match="one heat"):
    grid(images, heats[:2])
