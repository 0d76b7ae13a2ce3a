"""GAN losses and critic penalties against NumPy, closed forms and explicit per-example gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import losses

LOGITS = np.array([-30.0, -5.0, -0.5, 0.0, 0.7, 4.0, 30.0], np.float32)


def _np_log_sigmoid(v):
  v = v.astype(np.float64)
  return -np.logaddexp(0.0, -v)  # log(1 / (1 + e^-v)), exact in float64 for these logits


def test_d_losses_against_numpy():
  real, fake = LOGITS, LOGITS[::-1].copy()
  want = {
    "minimax": -_np_log_sigmoid(real) - _np_log_sigmoid(-fake),  # -log D(x) - log(1 - D(G(z)))
    "hinge": np.maximum(0, 1 - real) + np.maximum(0, 1 + fake),
    "wasserstein": fake - real,
  }
  for kind, w in want.items():
    got = losses.gan_d_loss(jnp.asarray(real), jnp.asarray(fake), kind=kind)
    assert got.shape == (len(real),)
    np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-6, err_msg=kind)


def test_d_minimax_matches_probability_form_where_that_is_finite():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(2, 16)).astype(np.float32) * 3
  d_real, d_fake = 1 / (1 + np.exp(-real.astype(np.float64))), 1 / (1 + np.exp(-fake))
  want = -np.log(d_real) - np.log(1 - d_fake)
  np.testing.assert_allclose(losses.gan_d_loss(real, fake, kind="minimax"), want, rtol=1e-5)


def test_g_losses_against_numpy():
  want = {
    "saturating": _np_log_sigmoid(-LOGITS),  # log(1 - D(G(z)))
    "non_saturating": -_np_log_sigmoid(LOGITS),  # -log D(G(z))
    "hinge": -LOGITS,
    "wasserstein": -LOGITS,
  }
  for kind, w in want.items():
    got = losses.gan_g_loss(jnp.asarray(LOGITS), kind=kind)
    np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-6, err_msg=kind)
    assert np.all(np.isfinite(got))


def test_generator_gradients_where_d_rejects_the_fakes():
  # D(G(z)) = sigmoid(l) near 0: theory says the saturating loss log(1 - D) has dL/dl = -D -> 0
  # (vanishing), the non-saturating -log D has dL/dl = -(1 - D) -> -1 (full strength).
  logits = jnp.array([-20.0, -10.0, -6.0])
  d = np.asarray(jax.nn.sigmoid(logits), np.float64)
  g_sat = jax.grad(lambda v: losses.gan_g_loss(v, kind="saturating").sum())(logits)
  g_ns = jax.grad(lambda v: losses.gan_g_loss(v, kind="non_saturating").sum())(logits)
  np.testing.assert_allclose(g_sat, -d, rtol=1e-5)
  np.testing.assert_allclose(g_ns, -(1 - d), rtol=1e-6)
  assert np.all(np.abs(g_sat) < 3e-3) and np.all(np.abs(g_ns) > 0.99)
  # In terms of D itself: d/dD log(1 - D) = -1/(1 - D) -> -1, d/dD (-log D) = -1/D -> -inf.
  dd = jnp.array([1e-6, 1e-3])
  np.testing.assert_allclose(jax.grad(lambda v: jnp.log1p(-v).sum())(dd), -1 / (1 - dd), rtol=1e-6)
  np.testing.assert_allclose(jax.grad(lambda v: -jnp.log(v).sum())(dd), -1 / dd, rtol=1e-6)


def test_minimax_d_gradient_is_sigmoid_error():
  # d/dl_real [softplus(-l)] = sigmoid(l) - 1; d/dl_fake [softplus(l)] = sigmoid(l).
  real, fake = jnp.asarray(LOGITS), jnp.asarray(LOGITS[::-1].copy())
  gr, gf = jax.grad(lambda r, f: losses.gan_d_loss(r, f, kind="minimax").sum(), (0, 1))(real, fake)
  np.testing.assert_allclose(gr, jax.nn.sigmoid(real) - 1, atol=1e-7)
  np.testing.assert_allclose(gf, jax.nn.sigmoid(fake), atol=1e-7)


def test_logit_shape_checks():
  with pytest.raises(ValueError, match="per-example logits"):
    losses.gan_d_loss(jnp.zeros((4, 1)), jnp.zeros((4, 1)), kind="minimax")
  with pytest.raises(ValueError, match="shapes differ"):
    losses.gan_d_loss(jnp.zeros(4), jnp.zeros(3), kind="hinge")
  with pytest.raises(ValueError, match="unknown kind"):
    losses.gan_g_loss(jnp.zeros(4), kind="minimax")
  with pytest.raises(ValueError, match="unknown kind"):
    losses.gan_d_loss(jnp.zeros(4), jnp.zeros(4), kind="saturating")


def _critic(w):
  """A nonlinear critic with independent examples: D(x) = sum tanh(x * w) + (sum x)^2 / 10."""
  return lambda x: (
    jnp.tanh(x * w).reshape(x.shape[0], -1).sum(1) + x.reshape(x.shape[0], -1).sum(1) ** 2 / 10
  )


def _explicit_norms(critic, x):
  """||grad_x D(x_i)|| one example at a time (a batch of one per call)."""
  one = jax.jit(jax.grad(lambda v: critic(v[None])[0]))
  return np.array([np.linalg.norm(np.asarray(one(xi))) for xi in x])


def test_gradient_penalty_against_per_example_gradient(key):
  k1, k2, k3, k4 = jax.random.split(key, 4)
  w = jax.random.normal(k1, (5, 5, 2))
  x_real, x_fake = jax.random.normal(k2, (6, 5, 5, 2)), jax.random.normal(k3, (6, 5, 5, 2))
  critic = _critic(w)
  got = losses.gradient_penalty(critic, x_real, x_fake, k4, target=1.0)
  a = jax.random.uniform(k4, (6, 1, 1, 1))  # the same draw the penalty makes from k4
  x_hat = a * x_real + (1 - a) * x_fake
  want = (_explicit_norms(critic, x_hat) - 1.0) ** 2
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert np.all((a > 0) & (a < 1)) and len(np.unique(np.asarray(a))) == 6  # one weight per example
  got2 = losses.gradient_penalty(critic, x_real, x_fake, k4, target=0.5)
  np.testing.assert_allclose(got2, (_explicit_norms(critic, x_hat) - 0.5) ** 2, rtol=1e-5)


def test_gradient_penalty_is_finite_at_a_flat_critic(key):
  flat = lambda x: jnp.zeros(x.shape[0]) * x.reshape(x.shape[0], -1).sum(1)
  x = jax.random.normal(key, (3, 4, 4, 1))

  def total(scale):
    return losses.gradient_penalty(lambda v: scale * flat(v), x, x + 1, key).sum()

  value, grad = jax.value_and_grad(total)(1.0)
  np.testing.assert_allclose(value, 3.0, rtol=1e-5)  # (0 - 1)^2 per example
  assert np.isfinite(grad)
  # Without the eps the derivative of the norm at a zero gradient is 0/0.
  nan_grad = jax.grad(
    lambda s: losses.gradient_penalty(lambda v: s * flat(v), x, x + 1, key, eps=0.0).sum()
  )(1.0)
  assert not np.isfinite(nan_grad)


def test_r1_against_per_example_gradient(key):
  k1, k2 = jax.random.split(key)
  w = jax.random.normal(k1, (5, 5, 2))
  x = jax.random.normal(k2, (4, 5, 5, 2))
  got = losses.r1_penalty(_critic(w), x)
  np.testing.assert_allclose(got, _explicit_norms(_critic(w), x) ** 2, rtol=1e-5)
  # Closed form for a linear critic D(x) = <v, x>: R1 = ||v||^2 for every example.
  v = jax.random.normal(k1, (5, 5, 2))
  linear = lambda x: (x * v).reshape(x.shape[0], -1).sum(1)
  np.testing.assert_allclose(
    losses.r1_penalty(linear, x), np.full(4, float((v**2).sum())), rtol=1e-5
  )


def test_penalty_shape_checks(key):
  critic = lambda x: x.reshape(x.shape[0], -1).sum(1)
  with pytest.raises(ValueError, match="shapes differ"):
    losses.gradient_penalty(critic, jnp.zeros((2, 3, 3, 1)), jnp.zeros((3, 3, 3, 1)), key)
  with pytest.raises(ValueError, match="logits"):
    losses.r1_penalty(lambda x: x, jnp.zeros((2, 3, 3, 1)))
