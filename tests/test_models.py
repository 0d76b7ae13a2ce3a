"""Autoencoder shapes, input checks and config errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax.models import autoencoder


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_autoencoder_shapes(kind):
  cfg = autoencoder.AutoencoderConfig(
    kind=kind, hidden=(64, 32) if kind == "dense" else (8, 16), latent_dim=5
  )
  graphdef, state = nnx.split(nnx.eval_shape(lambda: autoencoder.make(cfg, rngs=nnx.Rngs(0))))
  forward = jax.jit(lambda s, x: (lambda m: (m(x), m.decode(m.encode(x))))(nnx.merge(graphdef, s)))
  (logits, aux), decoded = jax.eval_shape(forward, state, jnp.zeros((3, 28, 28, 1)))
  chex.assert_shape(logits, (3, 28, 28, 1))
  chex.assert_shape(aux["z"], (3, 5))
  chex.assert_shape(decoded, (3, 28, 28, 1))


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize(
  "x, match",
  [
    (np.zeros((3, 28, 28)), "shape"),
    (np.zeros((3, 32, 32, 1)), "shape"),
    (np.zeros((3, 28, 28, 1), np.uint8), "dtype"),
    ([[0.0]], "expected an array"),
  ],
)
def test_bad_inputs_raise_value_error(kind, x, match):
  model = nnx.eval_shape(
    lambda: autoencoder.make(
      autoencoder.AutoencoderConfig(kind=kind, hidden=(8, 8)), rngs=nnx.Rngs(0)
    )
  )
  with pytest.raises(ValueError, match=match):
    model(jnp.asarray(x) if isinstance(x, np.ndarray) else x)


def test_bad_configs_raise():
  make = lambda **kw: nnx.eval_shape(
    lambda: autoencoder.make(autoencoder.AutoencoderConfig(**kw), rngs=nnx.Rngs(0))
  )
  with pytest.raises(ValueError, match="divisible by 4"):
    make(kind="conv", image_shape=(30, 30, 1))
  with pytest.raises(ValueError, match="unknown autoencoder kind"):
    make(kind="vae")
  with pytest.raises(ValueError, match="unknown activation"):
    make(activation="swishy")
