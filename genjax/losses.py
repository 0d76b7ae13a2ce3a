"""Pure loss functions: reconstruction costs, weight penalties and autoencoder regularizers.

Every function returns per-example (unreduced) values unless it is a penalty on parameters,
takes its options as keywords, and checks shapes with a ValueError that names the problem.
The training step reduces (means over the batch) and logs each term separately.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

PENALTIES = ("none", "l1", "l2", "frobenius")


def _check_pair(name: str, x: jax.Array, y: jax.Array) -> None:
  if x.shape != y.shape:
    raise ValueError(f"{name}: shapes differ, {x.shape} (prediction) vs {y.shape} (target).")
  if x.ndim < 2:
    raise ValueError(f"{name}: expected a batch [B, ...] with ndim >= 2, got shape {x.shape}.")


def _sum_per_example(v: jax.Array) -> jax.Array:
  return v.reshape(v.shape[0], -1).sum(axis=1)


def mse(x_hat: jax.Array, x: jax.Array, *, reduction: str = "mean") -> jax.Array:
  """Squared error per example: (1/D) sum_d (x_hat_d - x_d)^2, or the sum with reduction="sum".

  Args:
    x_hat: reconstruction [B, ...].
    x: target [B, ...], same shape.
    reduction: "mean" over the D features of an example, or "sum" (the design's ||x - x_hat||^2).

  Returns:
    [B] per-example error.
  """
  _check_pair("mse", x_hat, x)
  d = jnp.square(x_hat - x)
  per = _sum_per_example(d)
  return per / (d.size // d.shape[0]) if reduction == "mean" else per


def bce_with_logits(logits: jax.Array, x: jax.Array, *, reduction: str = "mean") -> jax.Array:
  """Binary cross-entropy per example from logits, for targets x in [0, 1].

  l(x, x_hat) = -sum_d [x_d log sigmoid(l_d) + (1 - x_d) log(1 - sigmoid(l_d))]
              = sum_d [softplus(l_d) - x_d l_d]           (stable for any logit)

  Args:
    logits: decoder outputs before the sigmoid, [B, ...].
    x: targets in [0, 1] (pixel intensities), same shape.
    reduction: "mean" over features or "sum" (nats per example).

  Returns:
    [B] per-example cross-entropy.
  """
  _check_pair("bce_with_logits", logits, x)
  d = jax.nn.softplus(logits) - x * logits
  per = _sum_per_example(d)
  return per / (d.size // d.shape[0]) if reduction == "mean" else per


def reconstruction(kind: str, out: jax.Array, x: jax.Array) -> jax.Array:
  """Per-example reconstruction cost; `out` are decoder logits (sigmoid gives pixels)."""
  if kind == "mse":
    return mse(jax.nn.sigmoid(out), x)
  if kind == "bce":
    return bce_with_logits(out, x)
  raise ValueError(f"reconstruction: unknown kind {kind!r}; expected 'mse' or 'bce'.")


def _is_weight(path: tuple[Any, ...], leaf: jax.Array, exclude_bias: bool) -> bool:
  if not exclude_bias:
    return True
  name = str(getattr(path[-1], "key", getattr(path[-1], "name", path[-1])))
  return leaf.ndim > 1 and name not in ("bias", "b")


def weight_penalty(params: Any, *, kind: str, exclude_bias: bool = True) -> jax.Array:
  """Omega(W) summed over the weight matrices/kernels in a parameter pytree.

  l1:        sum_i |W_i|
  l2:        (1/2) sum_i W_i^2, weight decay as in the design's R(theta) = 1/2 (||W_e||^2 + ||W_d||^2);
             its gradient is lambda * W.
  frobenius: sum over matrices of ||W||_F^2, each conv kernel taken as the (kh*kw*c_in) x c_out
             matrix it applies; its gradient is 2 * lambda * W.
  Biases (and any 1-D leaf, e.g. norm scales) are left out unless exclude_bias=False.

  Returns:
    scalar penalty (multiply by lambda in the step).
  """
  if kind not in PENALTIES:
    raise ValueError(f"weight_penalty: unknown kind {kind!r}; expected one of {PENALTIES}.")
  if kind == "none":
    return jnp.zeros(())
  leaves = [
    leaf
    for path, leaf in jax.tree_util.tree_leaves_with_path(params)
    if _is_weight(path, leaf, exclude_bias)
  ]
  if kind == "l1":
    terms = [jnp.abs(w).sum() for w in leaves]
  elif kind == "l2":
    terms = [0.5 * jnp.square(w).sum() for w in leaves]
  else:
    terms = [jnp.square(jnp.linalg.norm(w.reshape(-1, w.shape[-1]), "fro")) for w in leaves]
  return sum(terms, jnp.zeros(()))


def sparsity(z: jax.Array) -> jax.Array:
  """Sparse-autoencoder penalty per example: ||z||_1 = sum_j |z_j| over the code [B, ...]."""
  if z.ndim < 2:
    raise ValueError(f"sparsity: expected codes [B, ...], got shape {z.shape}.")
  return _sum_per_example(jnp.abs(z))


def contractive(encode: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Contractive penalty per example: ||J_f(x)||_F^2 = sum_{j,d} (dz_j / dx_d)^2 (Rifai et al. 2011).

  The Jacobian of the encoder is taken by automatic differentiation, one example at a time
  (vmap of jacrev), so the batch dimension never mixes into the derivative. For a code of size
  k this costs k backward passes, which is the exact quantity and cheap for small codes.

  Args:
    encode: maps one batch [B, ...] to codes [B, k]; called here on batches of one example.
    x: inputs [B, ...].

  Returns:
    [B] squared Frobenius norms of the per-example Jacobians.
  """
  if x.ndim < 2:
    raise ValueError(f"contractive: expected inputs [B, ...], got shape {x.shape}.")

  def one(xi):
    jac = jax.jacrev(lambda v: encode(v[None])[0])(xi)
    return jnp.square(jac).sum()

  return jax.vmap(one)(x)


def corrupt(key: jax.Array, x: jax.Array, *, kind: str, level: float) -> jax.Array:
  """Denoising-autoencoder corruption of inputs in [0, 1] (the target stays the clean x).

  kind="gaussian": x + level * N(0, 1), clipped to [0, 1];
  kind="masking": each pixel set to 0 with probability `level`.
  """
  if kind == "gaussian":
    return jnp.clip(x + level * jax.random.normal(key, x.shape, x.dtype), 0.0, 1.0)
  if kind == "masking":
    return jnp.where(jax.random.bernoulli(key, level, x.shape), 0.0, x).astype(x.dtype)
  raise ValueError(f"corrupt: unknown kind {kind!r}; expected 'gaussian' or 'masking'.")


# ----------------------------------------------------------------------------------------------
# Variational autoencoders: log-likelihoods of the decoder, the Gaussian KL and the negative ELBO
# (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014; beta as in Higgins et al.,
# "beta-VAE", ICLR 2017). Everything is in nats, summed over pixels / latent dims, per example.
# ----------------------------------------------------------------------------------------------

LIKELIHOODS = ("bernoulli", "gaussian")
_LOG_2PI = 1.8378770664093453  # log(2 pi)


def _check_stats(name: str, mu: jax.Array, logvar: jax.Array) -> None:
  if mu.shape != logvar.shape:
    raise ValueError(f"{name}: mu {mu.shape} and logvar {logvar.shape} must have the same shape.")
  if mu.ndim < 1:
    raise ValueError(f"{name}: expected [..., D] statistics, got a scalar.")


def bernoulli_log_likelihood(logits: jax.Array, x: jax.Array) -> jax.Array:
  """log p(x | z) = sum_d [x_d log sigmoid(l_d) + (1 - x_d) log(1 - sigmoid(l_d))] per example.

  x in {0, 1} makes it a probability (binarized pixels); x in [0, 1] gives the negative binary
  cross-entropy, which is not a normalized density of grey pixels.

  Args:
    logits: decoder logits [B, ...]; x: targets, same shape.

  Returns:
    [B] log-likelihoods in nats (<= 0).
  """
  _check_pair("bernoulli_log_likelihood", logits, x)
  return -bce_with_logits(logits, x, reduction="sum")


def gaussian_log_likelihood(
  mean: jax.Array, x: jax.Array, *, logvar: jax.Array | float
) -> jax.Array:
  """log N(x; mean, diag exp(logvar)) = -1/2 sum_d [log 2 pi + logvar_d + (x_d - mean_d)^2 / exp(logvar_d)].

  Args:
    mean: decoder means [B, ...]; x: targets, same shape.
    logvar: log variance, a scalar or an array broadcastable to x (e.g. one value per pixel).

  Returns:
    [B] log-densities in nats (a density: it may be positive).
  """
  _check_pair("gaussian_log_likelihood", mean, x)
  logvar = jnp.broadcast_to(jnp.asarray(logvar, x.dtype), x.shape)
  d = _LOG_2PI + logvar + jnp.square(x - mean) * jnp.exp(-logvar)
  return -0.5 * _sum_per_example(d)


def log_likelihood(kind: str, out: jax.Array, x: jax.Array, *, x_logvar=None) -> jax.Array:
  """log p(x | z) per example from decoder outputs `out` (Bernoulli logits or Gaussian means)."""
  if kind == "bernoulli":
    return bernoulli_log_likelihood(out, x)
  if kind == "gaussian":
    if x_logvar is None:
      raise ValueError("log_likelihood: the Gaussian decoder needs x_logvar.")
    return gaussian_log_likelihood(out, x, logvar=x_logvar)
  raise ValueError(f"log_likelihood: unknown kind {kind!r}; expected one of {LIKELIHOODS}.")


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum_j [mu_j^2 + exp(logvar_j) - 1 - logvar_j].

  Closed form (Kingma & Welling 2014, appendix B), summed over the last axis.

  Args:
    mu, logvar: [..., D] posterior means and log variances.

  Returns:
    [...] KL in nats, >= 0, and 0 exactly at mu = 0, logvar = 0.
  """
  _check_stats("gaussian_kl", mu, logvar)
  return 0.5 * jnp.sum(jnp.square(mu) + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


def diag_gaussian_log_density(z: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(z; mu, diag exp(logvar)) summed over the last axis; [..., D] -> [...] (broadcasting)."""
  _check_stats("diag_gaussian_log_density", jnp.broadcast_to(mu, z.shape),
               jnp.broadcast_to(logvar, z.shape))  # fmt: skip
  return -0.5 * jnp.sum(_LOG_2PI + logvar + jnp.square(z - mu) * jnp.exp(-logvar), axis=-1)


def negative_elbo(
  out: jax.Array,
  x: jax.Array,
  mu: jax.Array,
  logvar: jax.Array,
  *,
  likelihood: str = "bernoulli",
  beta: float | jax.Array = 1.0,
  x_logvar=None,
) -> tuple[jax.Array, dict]:
  """Per-example negative ELBO with a weight beta on the KL (beta = 1: the true bound).

    -ELBO_beta(x) = -log p(x | z) + beta * KL(q(z | x) || N(0, I)),   z = mu + sigma * eps

  The reconstruction term is one Monte Carlo sample of -E_q[log p(x | z)], summed over pixels;
  the KL is in closed form, summed over latent dims. Kingma & Welling 2014, eq. 10; beta from
  Higgins et al. 2017.

  Args:
    out: decoder output for the sampled z, [B, H, W, C] (logits or Gaussian means).
    x: targets [B, H, W, C].
    mu, logvar: [B, D] statistics of q(z | x).
    likelihood: "bernoulli" or "gaussian".
    beta: weight of the KL term (a scalar; may be a traced value, e.g. during warm-up).
    x_logvar: Gaussian decoder log variance (scalar or broadcastable to x).

  Returns:
    (loss [B], {"recon": [B] = -log p(x | z), "kl": [B]}), all in nats.
  """
  if mu.ndim != 2 or mu.shape[0] != x.shape[0]:
    raise ValueError(f"negative_elbo: mu must be [B, D] with B = {x.shape[0]}, got {mu.shape}.")
  recon = -log_likelihood(likelihood, out, x, x_logvar=x_logvar)
  kl = gaussian_kl(mu, logvar)
  return recon + beta * kl, {"recon": recon, "kl": kl}


def beta_schedule(step, *, beta: float, warmup_steps: int = 0):
  """Linear KL warm-up: beta * min(1, step / warmup_steps) (Bowman et al. 2016); beta if no warm-up."""
  if warmup_steps <= 0:
    return beta * jnp.ones_like(jnp.asarray(step, jnp.float32))
  return beta * jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / warmup_steps)


