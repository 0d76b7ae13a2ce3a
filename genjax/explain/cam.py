"""CAM, Grad-CAM and Grad-CAM++ for every layer and class in one jitted, batched call.

For a layer with activation A [h, w, C] and an explained score Y^c of class c:

  CAM       (Zhou et al. 2016)          M = sum_k W[k, c] A^k  (last layer -> GAP -> linear head only)
  Grad-CAM  (Selvaraju et al. 2017)     w_k = 1/(hw) sum_ab dY/dA_ab^k,        M = sum_k w_k A^k
  Grad-CAM++ (Chattopadhay et al. 2018) w_k = sum_ab alpha_ab^k relu(dY/dA_ab^k), M = sum_k w_k A^k,
      alpha_ab^k = d2Y / (2 d2Y + sum_ij A_ij^k d3Y),  dnY = d^nY / (dA_ab^k)^n  (diagonal derivatives)

The score Y is explicit: "logit" (S^c), "exp" (exp(S^c), the Grad-CAM++ paper's choice) or "softmax"
(p^c). Grad-CAM++'s alpha is defined through exp(S^c) in the paper; with score="logit" we keep that
definition (alpha from the derivatives of exp(S^c), weights from relu(dS^c/dA)), which is the "exp"
map divided by exp(S^c): the same map up to a positive factor per class.

The derivatives d2Y, d3Y come two ways:
  "closed_form": assume d2S/dA2 = 0 (exact when the network above A is piecewise linear, e.g. ReLU,
      max pooling, affine batch norm); with g_j = dS^j/dA:
        exp:     d1 = Y g_c,   d2 = Y g_c^2,          d3 = Y g_c^3                  (the paper)
        softmax: d1 = p u,     d2 = p (u^2 - v),      d3 = p (u^3 - 3 u v - m3),
                 u = g_c - sum_j p_j g_j, v and m3 the 2nd and 3rd central moments of g_j under p;
  "exact": automatic differentiation of the network itself, third-order forward mode (nested jvp)
      along each coordinate of A; exact for any activation (gelu, softplus) and any score.

Maps come back raw (signed, at the layer's resolution and upsampled bilinearly to the input) and as
relu(M) / max relu(M) in [0, 1] (all-zero when the map has no positive part: never 0/0).
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

SCORES = ("logit", "exp", "softmax")
METHODS = ("cam", "gradcam", "gradcam++")
DERIVATIVES = ("closed_form", "exact")


def score_fn(kind: str):
  """logits [..., K] -> scores [..., K] for score kind 'logit', 'exp' or 'softmax'."""
  if kind == "logit":
    return lambda s: s
  if kind == "exp":
    return jnp.exp
  if kind == "softmax":
    return jax.nn.softmax
  raise ValueError(f"unknown score {kind!r}; expected one of {SCORES}.")


def logit_gradients(model, x: jax.Array, layers: Sequence[str]) -> tuple[jax.Array, dict, dict]:
  """Logits, activations and g = dS^j/dA for every class j and layer, in one reverse sweep.

  Returns (logits [B, K], {layer: A [B, h, w, C]}, {layer: g [K, B, h, w, C]}). The logits are summed
  over the batch before differentiating: with the model in inference mode examples do not interact,
  so d(sum_b S_b^j)/dA_b = dS_b^j/dA_b.
  """
  logits, aux = model(x)
  feats = {name: aux["features"][name] for name in layers}
  zeros = {name: jnp.zeros_like(a) for name, a in feats.items()}
  grads = jax.jacrev(lambda d: model(x, perturb=d)[0].sum(0))(zeros)
  return logits, feats, grads


def closed_form_derivatives(logits: jax.Array, g: jax.Array, score: str):
  """d1, d2, d3 of the score [K, B, h, w, C] from the logit gradients g, assuming d2S/dA2 = 0."""
  if score in ("logit", "exp"):  # alpha always from exp(S); d1 from the score itself
    y = jnp.exp(logits).T[:, :, None, None, None]
    d1 = g if score == "logit" else y * g
    return d1, y * g**2, y * g**3
  if score == "softmax":
    p = jax.nn.softmax(logits).T[:, :, None, None, None]  # [K, B, 1, 1, 1]
    g_bar = (p * g).sum(0)
    dev = g - g_bar
    v, m3 = (p * dev**2).sum(0), (p * dev**3).sum(0)
    return p * dev, p * (dev**2 - v), p * (dev**3 - 3 * dev * v - m3)
  raise ValueError(f"unknown score {score!r}; expected one of {SCORES}.")


def diagonal_derivatives(f, a: jax.Array, *, chunk: int = 64):
  """First three diagonal derivatives d^n f_{b,j} / (d a_{b,i})^n, n = 1, 2, 3, by forward mode.

  f: a [B, *S] -> [B, K] with examples independent (so one direction may move coordinate i of every
  example at once). For each coordinate i, t -> f(a + t e_i) is differentiated three times at 0 with
  nested jvp (forward-over-forward-over-forward); coordinates run in chunks of `chunk` under vmap.
  Returns three arrays [K, B, *S].
  """
  shape = a.shape[1:]
  n = math.prod(shape)

  def along(i):
    e = jax.nn.one_hot(i, n, dtype=a.dtype).reshape(shape)
    g = lambda t: f(a + t * e)
    d1 = lambda t: jax.jvp(g, (t,), (jnp.ones_like(t),))[1]
    d2 = lambda t: jax.jvp(d1, (t,), (jnp.ones_like(t),))[1]
    t0 = jnp.zeros((), a.dtype)
    second, third = jax.jvp(d2, (t0,), (jnp.ones_like(t0),))
    return d1(t0), second, third

  out = jax.lax.map(along, jnp.arange(n), batch_size=min(chunk, n))  # 3 x [n, B, K]
  return tuple(d.transpose(2, 1, 0).reshape(d.shape[2], d.shape[1], *shape) for d in out)


def exact_derivatives(model, layer: str, a: jax.Array, score: str, *, chunk: int = 64):
  """d1, d2, d3 [K, B, h, w, C] of the score by differentiating the network above `layer`.

  For score="logit", d2 and d3 are those of exp(S) (Grad-CAM++'s definition of alpha) and d1 that
  of S. Costs 3rd-order forward mode of the network above the layer once per coordinate of A.
  """
  head = lambda v: model.logits_from(layer, v)
  d1, d2, d3 = diagonal_derivatives(
    lambda v: score_fn("exp" if score == "logit" else score)(head(v)), a, chunk=chunk
  )
  if score == "logit":  # dS/dA itself, by reverse mode (exact too)
    zero = jnp.zeros_like(a)
    d1 = jax.jacrev(lambda d: head(a + d).sum(0))(zero)
  return d1, d2, d3


def gradcam_weights(d1: jax.Array) -> jax.Array:
  """w_k = mean over positions of dY/dA^k: [K, B, h, w, C] -> [K, B, C]."""
  return d1.mean(axis=(2, 3))


def gradcam_pp_weights(
  a: jax.Array, d1: jax.Array, d2: jax.Array, d3: jax.Array, *, normalize_alpha: bool = False
) -> jax.Array:
  """w_k = sum_ab alpha_ab^k relu(d1_ab^k), alpha = d2 / (2 d2 + sum_ab A_ab^k d3): [K, B, C].

  alpha = 0 where the denominator vanishes (no curvature: the position carries no weight).
  normalize_alpha=True divides alpha by its sum over positions per channel, as tf-keras-vis'
  GradcamPlusPlus does (not in the paper; it changes the relative weight of channels).
  """
  a_sum = a.sum(axis=(1, 2), keepdims=True)[None]  # [1, B, 1, 1, C]
  denom = 2 * d2 + a_sum * d3
  alpha = jnp.where(denom == 0, 0.0, d2 / jnp.where(denom == 0, 1.0, denom))
  if normalize_alpha:
    total = alpha.sum(axis=(2, 3), keepdims=True)
    alpha = alpha / jnp.where(total == 0, 1.0, total)
  return (alpha * jax.nn.relu(d1)).sum(axis=(2, 3))


def weighted_map(a: jax.Array, w: jax.Array) -> jax.Array:
  """M = sum_k w_k A^k: A [B, h, w, C], w [K, B, C] -> [B, K, h, w]."""
  return jnp.einsum("bhwc,kbc->bkhw", a, w)


def normalize(m: jax.Array) -> jax.Array:
  """relu(M) / max relu(M) per map (over the last two axes); an all-nonpositive map gives zeros."""
  r = jax.nn.relu(m)
  top = r.max(axis=(-2, -1), keepdims=True)
  return jnp.where(top > 0, r / jnp.where(top > 0, top, 1.0), 0.0)


def upsample(m: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Bilinear resize of maps [..., h, w] to [..., H, W] (on the device)."""
  return jax.image.resize(m, (*m.shape[:-2], *size), method="bilinear")


def explain(
  model,
  x: jax.Array,
  *,
  layers: Sequence[str],
  methods: Sequence[str] = METHODS,
  score: str = "exp",
  derivatives: str = "closed_form",
  normalize_alpha: bool = False,
  chunk: int = 64,
) -> dict:
  """Maps of every class for `layers` x `methods` on the batch x [B, H, W, C].

  Returns {method: {layer: {"raw": [B, K, h, w] signed, "raw_up": [B, K, H, W],
  "map": [B, K, H, W] relu-normalized}}}, plus "logits" [B, K]. CAM is only defined for the layer
  that feeds the pooled linear head (the last one); other layers are skipped for "cam".
  """
  for m in methods:
    if m not in METHODS:
      raise ValueError(f"unknown method {m!r}; expected one of {METHODS}.")
  if derivatives not in DERIVATIVES:
    raise ValueError(f"unknown derivatives {derivatives!r}; expected one of {DERIVATIVES}.")
  score_fn(score)  # validates
  unknown = [name for name in layers if name not in model.layers]
  if unknown:
    raise ValueError(f"unknown layers {unknown}; the model has {list(model.layers)}.")
  logits, feats, grads = logit_gradients(model, x, layers)
  out = {"logits": logits}
  for m in methods:
    out[m] = {}
  for name in layers:
    a, g = feats[name], grads[name]
    d1, d2, d3 = closed_form_derivatives(logits, g, score)
    if derivatives == "exact":
      d1, d2, d3 = exact_derivatives(model, name, a, score, chunk=chunk)
    raw = {}
    if "cam" in methods and name == model.layers[-1]:
      raw["cam"] = weighted_map(a, jnp.broadcast_to(model.head.kernel[...].T[:, None], (
        logits.shape[-1], a.shape[0], a.shape[-1])))  # fmt: skip
    if "gradcam" in methods:
      raw["gradcam"] = weighted_map(a, gradcam_weights(d1))
    if "gradcam++" in methods:
      raw["gradcam++"] = weighted_map(
        a, gradcam_pp_weights(a, d1, d2, d3, normalize_alpha=normalize_alpha)
      )
    for m, r in raw.items():
      up = upsample(r, x.shape[1:3])
      out[m][name] = {"raw": r, "raw_up": up, "map": upsample(normalize(r), x.shape[1:3])}
  return out


def make_explainer(graphdef: nnx.GraphDef, **kw):
  """jit(fn(params, rest, x) -> explain(model, x, **kw)) with the model merged in inference mode."""

  @jax.jit
  def fn(params, rest, x):
    model = nnx.merge(graphdef, params, rest)
    model.eval()
    return explain(model, x, **kw)

  return fn


@jax.jit
def predicted_class_maps(maps: jax.Array, logits: jax.Array) -> jax.Array:
  """[B, K, H, W] maps, [B, K] logits -> the map of each image's predicted class [B, H, W]."""
  c = jnp.argmax(logits, -1)
  return jnp.take_along_axis(maps, c[:, None, None, None], axis=1)[:, 0]
