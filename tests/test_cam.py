"""CAM, Grad-CAM, Grad-CAM++: identities that must hold, exact derivatives against independent ones."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn
from genjax.explain import cam
from genjax.models import classifier

LAYERS = ("stage1", "stage2", "stage3")


def tiny(activation="relu", seed=0):
  """An 8x8 three-stage classifier with random (non-trivial) batch-norm statistics, in eval mode."""
  cfg = classifier.ClassifierConfig(
    image_shape=(8, 8, 1),
    num_classes=4,
    channels=(2, 3, 4),
    depth=1,
    activation=activation,
    decoder=False,
  )
  model = nn.build(lambda: classifier.Classifier(cfg, rngs=nnx.Rngs(seed)))
  rng = np.random.default_rng(seed)
  for bn in model.norms:
    bn.mean[...] = jnp.asarray(rng.normal(0, 0.1, bn.mean.shape), jnp.float32)
    bn.var[...] = jnp.asarray(rng.uniform(0.5, 1.5, bn.var.shape), jnp.float32)
    bn.bias[...] = jnp.asarray(rng.normal(0, 0.3, bn.bias.shape), jnp.float32)
  model.eval()
  return model


def run(model, x, **kw):
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  return cam.make_explainer(graphdef, **kw)(params, rest, x)


@pytest.fixture(scope="module")
def x():
  return jnp.asarray(np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)), jnp.float32)


def test_gradcam_equals_relu_cam_over_hw_for_a_gap_linear_head(x):
  out = run(tiny(), x, layers=("stage3",), methods=("cam", "gradcam"), score="logit")
  c, g = out["cam"]["stage3"]["raw"], out["gradcam"]["stage3"]["raw"]
  h, w = c.shape[-2:]
  np.testing.assert_allclose(jax.nn.relu(g), jax.nn.relu(c) / (h * w), rtol=1e-5, atol=1e-7)
  assert float(jnp.abs(c).max()) > 0  # a non-trivial map


def test_exact_gradcam_pp_equals_closed_form_for_relu_network(x):
  model = tiny("relu")
  kw = dict(layers=LAYERS, methods=("gradcam", "gradcam++"), score="exp")
  closed = run(model, x, derivatives="closed_form", **kw)
  exact = run(model, x, derivatives="exact", **kw)
  for layer in LAYERS:
    for m in ("gradcam", "gradcam++"):
      a, b = closed[m][layer]["raw"], exact[m][layer]["raw"]
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6 * float(jnp.abs(a).max()))


def test_exact_gradcam_pp_weights_equal_closed_form_under_softmax_where_well_conditioned(x):
  """Under softmax, alpha = d2 / (2 d2 + sum A d3) has d2 = p (u^2 - v), which crosses zero: where the
  denominator nearly vanishes, float32 rounding of two equal derivatives gives different alphas. So
  the channel weights are compared where every contributing position has a denominator far from 0,
  and most channels must qualify (the derivatives themselves are compared everywhere, below)."""
  model = tiny("relu")
  logits, feats, grads = cam.logit_gradients(model, x, LAYERS)
  checked = total = 0
  for layer in LAYERS:
    a = feats[layer]
    closed = cam.closed_form_derivatives(logits, grads[layer], "softmax")
    exact = cam.exact_derivatives(model, layer, a, "softmax")
    w_closed, w_exact = (cam.gradcam_pp_weights(a, *d) for d in (closed, exact))
    d1, d2, d3 = closed
    denom = jnp.abs(2 * d2 + a.sum(axis=(1, 2), keepdims=True)[None] * d3)
    contributing = d1 > 0
    worst = jnp.where(contributing, denom, jnp.inf).min(axis=(2, 3))  # [K, B, C]
    ok = np.asarray(worst > 1e-2 * float(denom.max()))
    np.testing.assert_allclose(
      np.asarray(w_closed)[ok],
      np.asarray(w_exact)[ok],
      rtol=1e-3,
      atol=1e-6 * float(jnp.abs(w_closed).max()),
    )
    checked, total = checked + ok.sum(), total + ok.size
  assert checked >= total // 2, (checked, total)


def _layer_fn(model, layer, score):
  return lambda v: cam.score_fn(score)(model.logits_from(layer, v))


def test_closed_form_derivatives_equal_exact_ones_for_relu_network(x):
  model = tiny("relu")
  logits, feats, grads = cam.logit_gradients(model, x, LAYERS)
  for layer in LAYERS:
    for score in ("exp", "softmax"):
      closed = cam.closed_form_derivatives(logits, grads[layer], score)
      exact = cam.diagonal_derivatives(_layer_fn(model, layer, score), feats[layer])
      for a, b in zip(closed, exact, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.abs(a).max()))


@pytest.mark.parametrize("activation", ["gelu", "softplus"])
def test_exact_derivatives_match_finite_differences_on_a_smooth_network(x, activation):
  model = tiny(activation)
  layer = "stage2"
  _, feats, _ = cam.logit_gradients(model, x, (layer,))
  a = feats[layer]
  f = _layer_fn(model, layer, "softmax")
  d1, d2, d3 = cam.diagonal_derivatives(f, a)
  # Central differences of t -> f(a + t e_i) for a few coordinates i (every example at once), in
  # float64 NumPy from float32 evaluations with a step large enough for float32 rounding. The layer
  # feeds 2x2 max pooling, a kink wherever two entries of a window tie, so an example is compared
  # only where its entry wins (or loses) its window by more than the widest step 2h; the coordinates
  # are those that win, by that margin, in the most examples.
  h = 0.05
  margin = _pool_margin(np.asarray(a)).reshape(a.shape[0], -1)  # [B, n], signed
  wins = (margin > 2 * h).sum(0)
  chosen = np.argsort(wins, kind="stable")[::-1][:4]
  assert wins[chosen].min() >= 1, wins[chosen]
  for i in chosen:
    e = jax.nn.one_hot(i, margin.shape[1]).reshape(a.shape[1:])
    fs = {k: np.asarray(f(a + k * h * e), np.float64) for k in (-2, -1, 0, 1, 2)}
    fd1 = (fs[1] - fs[-1]) / (2 * h)
    fd2 = (fs[1] - 2 * fs[0] + fs[-1]) / h**2
    fd3 = (fs[2] - 2 * fs[1] + 2 * fs[-1] - fs[-2]) / (2 * h**3)
    idx = np.unravel_index(i, a.shape[1:])
    far = np.abs(margin[:, i]) > 2 * h  # examples away from the kink
    for d, fd, tol in ((d1, fd1, 2e-3), (d2, fd2, 5e-3), (d3, fd3, 2e-2)):
      got = np.asarray(d[(slice(None), slice(None), *idx)]).T  # [B, K]
      np.testing.assert_allclose(got[far], fd[far], atol=tol * max(1.0, np.abs(fd).max()))
  # The smooth network is curved: the closed form (which assumes d2S = 0) no longer holds.
  logits, _, grads = cam.logit_gradients(model, x, (layer,))
  closed = cam.closed_form_derivatives(logits, grads[layer], "softmax")
  assert float(jnp.abs(closed[1] - d2).max()) > 1e-3 * float(jnp.abs(d2).max())


def _pool_margin(a: np.ndarray) -> np.ndarray:
  """a_i - max of the other entries of its 2x2 pooling window: > 0 where a_i wins, [B, h, w, C]."""
  b, hh, ww, c = a.shape
  win = (
    a.reshape(b, hh // 2, 2, ww // 2, 2, c)
    .transpose(0, 1, 3, 5, 2, 4)
    .reshape(b, hh // 2, ww // 2, c, 4)
  )
  others = np.stack([np.delete(win, j, axis=-1).max(-1) for j in range(4)], -1)  # [b, H, W, c, 4]
  m = (win - others).reshape(b, hh // 2, ww // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return m.reshape(b, hh, ww, c)


def test_forward_mode_diagonals_equal_jax_hessian_diagonals(x):
  """On a small layer the full jax.hessian (and jacfwd of it) is affordable: its diagonal must agree."""
  model = tiny("gelu")
  layer = "stage3"  # 2x2x4 = 16 coordinates
  _, feats, _ = cam.logit_gradients(model, x, (layer,))
  a = feats[layer]
  f = _layer_fn(model, layer, "exp")
  d1, d2, d3 = cam.diagonal_derivatives(f, a)
  shape = a.shape[1:]
  n = int(np.prod(shape))
  for b in range(a.shape[0]):
    one = lambda v, b=b: f(a.at[b].set(v.reshape(shape)))[b]  # [K]
    v0 = a[b].reshape(-1)
    hess = jax.hessian(one)(v0)  # [K, n, n]
    third = jax.jacfwd(jax.hessian(one))(v0)  # [K, n, n, n]
    diag2 = hess[:, jnp.arange(n), jnp.arange(n)]
    diag3 = third[:, jnp.arange(n), jnp.arange(n), jnp.arange(n)]
    np.testing.assert_allclose(d2[:, b].reshape(-1, n), diag2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d3[:, b].reshape(-1, n), diag3, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d1[:, b].reshape(-1, n), jax.jacrev(one)(v0), rtol=1e-5, atol=1e-7)


def test_batched_equals_one_at_a_time_and_maps_have_the_input_size(x):
  model = tiny()
  kw = dict(layers=LAYERS, methods=cam.METHODS, score="exp")
  batch = run(model, x, **kw)
  for i in range(x.shape[0]):
    one = run(model, x[i : i + 1], **kw)
    for m in cam.METHODS:
      for layer in batch[m]:
        np.testing.assert_allclose(one[m][layer]["map"][0], batch[m][layer]["map"][i], atol=1e-5)
  for m in cam.METHODS:
    for maps in batch[m].values():
      chex.assert_shape(maps["map"], (3, 4, 8, 8))
      chex.assert_shape(maps["raw_up"], (3, 4, 8, 8))
      assert float(maps["map"].min()) >= 0 and float(maps["map"].max()) <= 1 + 1e-6
  assert set(batch["cam"]) == {"stage3"}  # CAM only where GAP -> linear follows


def test_constant_gradients_give_finite_maps():
  model = tiny()
  model.head.kernel[...] = jnp.zeros_like(model.head.kernel[...])  # every gradient is 0
  x0 = jnp.zeros((2, 8, 8, 1))
  for score in cam.SCORES:
    out = run(model, x0, layers=LAYERS, methods=cam.METHODS, score=score)
    for m in cam.METHODS:
      for maps in out[m].values():
        assert np.isfinite(np.asarray(maps["map"])).all() and np.isfinite(maps["raw"]).all()
        np.testing.assert_array_equal(maps["map"], 0.0)


def test_bad_arguments_raise_value_errors(x):
  model = tiny()
  with pytest.raises(ValueError, match="unknown layers"):
    cam.explain(model, x, layers=("stage9",))
  with pytest.raises(ValueError, match="unknown score"):
    cam.explain(model, x, layers=LAYERS, score="prob")
  with pytest.raises(ValueError, match="unknown method"):
    cam.explain(model, x, layers=LAYERS, methods=("scorecam",))
  with pytest.raises(ValueError, match="expected images"):
    cam.explain(model, x[..., 0], layers=LAYERS)


def test_normalize_is_relu_over_max_and_zero_for_nonpositive_maps():
  m = jnp.array([[[[-1.0, 2.0], [4.0, 0.0]]], [[[-1.0, -2.0], [0.0, -3.0]]]])
  out = cam.normalize(m)
  np.testing.assert_allclose(out[0, 0], [[0, 0.5], [1, 0]])
  np.testing.assert_array_equal(out[1, 0], 0.0)
