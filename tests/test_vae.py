"""VAE math and machinery: KL against Monte Carlo, the reparameterized sampler, the IWAE bound, smoke runs."""

import importlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from experiments.vae import train as vae_train
from genjax import losses, nn
from genjax.data import tfds as data
from genjax.evaluate import likelihood
from genjax.models import vae
from genjax.train import sharding
from genjax.train import state as tstate

LOG_2PI = np.log(2 * np.pi)


def _np_log_normal(z, mu, var):
  return -0.5 * np.sum(LOG_2PI + np.log(var) + (z - mu) ** 2 / var, axis=-1)


# --- KL(q || N(0, I)) ----------------------------------------------------------------------------


def test_kl_is_zero_at_the_prior_and_positive_elsewhere(key):
  assert float(losses.gaussian_kl(jnp.zeros((3, 5)), jnp.zeros((3, 5))).max()) == 0.0
  k1, k2 = jax.random.split(key)
  mu = 2.0 * jax.random.normal(k1, (1000, 4))
  logvar = 2.0 * jax.random.normal(k2, (1000, 4))
  kl = losses.gaussian_kl(mu, logvar)
  chex.assert_shape(kl, (1000,))
  assert float(kl.min()) >= 0.0
  assert float(losses.gaussian_kl(mu.at[:, :].set(0.0), logvar).min()) >= 0.0


def test_kl_matches_a_monte_carlo_estimate(key):
  mu = np.array([0.5, -1.0, 2.0], np.float32)
  logvar = np.array([-0.5, 0.3, -1.2], np.float32)
  n = 400_000
  z = np.asarray(mu + np.exp(0.5 * logvar) * jax.random.normal(key, (n, 3)), np.float64)
  log_ratio = _np_log_normal(z, mu, np.exp(logvar)) - _np_log_normal(z, 0.0, 1.0)
  mc, se = log_ratio.mean(), log_ratio.std() / np.sqrt(n)
  closed = float(losses.gaussian_kl(jnp.asarray(mu)[None], jnp.asarray(logvar)[None])[0])
  assert abs(closed - mc) < 4 * se, (closed, mc, se)


# --- the sampler ---------------------------------------------------------------------------------


def test_reparameterization_has_the_right_mean_and_variance(key):
  mu = jnp.array([1.0, -2.0, 0.0])
  logvar = jnp.array([0.0, jnp.log(4.0), jnp.log(0.01)])
  n = 200_000
  z = np.asarray(
    vae.reparameterize(key, jnp.broadcast_to(mu, (n, 3)), jnp.broadcast_to(logvar, (n, 3)))
  )
  var = np.exp(np.asarray(logvar))
  np.testing.assert_array_less(np.abs(z.mean(0) - mu), 4 * np.sqrt(var / n))
  np.testing.assert_array_less(np.abs(z.var(0) - var), 4 * var * np.sqrt(2 / n))


def test_gradients_through_the_sampler_match_finite_differences(key):
  eps_key = key

  def f(theta):  # a smooth function of z = mu + sigma * eps for fixed noise
    mu, logvar = theta[:3], theta[3:]
    z = vae.reparameterize(
      eps_key, jnp.broadcast_to(mu, (64, 3)), jnp.broadcast_to(logvar, (64, 3))
    )
    return jnp.mean(jnp.sin(z) * jnp.array([1.0, 2.0, -1.0]) + 0.5 * z**2)

  theta = jnp.array([0.3, -0.7, 1.1, -0.4, 0.2, -1.5])
  grad = np.asarray(jax.jit(jax.grad(f))(theta))
  f = jax.jit(f)
  h = 1e-2
  fd = np.array([(f(theta.at[i].add(h)) - f(theta.at[i].add(-h))) / (2 * h) for i in range(6)])
  np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-3)
  assert np.abs(grad).min() > 1e-2  # every parameter, mu and logvar alike, receives a gradient


# --- log-likelihoods and the objective -----------------------------------------------------------


def test_log_likelihoods_against_numpy(key):
  k1, k2 = jax.random.split(key)
  out = np.asarray(jax.random.normal(k1, (4, 6, 6, 1)))
  x = np.asarray(jax.random.bernoulli(k2, 0.3, (4, 6, 6, 1)), np.float32)
  p = 1 / (1 + np.exp(-out.astype(np.float64)))
  ref = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
  np.testing.assert_allclose(losses.bernoulli_log_likelihood(out, x), ref, rtol=1e-5)
  logvar = np.linspace(-2, 1, 36, dtype=np.float32).reshape(6, 6, 1)
  ref = np.sum(-0.5 * (LOG_2PI + logvar + (x - out) ** 2 / np.exp(logvar)), axis=(1, 2, 3))
  np.testing.assert_allclose(losses.gaussian_log_likelihood(out, x, logvar=logvar), ref, rtol=1e-5)


