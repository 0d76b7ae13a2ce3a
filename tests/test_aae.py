"""Face swap (b): latent mixing, slerp, the alternating updates' separation, and a smoke run."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from experiments.aae import train as aae_train
from experiments.aae.configs import aae as aae_config
from genjax import nn
from genjax.models import aae
from genjax.train import sharding

CFG = aae.AAEConfig(channels=(4, 4), latent_dim=8, identity_dim=3, decoder_channels=(4, 4),
                    num_identities=4, disc_hidden=(8,))  # fmt: skip


def test_mix_takes_the_identity_part_from_the_first_code_and_the_rest_from_the_second():
  a, b = jnp.arange(8.0)[None], -jnp.arange(8.0)[None] - 1
  np.testing.assert_array_equal(aae.mix(a, b, 3), [[0, 1, 2, -4, -5, -6, -7, -8]])
  with pytest.raises(ValueError, match="identity_dim"):
    aae.mix(a, b, 8)
  with pytest.raises(ValueError, match="equal shapes"):
    aae.mix(a, b[:, :4], 2)
  with pytest.raises(ValueError, match="identity_dim"):
    aae.AAEConfig(latent_dim=8, identity_dim=0)


def test_slerp_endpoints_midpoint_and_linear_fallback(key):
  h0, h1 = jax.random.normal(key, (2, 5, 16))
  path = aae.slerp(h0, h1, jnp.linspace(0, 1, 5))
  chex.assert_shape(path, (5, 5, 16))
  np.testing.assert_allclose(path[0], h0, atol=1e-5)
  np.testing.assert_allclose(path[-1], h1, atol=1e-5)
  # Orthogonal unit vectors: the midpoint is (e0 + e1) / sqrt(2), on the unit circle.
  e0, e1 = jnp.eye(4)[0], jnp.eye(4)[1]
  np.testing.assert_allclose(
    aae.slerp(e0, e1, jnp.array([0.5]))[0], (e0 + e1) / np.sqrt(2), atol=1e-6
  )
  # Equal-norm codes keep their norm along the path (the linear path would shrink it).
  u = h0 / jnp.linalg.norm(h0, axis=-1, keepdims=True)
  v = h1 / jnp.linalg.norm(h1, axis=-1, keepdims=True)
  np.testing.assert_allclose(
    jnp.linalg.norm(aae.slerp(u, v, jnp.linspace(0, 1, 7)), axis=-1), 1.0, atol=1e-5
  )
  # Parallel codes (angle 0): the linear path, finite.
  np.testing.assert_allclose(aae.slerp(u, 2 * u, jnp.array([0.5]))[0], 1.5 * u, rtol=1e-5)


def test_model_shapes_and_swap_is_decoded_mix(key):
  model = nn.build(lambda: aae.AdversarialAutoencoder(CFG, rngs=nnx.Rngs(0)))
  xs, xt = jax.random.uniform(key, (2, 3, 100, 100, 3))
  logits, aux = model(xs)
  chex.assert_shape((logits, aux["h"], aux["id_logits"]), ((3, 100, 100, 3), (3, 8), (3, 4)))
  hs, ht = model.encode(xs), model.encode(xt)
  want = model.decode(jnp.concatenate([hs[:, :3], ht[:, 3:]], -1))
  np.testing.assert_allclose(model.swap(xs, xt), want, atol=1e-6)
  d = nn.build(lambda: aae.LatentDiscriminator(CFG, rngs=nnx.Rngs(1)))
  chex.assert_shape(d(hs), (3,))


def _state_and_batch(key):
  mesh = sharding.make_mesh(1)
  ae_tx, d_tx = optax.adam(1e-2), optax.adam(1e-2)
  ae_def, d_def, state = aae_train.create(CFG, ae_tx, d_tx, key, mesh)
  x = jax.random.uniform(jax.random.fold_in(key, 1), (4, 100, 100, 3))
  return ae_def, d_def, ae_tx, d_tx, state, x, jnp.array([0, 1, 2, 3])


def _changed(a, b):
  return [
    bool(jnp.any(p != q)) for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  ]


def test_latent_discriminator_step_leaves_the_autoencoder_untouched(key):
  ae_def, d_def, ae_tx, d_tx, state, x, _ = _state_and_batch(key)
  step = functools.partial(aae_train.d_step, ae_def=ae_def, d_def=d_def, d_tx=d_tx,
                           cfg=aae_train.LossConfig(gp_weight=10.0))  # fmt: skip
  new, terms = jax.jit(step)(state, x, key)  # one compilation, not one per operation
  assert not any(_changed(state.g_params, new.g_params))
  assert not any(_changed(state.g_opt, new.g_opt))
  assert all(_changed(state.d_params, new.d_params))
  assert np.isfinite(float(terms["gp"])) and np.isfinite(float(terms["d_total"]))


def test_autoencoder_step_leaves_the_latent_discriminator_untouched(key):
  ae_def, d_def, ae_tx, d_tx, state, x, y = _state_and_batch(key)
  step = functools.partial(aae_train.ae_step, ae_def=ae_def, d_def=d_def, ae_tx=ae_tx,
                           cfg=aae_train.LossConfig())  # fmt: skip
  new, terms = jax.jit(step)(state, x, x, jnp.ones(x.shape[:3]), y)
  assert not any(_changed(state.d_params, new.d_params))
  assert not any(_changed(state.d_opt, new.d_opt))
  assert all(_changed(state.g_params, new.g_params))  # every term reaches its parameters
  # The logged total is the weighted sum of the logged terms.
  c = aae_train.LossConfig()
  total = (
    c.mse * terms["mse"]
    + c.dssim * terms["dssim"]
    + c.adversarial * terms["adv"]
    + c.identity * terms["id_ce"]
  )
  np.testing.assert_allclose(terms["ae_loss"], total, rtol=1e-6)


def test_aae_smoke(tmp_path):
  from PIL import Image

  results = aae_train.train_and_evaluate(aae_config.get_config("smoke"), str(tmp_path))
  assert results["step"] == 2
  for k in ("self_l1", "self_psnr", "self_ssim", "identity_accuracy", "code_std", "d_accuracy"):
    assert np.isfinite(results[k]), k
  with Image.open(tmp_path / "preview.png") as im:
    assert im.text["synthetic"] == "true"
