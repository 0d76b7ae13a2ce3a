"""DCGAN models, the alternating train step, the sample-quality metrics and smoke runs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from flax import nnx

from experiments.gan import train as gan_train
from experiments.gan.configs import dcgan
from genjax import nn
from genjax.evaluate import sample_quality as sq
from genjax.models import gan
from genjax.train import sharding
from genjax.train import state as tstate

TINY = gan.GANConfig(image_shape=(8, 8, 1), latent_dim=4, g_widths=(4, 2), d_widths=(2, 4))


@pytest.mark.parametrize(
  "cfg",
  [gan.GANConfig(), gan.GANConfig(image_shape=(100, 100, 3), g_widths=(64, 32), d_widths=(32, 64))],
)
def test_model_shapes(cfg):
  def run():
    g = gan.Generator(cfg, rngs=nnx.Rngs(0))
    d = gan.Discriminator(cfg, rngs=nnx.Rngs(1))
    logits, aux = g(jnp.zeros((3, cfg.latent_dim)))
    return logits, aux["x"], d(aux["x"])[0]

  logits, x, d_logits = jax.eval_shape(run)  # shapes only: no compile of the 100x100 model
  chex.assert_shape([logits, x], (3, *cfg.image_shape))
  chex.assert_shape(d_logits, (3,))


def test_model_input_checks():
  with pytest.raises(ValueError, match="divisible"):
    nnx.eval_shape(lambda: gan.Generator(gan.GANConfig(image_shape=(30, 30, 1)), rngs=nnx.Rngs(0)))
  g = nn.build(lambda: gan.Generator(TINY, rngs=nnx.Rngs(0)))
  with pytest.raises(ValueError, match="expected z"):
    g(jnp.zeros((2, 5)))


@pytest.fixture(scope="module")
def parts():
  """Tiny pair, WGAN-GP + R1 objective with k = 2 (every term at once), jitted pieces."""
  cfg = gan_train.LossConfig(d_kind="wasserstein", g_kind="wasserstein", gp_weight=10.0,
                             r1_gamma=1.0, d_steps=2)  # fmt: skip
  # SGD with momentum: a non-trivial optimizer state, and no Adam-style normalization that would
  # magnify rounding differences between the fused step and the separate jitted pieces.
  g_tx, d_tx = optax.sgd(0.05, momentum=0.9), optax.sgd(0.05, momentum=0.9)
  g_def, d_def, state = gan_train.create(TINY, g_tx, d_tx, jax.random.key(0), sharding.make_mesh(1))
  # The pieces compile as the fused step does (tstate.jit_step), so both use the same CPU kernels
  # and the comparison checks the composition, not two kernels' rounding.
  d_step = tstate.jit_step(lambda s, x, k: gan_train.d_step(s, x, k, g_def=g_def, d_def=d_def, d_tx=d_tx,
                                                    cfg=cfg))  # fmt: skip
  g_step = tstate.jit_step(lambda s, k: gan_train.g_step(s, 4, k, g_def=g_def, d_def=d_def, g_tx=g_tx,
                                                 cfg=cfg))  # fmt: skip
  train_step = gan_train.make_train_step(g_def, d_def, g_tx, d_tx, cfg)
  x = jax.random.uniform(jax.random.key(1), (8, 8, 8, 1))
  return state, d_step, g_step, train_step, x


def _equal(a, b) -> bool:
  return all(
    np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  )


def test_d_step_leaves_generator_untouched_and_vice_versa(parts):
  state, d_step, g_step, _, x = parts
  after_d, terms = d_step(state, x[:4], jax.random.key(2))
  assert _equal(after_d.g_params, state.g_params) and _equal(after_d.g_opt, state.g_opt)
  assert not _equal(after_d.d_params, state.d_params) and not _equal(after_d.d_opt, state.d_opt)
  assert all(np.isfinite(v) for v in jax.device_get(terms).values())
  after_g, _ = g_step(state, jax.random.key(3))
  assert _equal(after_g.d_params, state.d_params) and _equal(after_g.d_opt, state.d_opt)
  assert not _equal(after_g.g_params, state.g_params) and not _equal(after_g.g_opt, state.g_opt)


def test_train_step_is_k_d_steps_then_g_against_the_updated_d(parts):
  state, d_step, g_step, train_step, x = parts
  key = jax.random.key(4)
  k = jax.random.fold_in(key, 0)  # state.step == 0
  want = d_step(state, x[:4], jax.random.fold_in(k, 0))[0]
  want = d_step(want, x[4:], jax.random.fold_in(k, 1))[0]
  want = g_step(want, jax.random.fold_in(k, 2))[0]
  copy = jax.tree.map(jnp.copy, state)  # train_step donates its state
  got, metrics = train_step(copy, x, key)
  assert int(got.step) == 1
  for a, b in zip(jax.tree.leaves((want.g_params, want.d_params, want.g_opt, want.d_opt)),
                  jax.tree.leaves((got.g_params, got.d_params, got.g_opt, got.d_opt)), strict=True):  # fmt: skip
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert {"d_loss", "g_loss", "gp", "r1", "loss"} <= set(metrics)
  # Same seed, same result (a second run from the same state).
  again, _ = train_step(jax.tree.map(jnp.copy, state), x, key)
  assert _equal(again.g_params, got.g_params) and _equal(again.d_params, got.d_params)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_matches_scipy():
  rng = np.random.default_rng(0)
  f1 = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12))
  f2 = rng.standard_normal((400, 12)) * 2 + 0.5
  assert sq.frechet_distance_of_features(f1, f1) == pytest.approx(0.0, abs=1e-8)
  (m1, s1), (m2, s2) = sq.statistics(f1), sq.statistics(f2)
  root = scipy.linalg.sqrtm(s1 @ s2).real
  want = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root)
  np.testing.assert_allclose(sq.frechet_distance(m1, s1, m2, s2), want, rtol=1e-8)
  # Closed form for diagonal covariances: sum (mu1 - mu2)^2 + sum (sqrt(a) - sqrt(b))^2.
  a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
  got = sq.frechet_distance(np.zeros(5), np.diag(a), np.ones(5), np.diag(b))
  np.testing.assert_allclose(got, 5 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rtol=1e-10)


def test_classifier_score_and_class_entropy():
  k = 10
  sharp = np.eye(k)[np.arange(1000) % k]  # confident, every class equally often
  assert sq.classifier_score(sharp) == pytest.approx(k, rel=1e-6)
  assert sq.class_histogram_entropy(sharp) == pytest.approx(np.log(k))
  collapsed = np.eye(k)[np.zeros(1000, int)]  # one mode only
  assert sq.classifier_score(collapsed) == pytest.approx(1.0)
  assert sq.class_histogram_entropy(collapsed) == 0.0
  uniform = np.full((50, k), 1 / k)
  assert sq.classifier_score(uniform) == pytest.approx(1.0)
  # Against a direct NumPy computation on random probabilities.
  p = np.random.default_rng(0).dirichlet(np.ones(k) * 0.3, 200)
  m = p.mean(0)
  want = np.exp(np.mean([np.sum(r * np.log(r / m)) for r in p]))
  assert sq.classifier_score(p) == pytest.approx(want, rel=1e-9)
  with pytest.raises(ValueError, match="probability"):
    sq.classifier_score(np.ones((3, k)))


@pytest.mark.parametrize("variant", ["ns_r1", "wgan_gp"])
def test_gan_smoke(variant, tmp_path):
  config = dcgan.get_config(f"{variant},smoke")
  results = gan_train.train_and_evaluate(config, str(tmp_path))
  assert results["step"] == 2
  for name in ("fd", "fd_floor_train_vs_test", "classifier_score", "class_entropy"):
    assert np.isfinite(results[name]), name
  assert 1.0 <= results["classifier_score"] <= 10.0 + 1e-6
  assert (tmp_path / "samples" / "step_000002.png").exists()


@pytest.mark.parametrize("variant", dcgan.VARIANTS)
def test_every_variant_builds_a_valid_objective(variant):
  c = dcgan.get_config(f"{variant},smoke" if variant != "smoke" else "smoke")
  cfg = gan_train.LossConfig(**c.loss.to_dict())
  expected = {"ns": ("minimax", "non_saturating"), "saturating": ("minimax", "saturating"),
              "wgan_gp": ("wasserstein", "wasserstein"), "ns_r1": ("minimax", "non_saturating"),
              "smoke": ("minimax", "non_saturating")}[variant]  # fmt: skip
  assert (cfg.d_kind, cfg.g_kind) == expected
  assert (cfg.gp_weight > 0) == (variant == "wgan_gp") and (cfg.r1_gamma > 0) == (
    variant == "ns_r1"
  )
  with pytest.raises(ValueError, match="unknown variant"):
    dcgan.get_config("ns,bogus")
