"""Autoencoder shapes and input checks, and the sub-pixel transposed conv against a direct reference."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn
from genjax.models import autoencoder


def _conv_transpose_reference(x, w):
  """Direct definition (PyTorch ConvTranspose2d, k=4, s=2, p=1): y[2i+k-1] += x[i] w[k], per axis."""
  b, h, wd, _ = x.shape
  y = np.zeros((b, 2 * h + 2, 2 * wd + 2, w.shape[-1]))  # one pixel of margin on each side
  for i in range(h):
    for j in range(wd):
      for ky in range(4):
        for kx in range(4):
          y[:, 2 * i + ky, 2 * j + kx] += x[:, i, j] @ w[ky, kx]
  return y[:, 1:-1, 1:-1]


@pytest.mark.parametrize("c_out", [2, 5])  # one product for all offsets (<= 4 outputs) or four
def test_conv_transpose_2x_matches_direct_definition(c_out):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 5, 4, 3))
  w = rng.standard_normal((4, 4, 3, c_out))
  got = jax.jit(nn.conv_transpose_2x)(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
  np.testing.assert_allclose(got, _conv_transpose_reference(x, w), rtol=1e-4, atol=1e-4)


def _lax_conv_transpose(x, w):
  # lax.conv_transpose with transpose_kernel=True is the gradient of a conv: PyTorch's semantics
  # with the kernel's in/out axes swapped.
  return jax.lax.conv_transpose(x, jnp.swapaxes(w, 2, 3), (2, 2), ((2, 2), (2, 2)),
                                dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)  # fmt: skip


def test_conv_transpose_2x_matches_lax_conv_transpose():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 7, 7, 4)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((4, 4, 4, 3)), jnp.float32)
  want = jax.jit(_lax_conv_transpose)(x, w)
  np.testing.assert_allclose(jax.jit(nn.conv_transpose_2x)(x, w), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("c_out", [3, 6])
def test_conv_transpose_2x_gradients_match_lax_conv_transpose(c_out):
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((2, 5, 6, 4)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((4, 4, 4, c_out)), jnp.float32)
  # a non-symmetric loss weight
  t = jnp.asarray(rng.standard_normal((2, 10, 12, c_out)), jnp.float32)
  grads = [jax.jit(jax.grad(lambda x, w, f=f: jnp.sum(t * f(x, w) ** 2), argnums=(0, 1)))(x, w)
           for f in (nn.conv_transpose_2x, _lax_conv_transpose)]  # fmt: skip
  for got, want in zip(*grads, strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


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


@pytest.mark.parametrize(
  "strides,padding,kernel",
  [
    ((1, 1), ((1, 1), (1, 1)), 3),
    ((2, 2), "SAME", 3),  # input gradient over patches
    ((2, 2), ((1, 1), (1, 1)), 4),  # input gradient over space-to-depth blocks
    ((2, 1), "VALID", 3),
  ],
)
@pytest.mark.parametrize("c_in", [8, 3])  # kernel gradient over taps, or over patches
def test_conv2d_value_gradients_and_forward_mode_match_lax(strides, padding, kernel, c_in):
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.standard_normal((2, 9, 8, c_in)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((kernel, kernel, c_in, 8)), jnp.float32)
  dn = ("NHWC", "HWIO", "NHWC")
  convs = {
    "genjax": lambda x, w: nn.conv2d(x, w, strides, padding, dimension_numbers=dn),
    "lax": lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn),
  }
  assert "custom_jvp_call" in str(jax.make_jaxpr(convs["genjax"])(x, w))  # the fast path is tested
  # fewer than 8 output channels go to lax unchanged
  assert "custom_jvp_call" not in str(jax.make_jaxpr(convs["genjax"])(x, w[..., :3]))
  loss = {k: (lambda x, w, f=f: jnp.sum(jnp.tanh(f(x, w)))) for k, f in convs.items()}
  out = {k: jax.jit(f)(x, w) for k, f in convs.items()}
  np.testing.assert_allclose(out["genjax"], out["lax"], rtol=1e-5, atol=1e-5)
  grads = {k: jax.jit(jax.grad(f, argnums=(0, 1)))(x, w) for k, f in loss.items()}
  for got, want in zip(grads["genjax"], grads["lax"], strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  # forward mode (the exact Grad-CAM++ derivatives) and second order in the kernel
  tangent = jnp.asarray(rng.standard_normal(w.shape), jnp.float32)
  jvps = {k: jax.jvp(lambda w, f=f: f(x, w), (w,), (tangent,))[1] for k, f in loss.items()}
  np.testing.assert_allclose(jvps["genjax"], jvps["lax"], rtol=1e-4, atol=1e-4)
  hess = {k: jax.hessian(f, argnums=1)(x, w) for k, f in loss.items()}
  np.testing.assert_allclose(hess["genjax"], hess["lax"], rtol=1e-4, atol=1e-4)


def test_max_pool_2x2_is_bitwise_nnx_max_pool_with_ties_and_second_order():
  rng = np.random.default_rng(4)
  x = np.maximum(rng.standard_normal((2, 6, 8, 3)), 0.0)  # ReLU zeros: whole windows tie at 0
  x[:, 2:4] = 1.0  # windows tied at a non-zero value, where the second derivative sees the choice
  x = jnp.asarray(x, jnp.float32)
  g = jnp.asarray(rng.standard_normal((2, 3, 4, 3)), jnp.float32)
  v = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)
  pools = {"genjax": nn.max_pool_2x2, "nnx": lambda x: nnx.max_pool(x, (2, 2), strides=(2, 2))}
  out = {}
  for name, pool in pools.items():
    loss = lambda x, pool=pool: jnp.sum(jnp.sin(pool(x)) * g)
    grad = jax.grad(loss)
    out[name] = (
      pool(x),
      jax.jvp(pool, (x,), (v,))[1],
      grad(x),
      jax.jvp(grad, (x,), (v,))[1],  # forward over reverse, as the exact Grad-CAM++ mode uses
    )
  assert (out["genjax"][2] != 0).sum() == g.size  # one element of each window takes the gradient
  for got, want in zip(out["genjax"], out["nnx"], strict=True):
    np.testing.assert_array_equal(got, want)
  with pytest.raises(ValueError, match="must be even"):
    nn.max_pool_2x2(jnp.zeros((1, 5, 4, 1)))
