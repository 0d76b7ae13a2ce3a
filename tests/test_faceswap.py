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
