"""Faithfulness metrics on hand-built cases, and a smoke run of the classifier + explanation pipeline."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from genjax.explain import metrics


def test_average_drop_increase_and_win_on_known_values():
  y = jnp.array([0.8, 0.5, 0.4, 0.9])
  o = jnp.array([0.4, 0.6, 0.4, 0.0])
  np.testing.assert_allclose(metrics.average_drop(y, o), [50.0, 0.0, 0.0, 100.0], rtol=1e-6)
  np.testing.assert_allclose(metrics.increase_in_confidence(y, o), [0, 100, 0, 0])
  np.testing.assert_allclose(
    metrics.win(jnp.array([1.0, 2.0, 3.0]), jnp.array([2.0, 2.0, 1.0])), [100, 0, 0]
  )


def test_perturbation_curves_and_auc_on_a_linear_model():
  """predict = (mean pixel, 1 - mean pixel): deleting k of n unit pixels lowers class 0 to 1 - k/n."""
  x = jnp.ones((1, 2, 2, 1))
  sal = jnp.array([[[4.0, 3.0], [2.0, 1.0]]])
  predict = lambda img: jnp.stack([img.mean((1, 2, 3)), 1 - img.mean((1, 2, 3))], -1)
  c = jnp.array([0])
  curve = metrics.perturbation_curve(predict, x, sal, c, x, jnp.zeros_like(x), steps=4)
  np.testing.assert_allclose(curve, [[1.0, 0.75, 0.5, 0.25, 0.0]])
  np.testing.assert_allclose(metrics.auc(curve), [0.5])
  # Deletion order follows saliency: delete the pixel worth 3 first -> the biggest drop first.
  x2 = jnp.array([[[[3.0], [1.0]], [[0.0], [0.0]]]])
  first = metrics.perturbation_curve(predict, x2, x2[..., 0], c, x2, jnp.zeros_like(x2), steps=4)
  np.testing.assert_allclose(first[0, :2], [1.0, 0.25])
  ins = metrics.perturbation_curve(predict, x, sal, c, jnp.zeros_like(x), x, steps=2)
  np.testing.assert_allclose(ins, [[0.0, 0.5, 1.0]])


def test_spearman_matches_a_reference_with_ties():
  rng = np.random.default_rng(0)
  a = rng.integers(0, 4, (3, 5, 5)).astype(np.float32)  # many ties
  b = a + rng.normal(0, 1, a.shape).astype(np.float32)
  scipy_stats = pytest.importorskip("scipy.stats")
  want = [scipy_stats.spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(3)]
  np.testing.assert_allclose(metrics.spearman(jnp.asarray(a), jnp.asarray(b)), want, rtol=1e-5)
  np.testing.assert_allclose(metrics.spearman(jnp.asarray(a), jnp.asarray(a)), 1.0, rtol=1e-6)
  np.testing.assert_array_equal(metrics.spearman(jnp.zeros((1, 4)), jnp.arange(4.0)[None]), 0.0)


def test_blur_keeps_constant_images_and_masked_inputs_scale_pixels():
  x = jnp.full((1, 6, 6, 1), 0.3)
  np.testing.assert_allclose(metrics.blur(x), x, rtol=1e-6)
  m = jnp.zeros((1, 6, 6)).at[0, 0, 0].set(1.0)
  e = metrics.masked_inputs(x, m)
  assert float(e.sum()) == pytest.approx(0.3)


def test_classifier_training_and_explanation_smoke(tmp_path):
  from experiments.cam import explain, train
  from experiments.cam.configs import classifier as cfgs
  from genjax.explain import cam

  config = cfgs.get_config("smoke")
  assert cfgs.get_config("ae").num_steps is None and cfgs.get_config("ae").epochs == 10
  # the steps come from the epochs and the loaded split: 1/8 of 256 mock images in batches of 16
  config.num_steps, config.epochs = None, 0.125
  results = train.train_and_evaluate(config, tmp_path / "clf")
  assert config.num_steps is None  # the caller's config is left as it was
  assert results["step"] == results["config"]["num_steps"] == 2
  assert 0.0 <= results["test_accuracy"] <= 1.0
  assert np.isfinite(results["test_rec_bce"])
  # the test metrics over several batches (the last one partial) equal a direct computation
  from flax import nnx

  from genjax.data import tfds as data
  from genjax.train import sharding

  graphdef, state, _ = train.restore(str(tmp_path / "clf"))
  ds = data.get_dataset(config.dataset, config.test_split)
  got = train.evaluate(graphdef, state, ds, sharding.make_mesh(1), batch_size=10)
  model = nnx.merge(graphdef, state.params, state.rest)
  model.eval()
  logits, aux = model(jnp.asarray(ds.x))
  logits = np.asarray(logits)
  assert got["test_examples"] == len(ds) == results["test_examples"]
  assert got["test_accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == ds.y))
  log_p = (
    logits
    - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
    - logits.max(-1, keepdims=True)
  )
  want_ce = -np.mean(np.take_along_axis(log_p, ds.y[:, None].astype(int), -1))
  assert got["test_ce"] == pytest.approx(want_ce, rel=1e-4)
  x_hat = np.asarray(aux["x_hat"], np.float64)  # per-pixel mean BCE
  want_bce = np.mean(np.logaddexp(0, x_hat) - ds.x * x_hat)
  assert got["test_rec_bce"] == pytest.approx(want_bce, rel=1e-4)
  out = explain.run(str(tmp_path / "clf"), tmp_path / "explain", n=32, n_curve=16, steps=4,
                    batch=16, n_sanity=8, method_layers=1)  # fmt: skip
  rows = out["faithfulness"]["rows"]
  assert set(rows) == {"cam/stage3", *(f"{m}/stage{i}" for m in ("gradcam", "gradcam++")
                                        for i in (1, 2, 3))}  # fmt: skip
  for r in rows.values():
    assert 0 <= r["average_drop"] <= 100 and 0 <= r["deletion_auc"] <= 1
  assert set(out["methods"]["rows"]) == {f"{m}/stage3" for m in cam.METHODS}
  for r in out["methods"]["rows"].values():
    assert 0 <= r["road_morf"] <= 1 and 0 <= r["road_lerf"] <= 1  # finite (NaN fails)
  assert list(out["sanity"]) == ["head", "head+stage3", "head+stage3+stage2",
                                 "head+stage3+stage2+stage1"]  # fmt: skip
  pngs = list((tmp_path / "explain").glob("overlays_*.png"))
  assert pngs and all(p.stat().st_size > 0 for p in pngs)
  assert json.loads((tmp_path / "explain" / "explain.json").read_text())["layers"] == [
    "stage1",
    "stage2",
    "stage3",
  ]
