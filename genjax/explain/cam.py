"""Class activation maps of any Flax model: CAM, Grad-CAM, Grad-CAM++ and seven relatives.

    maps = explain(model, x, layers=("layer4.1",), targets=labels, methods=("gradcam++",))
    maps["gradcam++"]["layer4.1"]["map"]        # [B, T, H, W] in [0, 1]

`model` is an nnx.Module mapping images to outputs, or a function of x (with its params: a pair
`(fn, params)`, fn(params, x)) that calls linen modules; layers are dotted module paths
(genjax.explain.taps). If the model returns a tuple, its first element is the output explained.

For a layer with activation A [h, w, C] and an explained score Y of target t (gradients
g = dY/dA, sums over positions ab):

  cam         Zhou et al. 2016        M = sum_k W[k, t] A^k      (layer -> GAP -> linear head)
  gradcam     Selvaraju et al. 2017   w_k = mean_ab g_ab^k,       M = sum_k w_k A^k
  gradcam++   Chattopadhay et al. 18  w_k = sum_ab alpha_ab^k relu(g_ab^k),
                                      alpha = d2Y / (2 d2Y + sum_ij A_ij^k d3Y)  (diagonal derivatives)
  hirescam    Draelos & Carin 2020    M = sum_k g^k * A^k          (elementwise: no pooled weights)
  xgradcam    Fu et al. 2020          w_k = sum_ab A_ab^k g_ab^k / sum_ab A_ab^k
  layercam    Jiang et al. 2021       M = sum_k relu(g^k) * A^k
  eigencam    Muhammad & Yeasin 2020  M = A v_1, v_1 the first right singular vector of A [hw, C]
                                      (class-agnostic; sign such that sum M >= 0)
  scorecam    Wang et al. 2020        w_k = Y(x * H^k) - Y(x_b),  H^k = A^k upsampled, min-max
                                      scaled to [0, 1]; x_b = 0 (the paper's increase of confidence)
  ablationcam Desai & Ramaswamy 2020  w_k = (Y - Y_k) / Y,  Y_k with channel k of A set to 0
  smoothgradcam++ Omeiza et al. 2019  Grad-CAM++ with d1, d2, d3 averaged over `samples` inputs
                                      x + N(0, (noise (max x - min x))^2); A of the clean input

Every map is relu'd and normalized afterwards ("map"); "raw" keeps its sign.

Scores and targets. `targets` picks what is explained: None (every output, [B, K] -> T = K),
int [B] or [B, T] (class indices), top_k(k), or a function of the output [B, ...] -> [B] or [B, T]
acting per example (a probability, a regression value, a mask sum, a cosine to an embedding).
Gradient methods cost one backward pass per target. For class indices, `score` is "logit" (S),
"exp" (exp(S), the Grad-CAM++ paper's) or "softmax" (p); a function's value is S itself.

Numerics of exp. Y = exp(S) overflows float32 beyond S ~ 88, but it only ever scales a map: with
s = S along an activation coordinate, d^n exp(s) = exp(s) e_n, e1 = s', e2 = s'' + s'^2,
e3 = s''' + 3 s' s'' + s'^3, so alpha = e2 / (2 e2 + sum A e3) and Grad-CAM++'s closed form
(s'' = 0) is alpha = 1 / (2 + sum_ab A_ab g_ab). Maps of score "exp" are returned divided by
exp(S) (out["log_scale"] = S; 0 for the other scores), which leaves "map" unchanged and keeps
"raw" finite for any logit. Grad-CAM++'s alpha is always that of exp(S) (the paper's definition);
with score "logit" its weights use relu(dS/dA), the same map.

Derivatives for Grad-CAM++: "closed_form" assumes d2S/dA2 = 0 above the layer (exact for ReLU,
max-pooling, affine networks; for softmax: d1 = p u, d2 = p (u^2 - v), d3 = p (u^3 - 3uv - m3)
with u = g_t - sum_j p_j g_j and v, m3 the central moments of the logit gradients g_j under p,
which needs all K logit gradients); "exact" differentiates the network above the layer three
times in forward mode along each activation coordinate.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from genjax.explain import taps

SCORES = ("logit", "exp", "softmax")
METHODS = ("cam", "gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam",
           "scorecam", "ablationcam", "smoothgradcam++")  # fmt: skip
GRADIENT_METHODS = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
DERIVATIVES = ("closed_form", "exact")
SCORECAM_WEIGHTS = ("increase", "softmax")


@dataclasses.dataclass(frozen=True)
class TopK:
  """Explain each image's k highest outputs."""

  k: int