# ---------------------------------------------------------------------------------------------
# GAN losses and critic penalties.
#
# D outputs a logit l (D(x) = sigmoid(l) for the minimax family, a real-valued critic score for
# hinge and Wasserstein). Written in logits, the log-probabilities are softplus terms:
#   -log D(x) = -log sigmoid(l) = softplus(-l),   -log(1 - D(x)) = -log sigmoid(-l) = softplus(l),
# which are finite and exact for any logit (no log of a rounded-off 0).
# ---------------------------------------------------------------------------------------------

GAN_D_KINDS = ("minimax", "hinge", "wasserstein")
GAN_G_KINDS = ("saturating", "non_saturating", "hinge", "wasserstein")


def _check_logits(name: str, **logits: jax.Array) -> None:
  for arg, v in logits.items():
    if not hasattr(v, "ndim") or v.ndim != 1:
      raise ValueError(f"{name}: {arg} must be per-example logits [B], got shape {v.shape}.")
  shapes = {arg: v.shape for arg, v in logits.items()}
  if len(set(shapes.values())) > 1:
    raise ValueError(f"{name}: logits shapes differ, {shapes}.")


def gan_d_loss(real_logits: jax.Array, fake_logits: jax.Array, *, kind: str) -> jax.Array:
  """Discriminator (critic) loss per example pair, to be minimized by D.

  minimax     L_D = -log D(x) - log(1 - D(G(z))) = softplus(-l_real) + softplus(l_fake)
              (Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1, negated).
  hinge       L_D = max(0, 1 - l_real) + max(0, 1 + l_fake)
              (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, SN-GAN).
  wasserstein L_D = l_fake - l_real, the negated Kantorovich-Rubinstein dual estimate
              (Arjovsky et al. 2017, "Wasserstein GAN"); needs a Lipschitz constraint such as
              gradient_penalty.

  Args:
    real_logits: D's outputs on real data [B].
    fake_logits: D's outputs on generated data [B].
    kind: "minimax", "hinge" or "wasserstein".

  Returns:
    [B] per-example losses (the step takes the mean).
  """
  _check_logits("gan_d_loss", real_logits=real_logits, fake_logits=fake_logits)
  if kind == "minimax":
    return jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
  if kind == "hinge":
    return jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits)
  if kind == "wasserstein":
    return fake_logits - real_logits
  raise ValueError(f"gan_d_loss: unknown kind {kind!r}; expected one of {GAN_D_KINDS}.")