def test_negative_elbo_is_recon_plus_beta_kl_and_checks_shapes(key):
  k1, k2, k3 = jax.random.split(key, 3)
  out = jax.random.normal(k1, (5, 4, 4, 1))
  x = jax.random.uniform(k2, (5, 4, 4, 1))
  mu, logvar = jax.random.normal(k3, (2, 5, 3))
  loss, t = losses.negative_elbo(out, x, mu, logvar, beta=4.0)
  chex.assert_shape([loss, t["recon"], t["kl"]], (5,))
  np.testing.assert_allclose(t["recon"], losses.bce_with_logits(out, x, reduction="sum"), rtol=1e-6)
  np.testing.assert_allclose(loss, t["recon"] + 4.0 * t["kl"], rtol=1e-6)
  with pytest.raises(ValueError, match="mu must be"):
    losses.negative_elbo(out, x, mu[:4], logvar[:4])
  with pytest.raises(ValueError, match="shapes differ"):
    losses.negative_elbo(out[..., :2, :], x, mu, logvar)
  with pytest.raises(ValueError, match="same shape"):
    losses.gaussian_kl(mu, logvar[:, :2])
  with pytest.raises(ValueError, match="needs x_logvar"):
    losses.negative_elbo(out, x, mu, logvar, likelihood="gaussian")


def test_beta_warmup_is_linear_then_flat():
  got = [float(losses.beta_schedule(s, beta=4.0, warmup_steps=100)) for s in (0, 25, 100, 500)]
  assert got == [0.0, 1.0, 4.0, 4.0]
  assert float(losses.beta_schedule(7, beta=0.5)) == 0.5


# --- models --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("pixels", ["bernoulli", "gaussian_learned"])
def test_model_shapes(kind, pixels, key):
  cfg = vae.VAEConfig(kind=kind, hidden=(32,) if kind == "dense" else (4, 8), latent_dim=3,
                      likelihood=pixels.split("_")[0], learn_x_sigma=pixels.endswith("learned"))  # fmt: skip
  model = nn.build(lambda: vae.make(cfg, rngs=nnx.Rngs(0)))
  x = data.mock(6).x
  out, aux = nnx.jit(lambda m, x, k: m(x, k))(model, x, key)
  chex.assert_shape(out, (6, 28, 28, 1))
  chex.assert_shape([aux["mu"], aux["logvar"], aux["z"]], (6, 3))
  chex.assert_shape(model.log_likelihood(out, x), (6,))
  if cfg.likelihood == "gaussian":
    chex.assert_shape(aux["x_logvar"], (28, 28, 1))
  with pytest.raises(ValueError, match="expected images"):
    model.encode(x[:, :14])


def test_unknown_pixel_model_is_rejected():
  with pytest.raises(ValueError, match="unknown likelihood"):
    vae.make(vae.VAEConfig(likelihood="poisson"), rngs=nnx.Rngs(0))


# --- the importance-weighted bound ---------------------------------------------------------------


def _linear_gaussian(key, d_x=5, a=(2.0, 0.5), s=0.7):
  """z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I) with orthogonal columns of W: a diagonal exact posterior."""
  q, _ = np.linalg.qr(np.asarray(jax.random.normal(key, (d_x, 2)), np.float64))
  w, b = q * np.asarray(a), np.linspace(-1, 1, d_x)
  post_var = 1.0 / (1.0 + np.asarray(a) ** 2 / s**2)

  def encode(x):
    mean = (x - b) @ w * post_var / s**2
    return jnp.asarray(mean, jnp.float32), jnp.asarray(
      np.log(post_var) * np.ones_like(mean), jnp.float32
    )

  def log_likelihood(z, x):
    mean = z @ jnp.asarray(w.T, jnp.float32) + jnp.asarray(b, jnp.float32)
    return losses.diag_gaussian_log_density(x, mean, jnp.full_like(x, 2 * np.log(s)))

  cov = w @ w.T + s**2 * np.eye(d_x)

  def exact_log_px(x):
    r = x - b
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (d_x * LOG_2PI + logdet + np.einsum("bi,ij,bj->b", r, np.linalg.inv(cov), r))

  return encode, log_likelihood, exact_log_px


@pytest.mark.parametrize("k,chunk", [(1, 1), (50, 10)])
def test_iwae_equals_log_px_when_q_is_the_exact_posterior(key, k, chunk):
  encode, log_lik, exact = _linear_gaussian(key)
  x = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (7, 5)), np.float64) * 2
  bound = likelihood.iwae_bound(key, jnp.asarray(x, jnp.float32), encode=encode,
                                log_likelihood=log_lik, k=k, chunk=chunk)  # fmt: skip
  np.testing.assert_allclose(bound, exact(x), rtol=1e-4, atol=1e-4)