def top_k(k: int) -> TopK:
  if k < 1:
    raise ValueError(f"top_k needs k >= 1, got {k}.")
  return TopK(int(k))


@dataclasses.dataclass(frozen=True)
class Tokens:
  """A token sequence [B, prefix + h w, D] seen as a grid [B, h, w, D] (the prefix, e.g. a class
  token, is left out of the map and kept unchanged by edits)."""

  h: int
  w: int
  prefix: int = 1

  def to_grid(self, y: jax.Array) -> jax.Array:
    if y.ndim != 3 or y.shape[1] != self.prefix + self.h * self.w:
      raise ValueError(
        f"Tokens(h={self.h}, w={self.w}, prefix={self.prefix}) expects [B, "
        f"{self.prefix + self.h * self.w}, D], got {tuple(y.shape)}."
      )
    return y[:, self.prefix :].reshape(y.shape[0], self.h, self.w, y.shape[-1])

  def from_grid(self, g: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.concatenate([y[:, : self.prefix], g.reshape(g.shape[0], -1, g.shape[-1])], axis=1)


@dataclasses.dataclass(frozen=True)
class _Options:
  layers: tuple[str, ...]
  methods: tuple[str, ...]
  score: str
  derivatives: str
  grids: tuple  # ((layer, Tokens | None), ...)
  head: str | None
  targets: object  # None | "indices" | TopK | callable
  normalize_alpha: bool
  scorecam_weights: str
  samples: int
  noise: float
  batch_size: int
  chunk: int


# ----------------------------------------------------------------------------- building blocks


def main_output(out):
  """The explained output of a model call: the first element of a tuple, else the output."""
  return out[0] if isinstance(out, tuple | list) else out


def target_scores(o: jax.Array, idx, targets, score: str) -> jax.Array:
  """Working scores [N, T] of outputs o [N, ...]: S for "logit"/"exp" (exp is factored out), p for
  "softmax"; idx [N, T] class indices (None for a function target)."""
  if callable(targets) and not isinstance(targets, TopK):
    s = targets(o)
    return s[:, None] if s.ndim == 1 else s
  z = jax.nn.softmax(o, axis=-1) if score == "softmax" else o
  return jnp.take_along_axis(z, idx, axis=-1)


def closed_form_alpha(a: jax.Array, g: jax.Array) -> jax.Array:
  """Grad-CAM++'s alpha for Y = exp(S), d2S = 0: 1 / (2 + sum_ab A_ab g_ab) where g != 0, else 0.

  a [B, h, w, C], g [T, B, h, w, C]. The exp(S) g^2 factors of d2 and d3 cancel exactly, so no
  power of g (which underflows) or of exp(S) (which overflows) is formed.
  """
  denom = 2 + a.sum(axis=(1, 2))[None, :, None, None, :] * g
  ok = (g != 0) & (denom != 0)
  return jnp.where(ok, 1.0 / jnp.where(ok, denom, 1.0), 0.0)


def ratio_alpha(a: jax.Array, d2: jax.Array, d3: jax.Array) -> jax.Array:
  """alpha = d2 / (2 d2 + sum_ab A_ab d3), 0 where the denominator vanishes: [T, B, h, w, C]."""
  denom = 2 * d2 + a.sum(axis=(1, 2))[None, :, None, None, :] * d3
  return jnp.where(denom == 0, 0.0, d2 / jnp.where(denom == 0, 1.0, denom))


def gradcam_pp_weights(alpha: jax.Array, d1: jax.Array, *, normalize_alpha: bool = False):
  """w_k = sum_ab alpha_ab^k relu(d1_ab^k): [T, B, h, w, C] -> [T, B, C].

  normalize_alpha=True divides alpha by its sum over positions per channel, as tf-keras-vis'
  GradcamPlusPlus does (not in the paper; it changes the relative weight of channels).
  """
  if normalize_alpha:
    total = alpha.sum(axis=(2, 3), keepdims=True)
    alpha = alpha / jnp.where(total == 0, 1.0, total)
  return (alpha * jax.nn.relu(d1)).sum(axis=(2, 3))


def weighted_map(a: jax.Array, w: jax.Array) -> jax.Array:
  """M = sum_k w_k A^k: A [B, h, w, C], w [T, B, C] -> [B, T, h, w]."""
  return jnp.einsum("bhwc,tbc->bthw", a, w)


def elementwise_map(a: jax.Array, e: jax.Array) -> jax.Array:
  """M = sum_k e^k * A^k: A [B, h, w, C], e [T, B, h, w, C] -> [B, T, h, w]."""
  return jnp.einsum("bhwc,tbhwc->bthw", a, e)


def eigen_map(a: jax.Array) -> jax.Array:
  """A v_1 per image: [B, h, w, C] -> [B, h, w], the sign making sum >= 0."""
  b, h, w, c = a.shape
  flat = a.reshape(b, h * w, c)
  _, _, vt = jnp.linalg.svd(flat, full_matrices=False)
  m = jnp.einsum("bnc,bc->bn", flat, vt[:, 0])
  return (m * jnp.where(m.sum(-1, keepdims=True) < 0, -1.0, 1.0)).reshape(b, h, w)


def normalize(m: jax.Array) -> jax.Array:
  """relu(M) / max relu(M) per map (over the last two axes); an all-nonpositive map gives zeros."""
  r = jax.nn.relu(m)
  top = r.max(axis=(-2, -1), keepdims=True)
  return jnp.where(top > 0, r / jnp.where(top > 0, top, 1.0), 0.0)


def minmax(m: jax.Array) -> jax.Array:
  """(M - min) / (max - min) per map over the last two axes; a constant map gives zeros."""
  lo, hi = m.min(axis=(-2, -1), keepdims=True), m.max(axis=(-2, -1), keepdims=True)
  return jnp.where(hi > lo, (m - lo) / jnp.where(hi > lo, hi - lo, 1.0), 0.0)


def upsample(m: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Bilinear resize of maps [..., h, w] to [..., H, W] (on the device)."""
  return jax.image.resize(m, (*m.shape[:-2], *size), method="bilinear")


def diagonal_derivatives(f, a: jax.Array, *, chunk: int = 64):
  """First three diagonal derivatives d^n f_{b,t} / (d a_{b,i})^n, n = 1, 2, 3, by forward mode.

  f: a [B, *S] -> [B, T] with examples independent (so one direction may move coordinate i of every
  example at once). For each coordinate i, t -> f(a + t e_i) is differentiated three times at 0 with
  nested jvp (forward-over-forward-over-forward); coordinates run in chunks of `chunk` under vmap.
  Returns three arrays [T, B, *S].
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

  out = jax.lax.map(along, jnp.arange(n), batch_size=min(chunk, n))  # 3 x [n, B, T]
  return tuple(d.transpose(2, 1, 0).reshape(d.shape[2], d.shape[1], *shape) for d in out)


def exp_derivatives(s1, s2, s3):
  """(e1, e2, e3) = d^n exp(s) / exp(s) from the derivatives of s (no exp formed)."""
  return s1, s2 + s1**2, s3 + 3 * s1 * s2 + s1**3


def softmax_closed_form(p: jax.Array, g: jax.Array, idx: jax.Array):
  """(d1, d2 / p, d3 / p) of p_t assuming d2S = 0: p [B, K], logit gradients g [K, B, ...], idx
  [B, T] -> three [T, B, ...] arrays (d2, d3 given divided by p_t, which cancels in alpha)."""
  pk = p.T.reshape(p.shape[1], p.shape[0], *([1] * (g.ndim - 2)))  # [K, B, 1, ...]
  g_bar = (pk * g).sum(0)
  dev = g - g_bar  # [K, B, ...]
  v, m3 = (pk * dev**2).sum(0), (pk * dev**3).sum(0)
  u = jnp.moveaxis(jnp.take_along_axis(jnp.moveaxis(dev, 0, -1), idx.reshape(
    idx.shape[0], *([1] * (g.ndim - 2)), idx.shape[1]), axis=-1), -1, 0)  # fmt: skip
  pt = jnp.take_along_axis(p, idx, -1).T.reshape(*idx.shape[::-1], *([1] * (g.ndim - 2)))
  return pt * u, u**2 - v, u**3 - 3 * u * v - m3


# ----------------------------------------------------------------------------- the explanation


def _model_fn(kind, args):
  """(call(x, edits) -> (output, acts), head(path) -> (W [C, K], b [K]) or None)."""
  tag, obj = kind
  if tag == "nnx":
    model = nnx.merge(obj, args)
    model.eval()
    runner = model

    def head(path):
      if path is None:
        linears = [m for p, m in taps.module_paths(model).items() if isinstance(m, nnx.Linear)]
        if not linears:
          raise ValueError("CAM needs a final linear layer; the model has no nnx.Linear.")
        lin = linears[-1]
      else:
        lin, _ = taps.resolve(model, path)
      if not hasattr(lin, "kernel") or lin.kernel[...].ndim != 2:
        raise ValueError(f"CAM's head {path!r} is not a linear layer with a [C, K] kernel.")
      bias = lin.bias[...] if getattr(lin, "bias", None) is not None else 0.0
      return lin.kernel[...], bias
  else:
    fn = obj
    runner = (lambda x: fn(args, x)) if tag == "fn" else fn

    def head(path):
      if tag != "fn" or path is None:
        raise ValueError("CAM on a function needs `(fn, params)` and head='path.to.dense'.")
      tree = args.get("params", args)
      for part in path.split("."):
        tree = tree[part]
      return tree["kernel"], tree.get("bias", 0.0)

  return runner, head


def _explain(kind, opts: _Options, args, x, idx, key):
  runner, head = _model_fn(kind, args)
  grids = dict(opts.grids)
  layers = opts.layers

  def to_grid(name, y):
    return y if grids[name] is None else grids[name].to_grid(y)

  def call(x, edits=None, names=layers):
    wrapped = {}
    for name, f in (edits or {}).items():
      grid = grids[name]
      wrapped[name] = (
        f if grid is None else (lambda y, f=f, g=grid: g.from_grid(f(g.to_grid(y)), y))
      )
    out, acts = taps.forward(runner, x, layers=names, edits=wrapped)
    return main_output(out), {n: to_grid(n, a) for n, a in acts.items()}

  shapes = jax.eval_shape(lambda: call(x)[1])  # traced for shapes only, not run
  for name, a in shapes.items():
    if a.ndim != 4:
      raise ValueError(
        f"layer {name!r} gives {tuple(a.shape)}; maps need [B, h, w, C] (for tokens pass "
        f"reshape={{{name!r}: Tokens(h, w, prefix)}})."
      )

  given = idx

  def rows_of(o):
    if isinstance(opts.targets, TopK):
      return jax.lax.top_k(jax.lax.stop_gradient(o), opts.targets.k)[1]
    if opts.targets is None:
      return jnp.broadcast_to(jnp.arange(o.shape[-1]), o.shape)
    return given

  def forward(deltas):
    """(working scores [B, T], (output, activations, target rows)) with deltas added."""
    o, acts = call(x, {n: (lambda g, dn=dn: g + dn) for n, dn in deltas.items()})
    rows = rows_of(o)
    return target_scores(o, rows, opts.targets, opts.score), (o, acts, rows)

  methods = set(opts.methods)
  # One forward pass; with gradient methods it is the one the backward passes (one per target,
  # all layers at once) differentiate.
  grads = {}
  if methods & {*GRADIENT_METHODS}:
    zeros = {n: jnp.zeros(a.shape, a.dtype) for n, a in shapes.items()}
    y0, vjp, (o, acts, idx) = jax.vjp(forward, zeros, has_aux=True)
    grads = _each_target(vjp, y0)  # {layer: [T, B, h, w, C]}
  else:
    y0, (o, acts, idx) = forward({})
  scores = lambda out, rows=idx: target_scores(out, rows, opts.targets, opts.score)
  exp_scale = opts.score == "exp"
  result = {"output": o, "targets": idx, "log_scale": y0 if exp_scale else jnp.zeros_like(y0)}
  size = x.shape[1:3]

  raw = {m: {} for m in opts.methods}
  for name in layers:
    a = acts[name]
    g = grads.get(name)
    if "gradcam" in methods:
      raw["gradcam"][name] = weighted_map(a, g.mean(axis=(2, 3)))
    if "hirescam" in methods:
      raw["hirescam"][name] = elementwise_map(a, g)
    if "layercam" in methods:
      raw["layercam"][name] = elementwise_map(a, jax.nn.relu(g))
    if "xgradcam" in methods:
      total = a.sum(axis=(1, 2))[None]
      w = (a[None] * g).sum(axis=(2, 3)) / jnp.where(total == 0, 1.0, total)
      raw["xgradcam"][name] = weighted_map(a, jnp.where(total == 0, 0.0, w))
    if "gradcam++" in methods:
      raw["gradcam++"][name] = _gradcam_pp(opts, call, scores, x, name, a, g, o, idx)
    if "eigencam" in methods:
      raw["eigencam"][name] = jnp.broadcast_to(eigen_map(a)[:, None], (*y0.shape, *a.shape[1:3]))
    if "cam" in methods:
      w, b = head(opts.head)
      if w.shape[0] == a.shape[-1]:
        raw["cam"][name], result.setdefault("cam_check", {})[name] = _cam(a, w, b, o, idx)
    if "scorecam" in methods:
      raw["scorecam"][name] = _scorecam(opts, call, scores, x, a, y0, idx)
    if "ablationcam" in methods:
      raw["ablationcam"][name] = _ablationcam(opts, call, scores, x, name, a, y0)
    if "smoothgradcam++" in methods:
      raw["smoothgradcam++"][name] = _smooth_pp(opts, call, scores, x, name, a, y0, key)
  for m, per_layer in raw.items():
    result[m] = {
      name: {"raw": r, "raw_up": upsample(r, size), "map": upsample(normalize(r), size)}
      for name, r in per_layer.items()
    }
  return result


def _each_target(vjp, y: jax.Array):
  """vjp applied to the one-hot cotangent of every target of y [B, T]: one backward pass each."""
  t = y.shape[1]
  return jax.vmap(vjp)(jnp.broadcast_to(jnp.eye(t, dtype=y.dtype)[:, None], (t, *y.shape)))[0]


def _cam(a, w, b, o, idx):
  """CAM (Zhou et al. 2016): M_t = sum_k w_kt A^k, w [C, K] and b [K] the final linear layer fed
  by the global average pool of A [B, h, w, C]; idx [B, T] the targets. Returns the maps
  [B, T, h, w] and max |GAP(A) w + b - o| (0 up to rounding when A does feed that layer so)."""
  wt = jnp.take(w.T, idx, axis=0)  # [B, T, C]
  return jnp.einsum("bhwc,btc->bthw", a, wt), jnp.abs(a.mean((1, 2)) @ w + b - o).max()


def _gradcam_pp(opts, call, scores, x, name, a, g, o, idx):
  if opts.derivatives == "closed_form" and opts.score != "softmax":
    alpha, d1 = closed_form_alpha(a, g), g
  else:
    if opts.derivatives == "closed_form":  # softmax: all K logit gradients
      _, vjp = jax.vjp(lambda d: call(x, {name: lambda y: y + d}, names=(name,))[0], 0 * a)
      logit_g = _each_target(vjp, o)
      d1, d2, d3 = softmax_closed_form(jax.nn.softmax(o, -1), logit_g, idx)
    else:
      f = lambda v: scores(call(x, {name: lambda _: v}, names=(name,))[0])
      s = diagonal_derivatives(f, a, chunk=opts.chunk)
      d1, d2, d3 = s if opts.score == "softmax" else exp_derivatives(*s)
    alpha = ratio_alpha(a, d2, d3)
  return weighted_map(a, gradcam_pp_weights(alpha, d1, normalize_alpha=opts.normalize_alpha))


def _smooth_pp(opts, call, scores, x, name, a, y0, key):
  """Smooth Grad-CAM++: d1, d2, d3 of Y averaged over noisy copies of x, alpha from the averages."""
  if key is None:
    raise ValueError("smoothgradcam++ needs a PRNG key: explain(..., key=jax.random.key(0)).")
  sigma = opts.noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))[:, None, None, None]

  if opts.score == "softmax" and opts.derivatives == "closed_form":
    raise ValueError("smoothgradcam++ with score='softmax' needs derivatives='exact'.")

  def one(k):
    xs = x + sigma * jax.random.normal(k, x.shape, x.dtype)

    def f(d):  # scores of the noisy copy, and its activation (for the exact derivatives)
      o_s, acts_s = call(xs, {name: lambda y: y + d}, names=(name,))
      return scores(o_s), acts_s[name]

    y_s, vjp, a_s = jax.vjp(f, jnp.zeros_like(a), has_aux=True)
    g_s = _each_target(vjp, y_s)
    if opts.derivatives == "exact":
      fv = lambda v: scores(call(xs, {name: lambda _: v}, names=(name,))[0])
      s = diagonal_derivatives(fv, a_s, chunk=opts.chunk)
      d1, d2, d3 = s if opts.score == "softmax" else exp_derivatives(*s)
    else:
      d1, d2, d3 = g_s, g_s**2, g_s**3
    if opts.score == "softmax":
      return d1, d2, d3
    r = jnp.exp(y_s - y0).T[:, :, None, None, None]  # exp(S_s) / exp(S): Y's factor per sample
    return d1 * (r if opts.score == "exp" else 1.0), r * d2, r * d3

  d1, d2, d3 = (s.mean(0) for s in jax.lax.map(one, jax.random.split(key, opts.samples)))
  alpha = ratio_alpha(a, d2, d3)
  return weighted_map(a, gradcam_pp_weights(alpha, d1, normalize_alpha=opts.normalize_alpha))


