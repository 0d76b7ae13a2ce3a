"""Per-example reconstruction numbers of images in [0, 1]: L1, PSNR and SSIM (JAX, jit-able)."""

import jax
import jax.numpy as jnp

from genjax import losses


def psnr(x_hat: jax.Array, x: jax.Array, *, min_mse: float = 1e-10) -> jax.Array:
  """Peak signal-to-noise ratio in dB for peak 1, [B]: -10 log10(MSE), the MSE floored at min_mse
  (so equal images give 100 dB, not inf)."""
  return -10.0 * jnp.log10(jnp.maximum(losses.mse(x_hat, x), min_mse))


def metrics(x_hat: jax.Array, x: jax.Array) -> dict:
  """{"l1", "psnr", "ssim"}: per-example mean |x_hat - x|, PSNR (dB) and SSIM, each [B]."""
  l1 = jnp.abs(x_hat - x).reshape(x.shape[0], -1).mean(1)
  return {"l1": l1, "psnr": psnr(x_hat, x), "ssim": losses.ssim(x_hat, x)}