def gan_g_loss(fake_logits: jax.Array, *, kind: str) -> jax.Array:
  """Generator loss per example, to be minimized by G.

  saturating      L_G = log(1 - D(G(z))) = -softplus(l): the original min-max objective
                  (Goodfellow et al. 2014). dL/dl = -sigmoid(l) -> 0 when D confidently rejects
                  the fakes (l -> -inf), so G learns nothing early in training.
  non_saturating  L_G = -log D(G(z)) = softplus(-l) (Goodfellow et al. 2014, sec. 3): same fixed
                  point, dL/dl = -(1 - sigmoid(l)) -> -1 where the saturating form vanishes.
  hinge           L_G = -l (Lim & Ye 2017; Miyato et al. 2018).
  wasserstein     L_G = -l (Arjovsky et al. 2017).

  Args:
    fake_logits: D's outputs on generated data [B].
    kind: "saturating", "non_saturating", "hinge" or "wasserstein".

  Returns:
    [B] per-example losses.
  """
  _check_logits("gan_g_loss", fake_logits=fake_logits)
  if kind == "saturating":
    return -jax.nn.softplus(fake_logits)
  if kind == "non_saturating":
    return jax.nn.softplus(-fake_logits)
  if kind in ("hinge", "wasserstein"):
    return -fake_logits
  raise ValueError(f"gan_g_loss: unknown kind {kind!r}; expected one of {GAN_G_KINDS}.")


