"""Importance-weighted lower bound on log p(x) (Burda, Grosse & Salakhutdinov, "IWAE", ICLR 2016)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from genjax import losses


def iwae_bound(
  key: jax.Array,
  x: jax.Array,
  *,
  encode: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
  log_likelihood: Callable[[jax.Array, jax.Array], jax.Array],
  k: int,
  chunk: int = 100,
) -> jax.Array:
  """L_k(x) = log (1/k) sum_{i=1..k} p(x | z_i) p(z_i) / q(z_i | x),  z_i ~ q(z | x) = N(mu, diag e^logvar).

  E[L_k] <= log p(x), E[L_1] is the ELBO, and E[L_k] rises with k towards log p(x) (Burda et al.
  2016, theorem 1). The k samples are drawn `chunk` at a time inside a lax.scan that keeps a running
  log-sum-exp (max m and sum s of exp(log w - m)), so memory is O(B * chunk), not O(B * k). The
  noise of chunk c of example b is normal(fold_in(split(key, B)[b], c), [chunk, D]). Examples are vectorized with vmap; call it under jit.

  Args:
    key: PRNG key.
    x: a batch of examples [B, ...].
    encode: x [B, ...] -> (mu, logvar), each [B, D].
    log_likelihood: (z [n, D], x [n, ...]) -> log p(x | z) [n].
    k: number of importance samples (e.g. 1000 or 5000).
    chunk: samples per scan step; must divide k.

  Returns:
    [B] the bound L_k(x) in nats, one sample of it per example.
  """
  if k < 1 or chunk < 1 or k % min(chunk, k):
    raise ValueError(f"iwae_bound: chunk ({chunk}) must divide k ({k}), both >= 1.")
  chunk = min(chunk, k)
  mu, logvar = encode(x)
  if mu.shape != logvar.shape or mu.shape[0] != x.shape[0]:
    raise ValueError(
      f"iwae_bound: encode gave mu {mu.shape}, logvar {logvar.shape} for x {x.shape}."
    )

  def one(x_b, mu_b, logvar_b, key_b):
    x_rep = jnp.broadcast_to(x_b, (chunk, *x_b.shape))

    def body(carry, c):
      m, s = carry
      eps = jax.random.normal(jax.random.fold_in(key_b, c), (chunk, *mu_b.shape), mu_b.dtype)
      z = mu_b + jnp.exp(0.5 * logvar_b) * eps  # [chunk, D]
      log_w = (
        log_likelihood(z, x_rep)
        + losses.diag_gaussian_log_density(z, jnp.zeros_like(z), jnp.zeros_like(z))
        - losses.diag_gaussian_log_density(z, mu_b, logvar_b)
      )
      m_new = jnp.maximum(m, log_w.max())
      s = s * jnp.exp(m - m_new) + jnp.exp(log_w - m_new).sum()
      return (m_new, s), None

    init = (jnp.asarray(-jnp.inf, mu_b.dtype), jnp.zeros((), mu_b.dtype))
    (m, s), _ = jax.lax.scan(body, init, jnp.arange(k // chunk))
    return m + jnp.log(s) - jnp.log(k)

  keys = jax.random.split(key, x.shape[0])
  return jax.vmap(one)(x, mu, logvar, keys)


def model_iwae_bound(model, key: jax.Array, x: jax.Array, *, k: int, chunk: int = 100) -> jax.Array:
  """iwae_bound for a genjax VAE (genjax.models.vae): its encoder, decoder and pixel model."""
  return iwae_bound(
    key, x, encode=model.encode, k=k, chunk=chunk,
    log_likelihood=lambda z, xs: model.log_likelihood(model.decode(z), xs),
  )  # fmt: skip
