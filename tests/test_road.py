"""ROAD: noisy linear imputation against a dense solve and closed forms, and MoRF/LeRF curves."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.explain import metrics

# One compilation for every [2, 12, 13, 3] call below (noise is traced, not static).
impute = jax.jit(metrics.noisy_linear_impute)
SHAPE = (2, 12, 13)


def _weights(h, w):
  """Dense neighbour-weight matrix W [HW, HW]: 1/6 direct, 1/12 diagonal, in-image only."""
  m = np.zeros((h * w, h * w))
  for i in range(h):
    for j in range(w):
      for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
          a, b = i + di, j + dj
          if (di, dj) != (0, 0) and 0 <= a < h and 0 <= b < w:
            m[i * w + j, a * w + b] = 1 / 6 if di == 0 or dj == 0 else 1 / 12
  return m


def _dense_impute(x, removed):
  """(D_r - W_rr) x_r = W_rk x_k by numpy.linalg.solve, one channel x [H, W]."""
  wm = _weights(*x.shape)
  r, k = removed.ravel(), ~removed.ravel()
  a = np.diag(wm.sum(1)[r]) - wm[np.ix_(r, r)]
  out = x.astype(np.float64).ravel()
  out[r] = np.linalg.solve(a, wm[np.ix_(r, k)] @ out[k])
  return out.reshape(x.shape)


def _residual(x, removed):
  """D_i x_i - sum_j w_ij x_j at removed pixels, by shifted numpy slices, x [H, W]."""
  h, w = x.shape
  xp, onep = np.pad(x, 1), np.pad(np.ones_like(x), 1)
  nb, d = np.zeros_like(x), np.zeros_like(x)
  for di in (-1, 0, 1):
    for dj in (-1, 0, 1):
      if (di, dj) != (0, 0):
        wt = 1 / 6 if di == 0 or dj == 0 else 1 / 12
        nb += wt * xp[1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
        d += wt * onep[1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
  return (d * x - nb)[removed]


def test_cg_imputation_equals_a_dense_solve_and_keeps_kept_pixels(key):
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(*SHAPE, 3)).astype(np.float32)
  removed = rng.uniform(size=SHAPE) < 0.5
  removed[0, 2:7, 2:8] = True  # a removed region whose inner pixels have only removed neighbours
  got = np.asarray(impute(jnp.asarray(x), jnp.asarray(removed), key=key, noise=0.0))
  for b in range(2):
    for ch in range(3):
      want = _dense_impute(x[b, ..., ch], removed[b])
      np.testing.assert_allclose(got[b, ..., ch], want, atol=1e-5)
  np.testing.assert_array_equal(got[~removed], x[~removed])


def test_constant_and_linear_images_are_reproduced(key):
  rng = np.random.default_rng(1)
  removed = rng.uniform(size=SHAPE) < 0.6
  x = jnp.full((*SHAPE, 3), 0.3, jnp.float32)
  np.testing.assert_allclose(impute(x, jnp.asarray(removed), key=key, noise=0.0), x, atol=1e-6)
  # A linear ramp satisfies x_i = sum_j w_ij x_j / D_i wherever all 8 neighbours are in the image
  # (the weights are symmetric), so interior removed pixels, isolated or in a block, come back.
  i, j = np.mgrid[:12, :13]
  ramps = [0.05 * i - 0.03 * j + 0.4, 0.02 * j + 0.1, 0.7 - 0.04 * i]
  ramp = jnp.asarray(np.broadcast_to(np.stack(ramps, -1), (*SHAPE, 3)), jnp.float32)
  removed = np.zeros(SHAPE, bool)
  removed[0, [2, 2, 9, 6], [2, 9, 3, 10]] = True  # isolated pixels
  removed[1, 4:8, 4:7] = True  # a block
  got = impute(ramp, jnp.asarray(removed), key=key, noise=0.0)
  np.testing.assert_allclose(got, ramp, atol=1e-6)
  # At a corner only 3 neighbours count, normalized by their weights 1/6 + 1/6 + 1/12: on i + j
  # the corner becomes (1/6 + 1/6 + 2/12) / (5/12) = 1.2, not the ramp's 0.
  corner = np.zeros(SHAPE, bool)
  corner[:, 0, 0] = True
  ij = jnp.asarray(np.broadcast_to((i + j)[..., None], (*SHAPE, 3)), jnp.float32)
  got = impute(ij, jnp.asarray(corner), key=key, noise=0.0)
  np.testing.assert_allclose(got[:, 0, 0], 1.2, atol=1e-5)  # float32 on values up to 23


def test_noise_is_on_imputed_pixels_only_and_follows_the_key(key):
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.uniform(size=(*SHAPE, 3)), jnp.float32)
  removed = jnp.asarray(rng.uniform(size=SHAPE) < 0.5)
  clean = impute(x, removed, key=key, noise=0.0)
  a = impute(x, removed, key=key, noise=0.1)
  np.testing.assert_array_equal(a, impute(x, removed, key=key, noise=0.1))
  assert not np.allclose(a, impute(x, removed, key=jax.random.fold_in(key, 1), noise=0.1))
  eps = np.asarray(a - clean)
  np.testing.assert_array_equal(eps[~np.asarray(removed)], 0.0)
  assert np.std(eps[np.asarray(removed)]) == pytest.approx(0.1, rel=0.1)


def _region_model(img):
  """Class 0: mean of the top-left 6 x 6 block; class 1: mean of the bottom-right one."""
  return jnp.stack([img[:, :6, :6].mean((1, 2, 3)), img[:, 6:, 7:].mean((1, 2, 3))], -1)


# One compilation per order, shared by the tests below (noise and fractions are traced).
ROAD = {
  o: jax.jit(functools.partial(metrics.road_curve, _region_model, order=o))
  for o in ("morf", "lerf")
}
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_road_morf_falls_and_lerf_stays_on_a_region_model(key):
  """x = 1 on the 6 x 6 region the class reads (36 of 156 pixels), 0 elsewhere, saliency = x + jitter."""
  x = np.zeros((*SHAPE, 3), np.float32)
  x[0, :6, :6], x[1, 6:, 7:] = 1.0, 1.0
  sal = x[..., 0] + 0.01 * np.random.default_rng(3).uniform(size=SHAPE)
  args = jnp.asarray(x), jnp.asarray(sal), jnp.array([0, 1])
  morf = np.asarray(ROAD["morf"](*args, key=key, fractions=FRACTIONS, noise=0.0))
  lerf = np.asarray(ROAD["lerf"](*args, key=key, fractions=FRACTIONS, noise=0.0))
  assert morf.shape == lerf.shape == (2, 9)
  # LeRF removes only zero pixels up to 70% (109 of the 120): the region is untouched. Past it, the
  # kept pixels are all in the region (all 1), so everything removed imputes to 1.
  np.testing.assert_array_equal(lerf[:, :7], 1.0)
  np.testing.assert_allclose(lerf[:, 7:], 1.0, rtol=1e-6)
  # MoRF: at 10% and 20% part of the region is gone (imputed between 0 and 1); from 30% all of it,
  # and every kept pixel is 0, so the region imputes to 0.
  assert np.all((0.0 < morf[:, :2]) & (morf[:, :2] < 1.0)) and np.all(morf[:, 0] > morf[:, 1])
  np.testing.assert_allclose(morf[:, 2:], 0.0, atol=1e-6)
  assert np.all(morf < lerf)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_road_curve_removes_the_stably_ordered_pixels_with_folded_keys(key, order):
  """Each column == the model on noisy_linear_impute of a numpy-built mask, key fold_in(key, i)."""
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.uniform(size=(*SHAPE, 3)), jnp.float32)
  sal = rng.integers(0, 4, SHAPE).astype(np.float32)  # many ties
  c = jnp.array([1, 0])
  got = ROAD[order](x, jnp.asarray(sal), c, key=key, fractions=FRACTIONS, noise=0.05)
  flat = sal.reshape(2, -1)
  pos = np.argsort(-flat if order == "morf" else flat, axis=-1, kind="stable")
  for i, p in enumerate(FRACTIONS):
    removed = np.zeros((2, 12 * 13), bool)
    np.put_along_axis(removed, pos[:, : round(p * 12 * 13)], True, axis=-1)
    img = impute(x, jnp.asarray(removed.reshape(SHAPE)), key=jax.random.fold_in(key, i), noise=0.05)
    want = np.asarray(_region_model(img))[np.arange(2), np.asarray(c)]
    np.testing.assert_allclose(got[:, i], want, rtol=1e-5, atol=1e-6)
  again = ROAD[order](x, jnp.asarray(sal), c, key=key, fractions=FRACTIONS, noise=0.05)
  np.testing.assert_array_equal(got, again)


def test_road_at_64x64_converges(key):
  """A 90% blob (the slowest case: far from any kept pixel) satisfies the system at every pixel."""
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.uniform(size=(2, 64, 64, 3)), jnp.float32)
  i, j = np.mgrid[:64, :64]
  sal = np.stack([-((i - 30.0) ** 2 + (j - 34.0) ** 2), rng.uniform(size=(64, 64))])
  pos = np.argsort(-sal.reshape(2, -1), axis=-1, kind="stable")
  removed = np.zeros((2, 64 * 64), bool)
  np.put_along_axis(removed, pos[:, : round(0.9 * 64 * 64)], True, axis=-1)
  removed = removed.reshape(2, 64, 64)
  got = np.asarray(impute(x, jnp.asarray(removed), key=key, noise=0.0), np.float64)
  for b in range(2):
    for ch in range(3):
      assert np.abs(_residual(got[b, ..., ch], removed[b])).max() < 1e-5
  predict = lambda img: jax.nn.softmax(img.mean((1, 2)) * 10.0)
  curve = jax.jit(functools.partial(metrics.road_curve, predict))(
    x, jnp.asarray(sal, jnp.float32), jnp.array([0, 2]), key=key
  )
  assert curve.shape == (2, 9) and np.all(np.isfinite(curve))
  assert np.all((curve >= 0) & (curve <= 1))


def test_shape_and_order_errors(key):
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(ValueError, match="removed"):
    metrics.noisy_linear_impute(x, jnp.zeros((1, 4, 5), bool), key=key)
  with pytest.raises(ValueError, match="saliency"):
    metrics.road_curve(_region_model, x, jnp.zeros((1, 4)), jnp.array([0]), key=key)
  with pytest.raises(ValueError, match="order"):
    metrics.road_curve(_region_model, x, jnp.zeros((1, 4, 4)), jnp.array([0]), key=key, order="x")


def test_a_black_background_removed_imputes_to_black_not_nan(key):
  """Removed pixels whose kept neighbours are all 0 (the right-hand side is exactly 0): the solve
  must stop at the zero solution instead of dividing 0 by 0."""
  x = jnp.zeros((2, 12, 12, 1)).at[:, 4:8, 4:8].set(0.7)
  removed = jnp.ones((2, 12, 12), bool).at[:, 3:9, 3:9].set(False)  # the background only
  out = metrics.noisy_linear_impute(x, removed, key=key, noise=0.0)
  assert np.isfinite(np.asarray(out)).all()
  np.testing.assert_allclose(out, x, atol=1e-6)
  predict = lambda img: jnp.stack([img.mean((1, 2, 3)), 1 - img.mean((1, 2, 3))], -1)
  sal = jnp.broadcast_to(x[..., 0], (2, 12, 12))
  curve = metrics.road_curve(predict, x, sal, jnp.zeros(2, jnp.int32), key=key, order="lerf")
  assert np.isfinite(np.asarray(curve)).all()