def _per_image_scores(opts, call, scores, images, rows):
  """Working scores [N, T] of images [N, H, W, C] whose target rows are rows [N, T], in chunks."""

  def one(args):
    img, row = args
    return scores(call(img[None], names=())[0], row[None])[0]

  return jax.lax.map(one, (images, rows), batch_size=opts.batch_size)


def _scorecam(opts, call, scores, x, a, y0, idx):
  b, _, _, c = a.shape
  t = y0.shape[1]
  h = minmax(upsample(jnp.moveaxis(a, -1, 1), x.shape[1:3]))  # [B, C, H, W]
  rows = jnp.zeros((b, t), jnp.int32) if idx is None else idx
  masked = (x[:, None] * h[..., None]).reshape(b * c, *x.shape[1:])
  s = _per_image_scores(opts, call, scores, masked, jnp.repeat(rows, c, axis=0))
  s = s.reshape(b, c, t)
  if opts.scorecam_weights == "softmax":  # pytorch-grad-cam's: softmax over channels
    w = jax.nn.softmax(s, axis=1)
  else:
    base = _per_image_scores(opts, call, scores, jnp.zeros_like(x), rows)[:, None]  # [B, 1, T]
    if opts.score == "exp":  # exp(S_k) - exp(S_b), divided by exp(S) of the clean input
      w = jnp.exp(s - y0[:, None]) - jnp.exp(base - y0[:, None])
    else:
      w = s - base
  return weighted_map(a, w.transpose(2, 0, 1))  # [B, C, T] -> [T, B, C]


