"""The landmark regressor: the mirror relabelling against drawn faces, its errors against NumPy, a
smoke run that trains on no held-out face, and its term in the face swap (c)'s objective."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.landmarks import train as lm_train
from experiments.landmarks.configs import landmarks as lm_config
from experiments.simswap import train as sim_train
from experiments.simswap.configs import simswap as sim_config
from genjax import nn
from genjax.data import faces
from genjax.models import landmarks


def test_flip_relabels_the_68_points_of_a_mirrored_face():
  # The generated faces are left-right symmetric about their centre: mirroring a face drawn at
  # horizontal offset dx gives the face drawn at -dx, point for point in dlib's order.
  size, p = 40, np.random.default_rng(0).uniform(size=6)
  pts = lambda dx: faces._mock_landmarks(p, 0.01, dx) * size - 0.5
  x = jnp.zeros((1, size, size, 3))
  _, flipped = landmarks.flip(x, jnp.asarray(pts(0.03))[None])
  np.testing.assert_allclose(flipped[0], pts(-0.03), atol=1e-5)
  assert sorted(landmarks.FLIP_68) == list(range(68))
  assert all(landmarks.FLIP_68[j] == i for i, j in enumerate(landmarks.FLIP_68))  # an involution
  img = jax.random.uniform(jax.random.key(0), (2, 5, 7, 3))
  np.testing.assert_array_equal(
    landmarks.flip(img, jnp.zeros((2, 68, 2)))[0][:, :, 0], img[:, :, 6]
  )


def test_point_and_normalized_errors_match_numpy(key):
  a = np.asarray(jax.random.uniform(key, (3, 68, 2)) * 50, np.float64)
  b = a + np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (3, 68, 2)), np.float64)
  dist = np.array([[np.hypot(*(a[n, i] - b[n, i])) for i in range(68)] for n in range(3)])
  iod = np.hypot(*(b[:, 36] - b[:, 45]).T)
  np.testing.assert_allclose(landmarks.point_error(jnp.asarray(a), jnp.asarray(b)),
                             dist.mean(1), rtol=1e-5)  # fmt: skip
  np.testing.assert_allclose(landmarks.normalized_error(jnp.asarray(a), jnp.asarray(b)),
                             dist.mean(1) / iod, rtol=1e-5)  # fmt: skip
  # smoothed at 0: a finite gradient where the points coincide
  g = jax.grad(lambda p: landmarks.point_error(p, jnp.asarray(b)).sum())(jnp.asarray(b))
  assert np.all(np.isfinite(g))


def test_smoke_run_trains_on_no_held_out_face_and_reports_both_errors(tmp_path):
  config = lm_config.get_config("smoke")
  train, test = lm_train.load_data(config)
  assert len(test) > 0 and not any(faces.is_held_out(f) for f in train.files)
  assert all(faces.is_held_out(f) for f in test.files)
  results = lm_train.train_and_evaluate(config, str(tmp_path))
  assert results["step"] == 4 and results["num_train"] == len(train)
  assert np.isfinite(results["test_error"]) and results["test_error_mean_shape"] > 0
  metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert all(np.isfinite(m["loss"]) for m in metrics if "loss" in m)


def test_landmark_loss_is_the_squared_point_error_in_units_of_the_side(key):
  net = nn.build(lambda: landmarks.LandmarkNet(landmarks.LandmarkConfig((16, 16, 3), (4,)),
                                               rngs=nnx.Rngs(0)))  # fmt: skip
  x = jax.random.uniform(key, (2, 16, 16, 3))
  pts = jax.random.uniform(jax.random.fold_in(key, 1), (2, 68, 2)) * 16
  aug = lm_train.AugmentConfig(flip=False, brightness=0.0, contrast=0.0, saturation=0.0)
  loss, m = lm_train.loss_fn(net, (x, pts), key, aug=aug)
  want = ((np.asarray(net(x)) - np.asarray(pts)) ** 2).sum(-1).mean() / 16**2
  np.testing.assert_allclose(loss, want, rtol=1e-5)


SHAPE = (32, 32, 3)


def _landmark_net(key):
  """A frozen stand-in with a non-zero head, so that its points move with the image."""
  net = nn.build(lambda: landmarks.LandmarkNet(landmarks.LandmarkConfig(SHAPE, (4,)),
                                               rngs=nnx.Rngs(3)))  # fmt: skip
  net.head.kernel[...] = 0.01 * jax.random.normal(key, net.head.kernel.shape)
  return net


def test_the_landmark_term_of_the_generator_against_an_independent_computation(key):
  cfg = sim_train.simswap.SimSwapConfig(image_shape=SHAPE, channels=(4, 6, 8), num_blocks=2,
                                        id_dim=5, disc_channels=(4, 4, 4), num_scales=2)  # fmt: skip
  from tests.test_simswap import _setup

  defs, state, g_tx, d_tx, x, v, same = _setup(key, cfg)
  net = _landmark_net(jax.random.fold_in(key, 5))
  fn = lambda im: net(im)
  terms = lambda w: jax.jit(lambda s: sim_train.g_terms(
    defs, s, s.g_params, x, v, same, key, sim_train.LossConfig(landmarks=w), landmark_fn=fn))(state)  # fmt: skip
  loss0, _ = terms(0.0)
  loss2, t = terms(2.0)
  fake = np.asarray(jax.nn.sigmoid(sim_train.generator(defs, state)(x, v)), np.float64)
  p_fake, p_t = np.asarray(net(jnp.asarray(fake, jnp.float32))), np.asarray(net(x))
  dist = np.sqrt(((p_fake - p_t) ** 2).sum(-1)).mean(-1)  # [B] pixels
  swaps = ~np.asarray(same)
  assert swaps.sum() == 2
  np.testing.assert_allclose(t["landmark_px"], dist[swaps].mean(), rtol=1e-4)
  np.testing.assert_allclose(loss2 - loss0, 2.0 * t["landmark_px"], rtol=1e-4)
  # Its derivative in the swap's pixels against a central difference along a unit direction (the
  # nets are piecewise linear: a small step), and a gradient that reaches the generator.
  h = lambda f: (landmarks.point_error(net(f), net(x)) * swaps).sum() / swaps.sum()
  f0 = jnp.asarray(fake, jnp.float32)
  u = jax.random.normal(jax.random.fold_in(key, 9), f0.shape)
  u, eps = u / jnp.linalg.norm(u), 1e-3
  np.testing.assert_allclose(jnp.vdot(jax.grad(h)(f0), u),
                             (h(f0 + eps * u) - h(f0 - eps * u)) / (2 * eps), rtol=2e-2)  # fmt: skip
  g = lambda p: sim_train.g_terms(defs, state, p, x, v, same, key,
                                  sim_train.LossConfig(landmarks=1.0), landmark_fn=fn)[1]["landmark_px"]  # fmt: skip
  leaves = jax.tree.leaves(jax.grad(g)(state.g_params))
  assert all(np.all(np.isfinite(a)) for a in leaves) and any(np.any(a != 0) for a in leaves)
  with pytest.raises(ValueError, match="landmark net"):
    sim_train.make_train_step(defs, g_tx, d_tx, sim_train.LossConfig(landmarks=1.0),
                              sim_train.augment.AugmentConfig())  # fmt: skip


def test_a_landmark_run_starts_from_another_runs_checkpoint_with_the_term_switched_on(tmp_path):
  base = sim_config.get_config("smoke")
  sim_train.train_and_evaluate(base, str(tmp_path / "base"))
  config = sim_config.get_config("smoke,landmarks")
  config.landmark_workdir, config.num_steps = "", 4  # generated faces: a random landmark net
  config.init_from = str(tmp_path / "base")
  results = sim_train.train_and_evaluate(config, str(tmp_path / "lm"))
  assert results["step"] == 4
  metrics = [
    json.loads(line) for line in (tmp_path / "lm" / "metrics.jsonl").read_text().splitlines()
  ]
  assert [m["step"] for m in metrics if "landmark_px" in m] == [3, 4]  # steps 3, 4 only
  # The model may not change between the run and the run it starts from.
  other = sim_config.get_config("smoke,landmarks")
  other.landmark_workdir, other.init_from = "", str(tmp_path / "base")
  other.model.num_blocks = 2
  with pytest.raises(ValueError, match="model.num_blocks: 1 \\(there\\) -> 2 \\(now\\)"):
    sim_train.train_and_evaluate(other, str(tmp_path / "other"))


def test_moved_points_follow_their_pixels(key):
  # one bright pixel per image at its landmark 0: after the random similarity the brightest pixel
  # lies within a pixel of where the point was moved
  size = 40
  x = jnp.zeros((6, size, size, 3))
  pts = jnp.asarray(np.random.default_rng(1).uniform(12, 28, (6, 68, 2)), jnp.float32).round()
  x = x.at[jnp.arange(6), pts[:, 0, 1].astype(int), pts[:, 0, 0].astype(int)].set(1.0)
  y, moved = lm_train.moved(key, x, pts, rotate=15.0, scale=0.1, shift=0.1)
  peak = np.stack(np.unravel_index(np.asarray(y[..., 0]).reshape(6, -1).argmax(1), (size, size)), 1)
  np.testing.assert_allclose(peak[:, ::-1], np.asarray(moved[:, 0]), atol=1.0)
  same = lm_train.moved(key, x, pts, rotate=0.0, scale=0.0, shift=0.0)
  np.testing.assert_allclose(same[0], x, atol=1e-6)
  np.testing.assert_allclose(same[1], pts, atol=1e-4)


def test_soft_argmax_is_the_expected_cell_centre_under_the_softmax(key):
  logits = jax.random.normal(key, (2, 5, 4, 3)) * 2.0
  size = jnp.asarray([16.0, 20.0])  # W, H: cells of 4 x 4 pixels
  got = np.asarray(landmarks.soft_argmax(logits, size))
  lg = np.asarray(logits, np.float64)
  for b in range(2):
    for p in range(3):
      w = np.exp(lg[b, :, :, p] - lg[b, :, :, p].max())
      w /= w.sum()
      ex = sum(w[i, j] * ((j + 0.5) * 4 - 0.5) for i in range(5) for j in range(4))
      ey = sum(w[i, j] * ((i + 0.5) * 4 - 0.5) for i in range(5) for j in range(4))
      np.testing.assert_allclose(got[b, p], [ex, ey], rtol=1e-5)
  # a sharp peak in cell (row 3, column 1) lands on that cell's centre pixel (5.5, 13.5)
  peak = jnp.zeros((1, 5, 4, 1)).at[0, 3, 1, 0].set(50.0)
  np.testing.assert_allclose(landmarks.soft_argmax(peak, size)[0, 0], [5.5, 13.5], atol=1e-4)


def test_the_heatmap_net_localizes_at_the_quarter_resolution_and_is_differentiable(key):
  cfg = landmarks.LandmarkConfig((32, 32, 3), (4, 6, 8), head="heatmap")
  net = nn.build(lambda: landmarks.LandmarkNet(cfg, rngs=nnx.Rngs(0)))
  x = jax.random.uniform(key, (2, 32, 32, 3))
  # zero logits at init: every point at the centre of the crop (pixel centres at integers)
  np.testing.assert_allclose(net(x), np.full((2, 68, 2), 15.5), atol=1e-4)
  net.head.kernel[...] = jax.random.normal(jax.random.fold_in(key, 1), net.head.kernel.shape)
  t = net(x)
  assert t.shape == (2, 68, 2) and np.all((t >= -0.5) & (t <= 31.5))
  # logit maps from stage 1's width (6 channels), at its resolution: 8 x 8 cells of 4 pixels
  assert net.up[-1].kernel.shape[-1] == 6 and net.head.kernel.shape == (1, 1, 6, 68)
  # The derivative in the pixels of a random projection of the points, against a central difference
  # in float64 (in float32 the relu kinks and rounding of a tiny net blur a finite difference).
  with jax.enable_x64(True):
    state = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), nnx.state(net))
    net64 = nnx.merge(nnx.graphdef(net), state)
    x64 = jnp.asarray(x, jnp.float64)
    r = jax.random.normal(jax.random.fold_in(key, 3), t.shape, jnp.float64)
    f = lambda im: jnp.vdot(net64(im), r)
    u = jax.random.normal(jax.random.fold_in(key, 2), x.shape, jnp.float64)
    u, eps = u / jnp.linalg.norm(u), 1e-5
    assert net64(x64).dtype == jnp.float64
    np.testing.assert_allclose(jnp.vdot(jax.grad(f)(x64), u),
                               (f(x64 + eps * u) - f(x64 - eps * u)) / (2 * eps), rtol=1e-5)  # fmt: skip
  with pytest.raises(ValueError, match="head must be one of"):
    landmarks.LandmarkNet(landmarks.LandmarkConfig(head="mlp"), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="at least 3 conv stages"):
    landmarks.LandmarkNet(landmarks.LandmarkConfig((32, 32, 3), (4, 6), head="heatmap"),
                          rngs=nnx.Rngs(0))  # fmt: skip
