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


# --- Faces: structural similarity, identity and feature-matching losses --------------------------


def _gaussian_window(size: int, sigma: float) -> jax.Array:
  t = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  g = jnp.exp(-0.5 * jnp.square(t / sigma))
  return g / g.sum()


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

  Args:
    x, y: images [B, H, W, C] (H, W >= filter_size).

  Returns:
    [B] mean SSIM (1 for identical images).
  """
  _check_pair("ssim", x, y)
  if x.ndim != 4 or min(x.shape[1:3]) < filter_size:
    raise ValueError(f"ssim: want images [B, H, W, C] with H, W >= {filter_size}, got {x.shape}.")
  c = x.shape[-1]
  g = _gaussian_window(filter_size, sigma)
  kernel = jnp.tile((g[:, None] * g[None, :])[:, :, None, None], (1, 1, 1, c))  # depthwise HWIO

  def blur(v):
    return jax.lax.conv_general_dilated(
      v, kernel.astype(v.dtype), (1, 1), "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
    )  # fmt: skip

  c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
  mu_x, mu_y = blur(x), blur(y)
  s_xx = blur(x * x) - mu_x**2
  s_yy = blur(y * y) - mu_y**2
  s_xy = blur(x * y) - mu_x * mu_y
  num = (2 * mu_x * mu_y + c1) * (2 * s_xy + c2)
  den = (mu_x**2 + mu_y**2 + c1) * (s_xx + s_yy + c2)
  return (num / den).mean(axis=(1, 2, 3))


def dssim(x: jax.Array, y: jax.Array, **kw) -> jax.Array:
  """Structural dissimilarity per example, (1 - SSIM(x, y)) / 2 in [0, 1] (the face-swap tools'
  reconstruction term next to MSE). Options as in `ssim`. Returns [B]."""
  return (1.0 - ssim(x, y, **kw)) / 2.0


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