def _tiny_vae():
  cfg = vae.VAEConfig(kind="dense", hidden=(32,), latent_dim=4)
  return nn.build(lambda: vae.make(cfg, rngs=nnx.Rngs(1)))


def test_iwae_chunked_scan_equals_a_direct_log_mean_exp(key):
  model = _tiny_vae()
  x = (data.mock(3).x > 0.5).astype(np.float32)
  k, chunk = 20, 5
  iwae = nnx.jit(likelihood.model_iwae_bound, static_argnames=("k", "chunk"))
  bound = iwae(model, key, x, k=k, chunk=chunk)
  mu, logvar = (np.asarray(v, np.float64) for v in model.encode(x))
  for b, key_b in enumerate(jax.random.split(key, 3)):
    eps = np.concatenate([np.asarray(jax.random.normal(jax.random.fold_in(key_b, c), (chunk, 4)))
                          for c in range(k // chunk)])  # fmt: skip
    z = mu[b] + np.exp(0.5 * logvar[b]) * eps
    logits = np.asarray(model.decode(jnp.asarray(z, jnp.float32)), np.float64)
    log_px_z = -np.sum(np.logaddexp(0, logits) - x[b] * logits, axis=(1, 2, 3))
    log_w = log_px_z + _np_log_normal(z, 0.0, 1.0) - _np_log_normal(z, mu[b], np.exp(logvar[b]))
    direct = np.logaddexp.reduce(log_w) - np.log(k)
    np.testing.assert_allclose(float(bound[b]), direct, rtol=1e-5)
  with pytest.raises(ValueError, match="must divide"):
    likelihood.model_iwae_bound(model, key, x, k=10, chunk=3)


def test_iwae_is_above_the_elbo_and_rises_with_k(key):
  model = _tiny_vae()
  x = (data.mock(64).x > 0.5).astype(np.float32)
  fn = jax.jit(lambda x, key, k: likelihood.model_iwae_bound(model, key, x, k=k, chunk=min(k, 50)),
               static_argnums=2)  # fmt: skip
  bounds = {k: float(fn(x, jax.random.fold_in(key, k), k).mean()) for k in (1, 10, 200)}
  mu, logvar = model.encode(x)
  out = model.decode(vae.reparameterize(jax.random.fold_in(key, 7), mu, logvar))
  neg_elbo, _ = losses.negative_elbo(out, x, mu, logvar)
  elbo = -float(neg_elbo.mean())
  assert bounds[1] < bounds[10] < bounds[200], bounds
  assert elbo < bounds[10], (elbo, bounds)


def test_conv_vae_step_on_two_devices_equals_one_device(key):
  """The batch split over 2 devices (scripts/bench_vae.py --devices 2) draws the same binarization
  and eps and takes the same step: losses equal, SGD updates (linear in the gradient) equal."""
  cfg = vae.VAEConfig(kind="conv", hidden=(8, 16), latent_dim=4)
  x = data.mock(16).x
  out = []
  for n in (1, 2):
    mesh = sharding.make_mesh(n)
    tx = optax.sgd(0.1)
    graphdef, state = tstate.create(lambda: vae.make(cfg, rngs=nnx.Rngs(0)), tx, mesh)
    step = tstate.make_train_step(
      graphdef, tx, lambda m, b, k: vae_train.loss_fn(m, b, k, binarize=True)
    )
    state, metrics = step(state, {"x": sharding.shard_batch(x, mesh), "beta": np.float32(1.0)}, key)
    out.append((float(metrics["loss"]), jax.device_get(state.params)))
  np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5)
  chex.assert_trees_all_close(out[0][1], out[1][1], rtol=1e-4, atol=1e-6)


# --- smoke runs of the experiment ----------------------------------------------------------------


@pytest.mark.parametrize(
  "arch,variant", [("dense", "latent2,warmup"), ("conv", "gaussian_learned,beta4")]
)
def test_vae_smoke(arch, variant, tmp_path):
  module = importlib.import_module(f"experiments.vae.configs.{arch}")
  results = vae_train.train_and_evaluate(module.get_config(f"{variant},smoke"), str(tmp_path))
  assert results["step"] == 2 and results["iwae_examples"] == 16
  for name in ("test_neg_elbo", "test_recon", "test_kl", "test_mse", "test_iwae_nll"):
    assert np.isfinite(results[name]), name
  np.testing.assert_allclose(
    results["test_neg_elbo"], results["test_recon"] + results["test_kl"], rtol=1e-5
  )
  for fig in ("reconstructions", "samples", "interpolations"):
    assert (tmp_path / f"{fig}.png").stat().st_size > 0
  assert (tmp_path / "manifold.png").exists() == (arch == "dense")