def _ablationcam(opts, call, scores, x, name, a, y0):
  c = a.shape[-1]

  def ablated(k):
    keep = 1.0 - jax.nn.one_hot(k, c, dtype=a.dtype)
    return scores(call(x, {name: lambda y: y * keep}, names=(name,))[0])  # [B, T]

  yk = jax.lax.map(ablated, jnp.arange(c), batch_size=min(opts.batch_size, c))  # [C, B, T]
  if opts.score == "exp":
    w = -jnp.expm1(yk - y0)
  else:
    w = jnp.where(y0 == 0, 0.0, (y0 - yk) / jnp.where(y0 == 0, 1.0, y0))
  return weighted_map(a, w.transpose(2, 1, 0))


_jitted = jax.jit(_explain, static_argnums=(0, 1))


def explain(
  model,
  x: jax.Array,
  *,
  layers: Sequence[str],
  targets=None,
  methods: Sequence[str] = ("gradcam", "gradcam++"),
  score: str = "logit",
  derivatives: str = "closed_form",
  reshape: Tokens | Mapping[str, Tokens] | None = None,
  head: str | None = None,
  normalize_alpha: bool = False,
  scorecam_weights: str = "increase",
  samples: int = 8,
  noise: float = 0.15,
  key: jax.Array | None = None,
  batch_size: int = 64,
  chunk: int = 64,
) -> dict:
  """Maps of `targets` for `layers` x `methods` on the images x [B, H, W, C], in one jitted call.

  Args:
    model: an nnx.Module (run in inference mode: batch statistics are not those of x), a pair
      (fn, params) with fn(params, x) -> output, or a function x -> output (linen inside).
    layers: dotted module paths whose outputs are explained ([B, h, w, C], or tokens via reshape).
    targets: None (all outputs), int [B] / [B, T], top_k(k), or a per-example function of the output.
    methods: any of METHODS. score: "logit", "exp" or "softmax" (class-index targets).
    derivatives: Grad-CAM++'s d2, d3 by "closed_form" or "exact" (forward mode).
    reshape: Tokens(h, w, prefix) for every layer, or {layer: Tokens}.
    head: path of CAM's final linear layer (default: the model's last nnx.Linear).
    scorecam_weights: "increase" (the paper's Y(x H^k) - Y(0)) or "softmax" (over channels).
    samples, noise, key: Smooth Grad-CAM++'s noisy copies. batch_size: masked passes per chunk.
  Returns:
    {method: {layer: {"raw": [B, T, h, w] signed, "raw_up": [B, T, H, W], "map": [B, T, H, W]}}},
    "output" (the model output), "targets" (indices [B, T], or None for a function target) and
    "log_scale" [B, T] (S for score "exp", whose score-proportional maps are divided by exp(S)).
  """
  opts = _validate(model, x, layers, targets, methods, score, derivatives, reshape, head,
                   normalize_alpha, scorecam_weights, samples, noise, batch_size, chunk)  # fmt: skip
  idx = None
  if opts.targets == "indices":
    idx = jnp.asarray(targets)
    idx = (idx[:, None] if idx.ndim == 1 else idx).astype(jnp.int32)
    if idx.ndim != 2 or idx.shape[0] != x.shape[0]:
      raise ValueError(f"targets must be [B] or [B, T] with B = {x.shape[0]}, got {idx.shape}.")
  if isinstance(model, nnx.Module):
    graphdef, state = nnx.split(model)
    kind, args = ("nnx", graphdef), state
  elif isinstance(model, tuple):
    kind, args = ("fn", model[0]), model[1]
  else:
    kind, args = ("closure", model), None
  out = _jitted(kind, opts, args, x, idx, key)
  checks = out.pop("cam_check", {})
  for name, err in checks.items():  # CAM holds only where the layer's mean feeds the head
    try:
      bad = float(err) > 1e-3 * (float(jnp.abs(out["output"]).max()) + 1e-6)
    except jax.errors.ConcretizationTypeError:  # explain() under an outer jit: cannot check
      bad = False
    if bad:
      del out["cam"][name]
  if "cam" in opts.methods and not out["cam"]:
    raise ValueError(
      f"CAM needs a layer -> global average pooling -> linear head; none of {list(opts.layers)} "
      f"feeds the head {opts.head or '(the last nnx.Linear)'} that way."
    )
  if opts.targets is not None and not isinstance(opts.targets, TopK) and opts.targets != "indices":
    out["targets"] = None
  return out


