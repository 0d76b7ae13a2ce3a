"""Every loss and penalty against an independent NumPy computation or its closed form."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import losses


def _np_params(rng):
  return {
    "dense": {"kernel": rng.standard_normal((5, 3)), "bias": rng.standard_normal(3)},
    "conv": {"kernel": rng.standard_normal((3, 3, 2, 4)), "bias": rng.standard_normal(4)},
  }


def test_mse_and_bce_against_numpy():
  rng = np.random.default_rng(0)
  logits = rng.standard_normal((4, 6, 6, 1)).astype(np.float32) * 3
  x = rng.uniform(size=(4, 6, 6, 1)).astype(np.float32)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  want_bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(4, -1)
  np.testing.assert_allclose(losses.bce_with_logits(logits, x), want_bce.mean(1), rtol=1e-5)
  np.testing.assert_allclose(
    losses.bce_with_logits(logits, x, reduction="sum"), want_bce.sum(1), rtol=1e-5
  )
  want_mse = ((p - x) ** 2).reshape(4, -1)
  np.testing.assert_allclose(losses.reconstruction("mse", logits, x), want_mse.mean(1), rtol=1e-5)
  np.testing.assert_allclose(losses.mse(p, x, reduction="sum"), want_mse.sum(1), rtol=1e-5)


def test_bce_is_finite_for_extreme_logits():
  logits = jnp.array([[-1e4, 1e4, 0.0]])
  x = jnp.array([[0.0, 1.0, 0.5]])
  out = losses.bce_with_logits(logits, x, reduction="sum")
  np.testing.assert_allclose(out, [np.log(2)], rtol=1e-6)
  assert jnp.isfinite(jax.grad(lambda v: losses.bce_with_logits(v, x).sum())(logits)).all()


@pytest.mark.parametrize("exclude_bias", [True, False])
def test_weight_penalties_against_numpy(exclude_bias):
  p = _np_params(np.random.default_rng(1))
  ws = [p["dense"]["kernel"], p["conv"]["kernel"]]
  if not exclude_bias:
    ws += [p["dense"]["bias"], p["conv"]["bias"]]
  params = jax.tree.map(jnp.asarray, p)
  kw = dict(exclude_bias=exclude_bias)
  np.testing.assert_allclose(
    losses.weight_penalty(params, kind="l1", **kw), sum(np.abs(w).sum() for w in ws), rtol=1e-5
  )
  np.testing.assert_allclose(
    losses.weight_penalty(params, kind="l2", **kw), 0.5 * sum((w**2).sum() for w in ws), rtol=1e-5
  )
  fro = sum(
    np.linalg.norm(w.reshape(-1, w.shape[-1]) if w.ndim > 1 else w[:, None], "fro") ** 2 for w in ws
  )
  np.testing.assert_allclose(losses.weight_penalty(params, kind="frobenius", **kw), fro, rtol=1e-5)
  assert losses.weight_penalty(params, kind="none") == 0.0


def test_penalty_gradients_closed_form():
  params = jax.tree.map(jnp.asarray, _np_params(np.random.default_rng(2)))
  lam = 0.3
  g_fro = jax.grad(lambda q: lam * losses.weight_penalty(q, kind="frobenius"))(params)
  g_l2 = jax.grad(lambda q: lam * losses.weight_penalty(q, kind="l2"))(params)
  g_l1 = jax.grad(lambda q: lam * losses.weight_penalty(q, kind="l1"))(params)
  for name in ("dense", "conv"):
    w = params[name]["kernel"]
    np.testing.assert_allclose(g_fro[name]["kernel"], 2 * lam * w, rtol=1e-5)  # d/dW lam||W||^2
    np.testing.assert_allclose(g_l2[name]["kernel"], lam * w, rtol=1e-5)
    np.testing.assert_allclose(g_l1[name]["kernel"], lam * np.sign(w), rtol=1e-6)
    np.testing.assert_array_equal(g_fro[name]["bias"], 0.0)  # biases excluded by default


def test_sparsity_against_numpy():
  z = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float32)
  np.testing.assert_allclose(losses.sparsity(jnp.asarray(z)), np.abs(z).sum(1), rtol=1e-6)


def test_contractive_against_explicit_jacobian():
  rng = np.random.default_rng(4)
  w = rng.standard_normal((12, 3)).astype(np.float32)
  b = rng.standard_normal(3).astype(np.float32)
  x = rng.standard_normal((4, 3, 4, 1)).astype(np.float32)
  encode = lambda v: jax.nn.sigmoid(v.reshape(v.shape[0], -1) @ w + b)
  # For z = sigmoid(W^T x + b): dz_j/dx_d = s_j (1 - s_j) W_dj  (Rifai et al. 2011, eq. 9).
  s = 1 / (1 + np.exp(-(x.reshape(4, -1) @ w + b)))
  want = ((s * (1 - s)) ** 2 * (w**2).sum(0)).sum(1)
  got = losses.contractive(encode, jnp.asarray(x))
  chex.assert_shape(got, (4,))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_contractive_gradient_matches_finite_differences():
  rng = np.random.default_rng(5)
  w0, x0 = rng.standard_normal((6, 2)), rng.standard_normal((3, 6, 1, 1))
  with jax.enable_x64():
    x = jnp.asarray(x0)
    f = jax.jit(
      lambda w: losses.contractive(lambda v: jnp.tanh(v.reshape(v.shape[0], -1) @ w), x).sum()
    )
    w = jnp.asarray(w0)
    g = jax.grad(f)(w)
    d = jnp.asarray(rng.standard_normal(w.shape))
    eps = 1e-6
    fd = (f(w + eps * d) - f(w - eps * d)) / (2 * eps)
    np.testing.assert_allclose(jnp.vdot(g, d), fd, rtol=1e-6)


def test_corruption(key):
  x = jnp.full((64, 28, 28, 1), 0.5)
  masked = losses.corrupt(key, x, kind="masking", level=0.25)
  assert abs(float((masked == 0).mean()) - 0.25) < 0.01
  noisy = losses.corrupt(key, x, kind="gaussian", level=0.1)
  assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1
  np.testing.assert_allclose(float(jnp.std(noisy - x)), 0.1, rtol=0.05)


@pytest.mark.parametrize(
  "fn, args",
  [
    (losses.mse, (jnp.zeros((2, 3)), jnp.zeros((2, 4)))),
    (losses.bce_with_logits, (jnp.zeros((2, 3)), jnp.zeros((3, 3)))),
    (losses.bce_with_logits, (jnp.zeros((3,)), jnp.zeros((3,)))),
    (losses.sparsity, (jnp.zeros((3,)),)),
  ],
)
def test_bad_shapes_raise_clear_errors(fn, args):
  with pytest.raises(ValueError, match="shape"):
    fn(*args)


def test_unknown_options_raise():
  with pytest.raises(ValueError, match="unknown kind"):
    losses.weight_penalty({}, kind="l3")
  with pytest.raises(ValueError, match="unknown kind"):
    losses.reconstruction("huber", jnp.zeros((1, 2)), jnp.zeros((1, 2)))