def _critic_input_grad(critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """grad_x critic(x) for every example at once, [B, ...].

  The examples of a batch are independent (no batch statistics in the critic), so
  d(sum_b critic(x)_b)/dx_i = d critic(x)_i / dx_i: one backward pass of the summed output gives
  every per-example input gradient. A critic that mixes examples (batch norm in training mode)
  would break this; the penalties are meant for critics without it.
  """

  def total(v):
    out = critic(v)
    if out.shape != (x.shape[0],):
      raise ValueError(f"critic must map [B, ...] to logits [B]; got {out.shape} for {x.shape}.")
    return out.sum()

  return jax.grad(total)(x)


def gradient_penalty(
  critic: Callable[[jax.Array], jax.Array],
  x_real: jax.Array,
  x_fake: jax.Array,
  key: jax.Array,
  *,
  target: float = 1.0,
  eps: float = 1e-12,
) -> jax.Array:
  """WGAN-GP penalty per example: (||grad_x D(x_hat)||_2 - target)^2 (Gulrajani et al. 2017).

  x_hat = a x_real + (1 - a) x_fake with one a ~ U(0, 1) per example. The norm is
  sqrt(sum g^2 + eps): its derivative g / ||g|| is undefined at g = 0, and the eps keeps the
  penalty's gradient finite there (a critic that is flat at x_hat, e.g. at initialization).
  x_fake should already be under stop_gradient when only the critic is trained.

  Args:
    critic: x [B, ...] -> logits [B], examples independent (see _critic_input_grad).
    x_real, x_fake: [B, ...], same shape.
    key: PRNG key for the interpolation weights.
    target: the norm the penalty pulls toward (1 for a 1-Lipschitz critic).
    eps: added under the square root.

  Returns:
    [B] per-example penalties (the step multiplies the mean by lambda, 10 in the paper).
  """
  _check_pair("gradient_penalty", x_fake, x_real)
  a = jax.random.uniform(key, (x_real.shape[0],) + (1,) * (x_real.ndim - 1), x_real.dtype)
  x_hat = a * x_real + (1.0 - a) * x_fake
  g = _critic_input_grad(critic, x_hat)
  norm = jnp.sqrt(_sum_per_example(jnp.square(g)) + eps)
  return jnp.square(norm - target)


def r1_penalty(critic: Callable[[jax.Array], jax.Array], x_real: jax.Array) -> jax.Array:
  """R1 penalty per example: ||grad_x D(x)||_2^2 on real data (Mescheder et al. 2018).

  The regularized D loss is L_D + (gamma / 2) * mean(R1); the gradient is taken of the logit D
  outputs (not of sigmoid(D)), as in the paper.

  Args:
    critic: x [B, ...] -> logits [B], examples independent (see _critic_input_grad).
    x_real: [B, ...] real data.

  Returns:
    [B] squared gradient norms.
  """
  if x_real.ndim < 2:
    raise ValueError(f"r1_penalty: expected inputs [B, ...], got shape {x_real.shape}.")
  return _sum_per_example(jnp.square(_critic_input_grad(critic, x_real)))


# --- Faces: structural similarity, identity and feature-matching losses --------------------------


def gaussian_window(size: int, sigma: float) -> jax.Array:
  """The normalized 1-D Gaussian window of SSIM (Wang et al. 2004: size 11, sigma 1.5)."""
  t = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  g = jnp.exp(-0.5 * jnp.square(t / sigma))
  return g / g.sum()


def _valid_filter_matrix(n: int, taps: jax.Array) -> jax.Array:
  """[n - k + 1, n] banded matrix M with (M v)[i] = sum_t taps[t] v[i + t]: a 'VALID' 1-D filter."""
  k = taps.shape[0]
  offset = jnp.arange(n)[None, :] - jnp.arange(n - k + 1)[:, None]
  return jnp.where((offset >= 0) & (offset < k), taps[jnp.clip(offset, 0, k - 1)], 0.0)


def ssim(
  x: jax.Array,
  y: jax.Array,
  *,
  max_val: float = 1.0,
  filter_size: int = 11,
  sigma: float = 1.5,
  k1: float = 0.01,
  k2: float = 0.03,
) -> jax.Array:
  """Mean structural similarity per example (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004).

  SSIM(p) = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
  with mu, s^2, s_xy the local means, variances and covariance under an 11x11 Gaussian window
  (sigma 1.5), C1 = (k1 L)^2, C2 = (k2 L)^2, L = max_val; averaged over the valid window
  positions and the channels.

  The Gaussian window is separable, so each local moment is two 1-D 'VALID' filters, written as
  products with banded matrices (rows, then columns; precision "highest" keeps float32 on
  accelerators). The usual depthwise 11x11 convolution computes the same values, but its forward
  and backward are far slower on XLA:CPU (scripts/bench_ssim.py compares the two).

  Args:
    x, y: images [B, H, W, C] (H, W >= filter_size).

  Returns:
    [B] mean SSIM (1 for identical images).
  """
  _check_pair("ssim", x, y)
  if x.ndim != 4 or min(x.shape[1:3]) < filter_size:
    raise ValueError(f"ssim: want images [B, H, W, C] with H, W >= {filter_size}, got {x.shape}.")
  g = gaussian_window(filter_size, sigma)
  rows = _valid_filter_matrix(x.shape[1], g).astype(x.dtype)
  cols = _valid_filter_matrix(x.shape[2], g).astype(x.dtype)
  moments = jnp.stack([x, y, x * x, y * y, x * y])  # [5, B, H, W, C], blurred together
  moments = jnp.einsum("ih,nbhwc->nbiwc", rows, moments, precision="highest")
  mu_x, mu_y, e_xx, e_yy, e_xy = jnp.einsum("jw,nbiwc->nbijc", cols, moments, precision="highest")

  c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
  s_xx = e_xx - mu_x**2
  s_yy = e_yy - mu_y**2
  s_xy = e_xy - mu_x * mu_y
  num = (2 * mu_x * mu_y + c1) * (2 * s_xy + c2)
  den = (mu_x**2 + mu_y**2 + c1) * (s_xx + s_yy + c2)
  return (num / den).mean(axis=(1, 2, 3))


def dssim(x: jax.Array, y: jax.Array, **kw) -> jax.Array:
  """Structural dissimilarity per example, (1 - SSIM(x, y)) / 2 in [0, 1] (the face-swap tools'
  reconstruction term next to MSE). Options as in `ssim`. Returns [B]."""
  return (1.0 - ssim(x, y, **kw)) / 2.0


def face_weighted(x_hat: jax.Array, target: jax.Array, region: jax.Array, background: float):
  """x_hat pulled towards target off the face: target + w (x_hat - target), w = 1 on the face and
  `background` off it (region [B, H, W] in [0, 1], the face region). A reconstruction loss of the
  result against target weights x_hat's error by w per pixel (w^2 for the squared error), so a
  face-swap decoder spends its capacity where the paste-back uses it. Returns x_hat's shape."""
  w = (background + (1.0 - background) * region)[..., None]
  return target + w * (x_hat - target)


def identity_loss(v_result: jax.Array, v_source: jax.Array, *, eps: float = 1e-8) -> jax.Array:
  """Identity loss per example, 1 - cos(v_result, v_source) in [0, 2] (SimSwap, Chen et al. 2020).

  Args:
    v_result: identity embeddings of the swapped faces [B, D].
    v_source: identity embeddings of the source faces [B, D].

  Returns:
    [B]; 0 when the vectors point the same way.
  """
  _check_pair("identity_loss", v_result, v_source)
  if v_result.ndim != 2:
    raise ValueError(f"identity_loss: want embeddings [B, D], got shape {v_result.shape}.")
  dot = (v_result * v_source).sum(-1)
  norms = jnp.linalg.norm(v_result, axis=-1) * jnp.linalg.norm(v_source, axis=-1)
  return 1.0 - dot / jnp.maximum(norms, eps)


def uniform_confusion(logits: jax.Array) -> jax.Array:
  """KL(uniform || softmax(logits)) per example [B] for logits [B, K]: -log K - mean_k log p_k.

  0 exactly when the classifier's prediction is uniform: the loss of an encoder that hides the
  class from a classifier of its code (a latent adversary; Lample et al. 2017, Fader Networks)
  without pushing it to the wrong class, as maximizing the classifier's cross-entropy would."""
  if logits.ndim != 2:
    raise ValueError(f"uniform_confusion: want logits [B, K], got shape {logits.shape}.")
  k = logits.shape[-1]
  return -jnp.log(k) - jax.nn.log_softmax(logits, axis=-1).mean(-1)


def feature_matching(feats_fake, feats_real) -> jax.Array:
  """Feature-matching loss per example: sum over layers l of mean |D_l(fake) - D_l(real)|
  (pix2pixHD, Wang et al. 2018; SimSwap's "weak" variant passes only the last layers).

  Args:
    feats_fake, feats_real: sequences of discriminator feature maps, pairwise of equal shape [B, ...].

  Returns:
    [B].
  """
  if len(feats_fake) != len(feats_real) or not feats_fake:
    raise ValueError(
      f"feature_matching: want two equally long, non-empty lists of features, got "
      f"{len(feats_fake)} and {len(feats_real)}."
    )
  total = 0.0
  for a, b in zip(feats_fake, feats_real, strict=True):
    _check_pair("feature_matching", a, b)
    total = total + _sum_per_example(jnp.abs(a - b)) / (a.size // a.shape[0])
  return total


def margin_softmax(
  embeddings: jax.Array,
  class_weights: jax.Array,
  labels: jax.Array,
  *,
  kind: str = "cosface",
  scale: float = 30.0,
  margin: float = 0.35,
) -> jax.Array:
  """Additive-margin softmax cross-entropy per example, for face-identity embeddings.

  With cos_k = <e / |e|, w_k / |w_k|> the cosine between the embedding and class k's weight:
    cosface (Wang et al., CVPR 2018):  logit_y = s (cos_y - m),        logit_k = s cos_k (k != y)
    arcface (Deng et al., CVPR 2019):  logit_y = s cos(theta_y + m),   theta_y = arccos(cos_y)
  and the loss is the softmax cross-entropy of these logits with the true class y. margin = 0
  gives the normalized softmax (both kinds agree).

  Args:
    embeddings: [B, D]; class_weights: [D, K]; labels: int [B] in [0, K).

  Returns:
    [B] per-example cross-entropy (nats).
  """
  if (
    embeddings.ndim != 2 or class_weights.ndim != 2 or class_weights.shape[0] != embeddings.shape[1]
  ):
    raise ValueError(
      f"margin_softmax: want embeddings [B, D] and class_weights [D, K]; got {embeddings.shape} "
      f"and {class_weights.shape}."
    )
  if labels.shape != embeddings.shape[:1]:
    raise ValueError(f"margin_softmax: want labels [B], got {labels.shape}.")
  e = embeddings / jnp.maximum(jnp.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
  w = class_weights / jnp.maximum(jnp.linalg.norm(class_weights, axis=0, keepdims=True), 1e-12)
  cos = e @ w
  cos_y = jnp.take_along_axis(cos, labels[:, None], axis=1)[:, 0]
  if kind == "cosface":
    target = cos_y - margin
  elif kind == "arcface":
    target = jnp.cos(jnp.arccos(jnp.clip(cos_y, -1.0 + 1e-7, 1.0 - 1e-7)) + margin)
  else:
    raise ValueError(f"margin_softmax: unknown kind {kind!r}; expected 'cosface' or 'arcface'.")
  onehot = jax.nn.one_hot(labels, cos.shape[1], dtype=cos.dtype)
  logits = scale * (cos + onehot * (target - cos_y)[:, None])
  return -(jax.nn.log_softmax(logits, axis=1) * onehot).sum(axis=1)