def _validate(model, x, layers, targets, methods, score, derivatives, reshape, head,
              normalize_alpha, scorecam_weights, samples, noise, batch_size, chunk) -> _Options:  # fmt: skip
  if not (isinstance(model, nnx.Module) or callable(model) or (
      isinstance(model, tuple) and len(model) == 2 and callable(model[0]))):  # fmt: skip
    raise ValueError("model must be an nnx.Module, a function of x, or a pair (fn, params).")
  if not hasattr(x, "ndim") or x.ndim != 4:
    raise ValueError(f"expected images [B, H, W, C], got shape {getattr(x, 'shape', None)}.")
  if isinstance(layers, str) or not layers:
    raise ValueError(f"layers must be a non-empty sequence of module paths, got {layers!r}.")
  for m in methods:
    if m not in METHODS:
      raise ValueError(f"unknown method {m!r}; expected one of {METHODS}.")
  if score not in SCORES:
    raise ValueError(f"unknown score {score!r}; expected one of {SCORES}.")
  if derivatives not in DERIVATIVES:
    raise ValueError(f"unknown derivatives {derivatives!r}; expected one of {DERIVATIVES}.")
  if scorecam_weights not in SCORECAM_WEIGHTS:
    raise ValueError(f"unknown scorecam_weights {scorecam_weights!r}; one of {SCORECAM_WEIGHTS}.")
  if scorecam_weights == "softmax" and score == "exp" and "scorecam" in methods:
    raise ValueError("scorecam_weights='softmax' takes score 'logit' or 'softmax', not 'exp'.")
  if targets is None or isinstance(targets, TopK):
    kind = targets
  elif callable(targets):
    kind = targets
    if score != "logit":
      raise ValueError(f"a function target is its own score; score={score!r} needs class indices.")
    if "cam" in methods:
      raise ValueError("CAM needs class-index targets (it reads the head's weights of a class).")
  else:
    kind = "indices"
  if isinstance(reshape, Mapping):
    unknown = set(reshape) - set(layers)
    if unknown:
      raise ValueError(f"reshape names layers not explained: {sorted(unknown)}.")
    grids = tuple((name, reshape.get(name)) for name in layers)
  else:
    grids = tuple((name, reshape) for name in layers)
  if samples < 1 or noise < 0 or batch_size < 1 or chunk < 1:
    raise ValueError(
      f"need samples >= 1, noise >= 0, batch_size >= 1, chunk >= 1; got {samples}, {noise}, "
      f"{batch_size}, {chunk}."
    )
  return _Options(tuple(layers), tuple(dict.fromkeys(methods)), score, derivatives, grids, head,
                  kind, bool(normalize_alpha), scorecam_weights, int(samples), float(noise),
                  int(batch_size), int(chunk))  # fmt: skip


def predicted(out: dict, method: str, layer: str, key: str = "map") -> np.ndarray:
  """Maps of each image's first target [B, H, W] (e.g. its predicted class with top_k(1))."""
  return out[method][layer][key][:, 0]
