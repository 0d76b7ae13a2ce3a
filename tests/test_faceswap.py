"""Face swap (a): the shared-encoder model's shapes and routing, and a 2-step smoke run of its config."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.faceswap import train as fs_train
from experiments.faceswap.configs import shared_encoder
from genjax import nn
from genjax.models import faceswap


def test_each_identity_has_its_own_decoder_after_one_shared_encoder(key):
  cfg = faceswap.SwapConfig(channels=(4, 4), latent_dim=8, decoder_channels=(4, 4))
  model = nn.build(lambda: faceswap.SharedEncoderSwap(cfg, rngs=nnx.Rngs(0)))
  x = jax.random.uniform(key, (2, 100, 100, 3))
  logits, aux = model(x, 0)
  chex.assert_shape(logits, (2, 100, 100, 3))
  chex.assert_shape(aux["z"], (2, 8))
  a, b = model.swap(x, 0), model.swap(x, 1)
  assert float(jnp.abs(a - b).max()) > 0  # different decoders
  np.testing.assert_allclose(b, jax.nn.sigmoid(model.decode(model.encode(x), 1)), atol=1e-6)
  assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_shared_encoder_smoke(tmp_path):
  from PIL import Image

  config = shared_encoder.get_config("smoke")
  results = fs_train.train_and_evaluate(config, str(tmp_path))
  assert results["step"] == 2
  for k in ("self_a_l1", "self_a_psnr", "self_a_ssim", "self_b_l1"):
    assert np.isfinite(results[k]), k
  with Image.open(tmp_path / "preview.png") as im:
    assert im.text["synthetic"] == "true"


def test_the_face_weighted_loss_counts_the_background_by_its_weight(key):
  from genjax import losses

  cfg = faceswap.SwapConfig(image_shape=(32, 32, 3), channels=(4, 4), latent_dim=8,
                            decoder_channels=(4, 4))  # fmt: skip
  model = nn.build(lambda: faceswap.SharedEncoderSwap(cfg, rngs=nnx.Rngs(0)))
  x = jax.random.uniform(key, (2, 32, 32, 3))
  region = jnp.zeros((2, 32, 32)).at[:, 8:24, 8:24].set(1.0)
  x_hat = np.asarray(model.swap(x, 1), np.float64)
  for bg in (1.0, 0.2, 0.0):
    loss, mse, dssim = fs_train.recon_loss(
      model, x, x, region, 1, fs_train.LossConfig(background=bg)
    )
    w = bg + (1 - bg) * np.asarray(region)[..., None]
    np.testing.assert_allclose(mse, np.mean(np.square(w * (x_hat - np.asarray(x)))), rtol=1e-5)
    y = np.asarray(x) + w * (x_hat - np.asarray(x))
    np.testing.assert_allclose(
      dssim, losses.dssim(jnp.asarray(y, jnp.float32), x).mean(), rtol=1e-4
    )
    np.testing.assert_allclose(loss, mse + dssim, rtol=1e-6)
  # With no weight off the face, a change there costs nothing.
  outside = jnp.asarray(x).at[:, :4].set(0.0)
  zero_bg = fs_train.LossConfig(background=0.0)
  np.testing.assert_allclose(fs_train.recon_loss(model, x, x, region, 1, zero_bg)[1],
                             fs_train.recon_loss(model, x, outside, region, 1, zero_bg)[1], rtol=1e-6)  # fmt: skip
