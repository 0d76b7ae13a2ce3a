"""CAM methods: identities that must hold, each method against an independent computation.

The independent computations never go through genjax.explain.taps: the network above a layer is
written out by hand (`above`), its gradients come from jax.grad / jax.hessian, and the formulas are
applied in NumPy.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn
from genjax.explain import cam
from genjax.models import classifier

LAYERS = ("stage1", "stage2", "stage3")


def tiny(activation="relu", seed=0, train_mode=False, num_classes=4):
  """An 8x8 three-stage classifier with random (non-trivial) batch-norm statistics."""
  cfg = classifier.ClassifierConfig(
    image_shape=(8, 8, 1),
    num_classes=num_classes,
    channels=(2, 3, 4),
    depth=1,
    activation=activation,
    decoder=False,
  )
  model = nn.build(lambda: classifier.Classifier(cfg, rngs=nnx.Rngs(seed)))
  rng = np.random.default_rng(seed)
  for name in LAYERS:
    for bn in getattr(model, name).norms:
      bn.mean[...] = jnp.asarray(rng.normal(0, 0.1, bn.mean.shape), jnp.float32)
      bn.var[...] = jnp.asarray(rng.uniform(0.5, 1.5, bn.var.shape), jnp.float32)
      bn.bias[...] = jnp.asarray(rng.normal(0, 0.3, bn.bias.shape), jnp.float32)
  if not train_mode:
    model.eval()
  return model


def acts(model, x):
  model.eval()
  return model.features(x)


def above(model, layer):
  """The network above `layer`, written out: activation [B, h, w, C] -> logits [B, K] (the model
  in inference mode)."""

  def f(v):
    h = v
    for name in LAYERS[LAYERS.index(layer) + 1 :]:
      h = getattr(model, name)(h)
    return model.head(h.mean(axis=(1, 2)))

  return f


def grads(model, layer, a, c):
  """dS_c/dA [B, h, w, C] for class indices c [B] by jax.grad of the written-out network."""
  f = above(model, layer)
  return jax.grad(lambda v: jnp.take_along_axis(f(v), c[:, None], -1).sum())(a)


@pytest.fixture(scope="module")
def x():
  return jnp.asarray(np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)), jnp.float32)


C = jnp.array([0, 2, 3])


def test_gradcam_hirescam_xgradcam_equal_cam_over_hw_for_a_gap_linear_head(x):
  out = cam.explain(tiny(), x, layers=("stage3",), methods=("cam", "gradcam", "hirescam",
                    "xgradcam"))  # fmt: skip
  c = out["cam"]["stage3"]["raw"]
  h, w = c.shape[-2:]
  assert float(jnp.abs(c).max()) > 0
  np.testing.assert_allclose(out["gradcam"]["stage3"]["raw"], c / (h * w), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(out["hirescam"]["stage3"]["raw"], c / (h * w), rtol=1e-5, atol=1e-7)
  a = acts(tiny(), x)["stage3"]
  ok = np.asarray(a.sum((1, 2)) > 0).all(-1)  # XGrad-CAM's weights need sum A != 0
  np.testing.assert_allclose(np.asarray(out["xgradcam"]["stage3"]["raw"])[ok],
                             np.asarray(c / (h * w))[ok], rtol=1e-4, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("layer", LAYERS)
def test_gradient_methods_match_numpy_formulas_on_hand_computed_gradients(x, layer):
  model = tiny()
  a = np.asarray(acts(model, x)[layer], np.float64)
  g = np.asarray(grads(model, layer, jnp.asarray(a, jnp.float32), C), np.float64)
  methods = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam")
  out = cam.explain(model, x, layers=(layer,), targets=C, methods=methods)
  total = a.sum((1, 2), keepdims=True)
  want = {
    "gradcam": (g.mean((1, 2), keepdims=True) * a).sum(-1),
    "hirescam": (g * a).sum(-1),
    "layercam": (np.maximum(g, 0) * a).sum(-1),
    "xgradcam": ((a * g).sum((1, 2), keepdims=True) / np.where(total == 0, 1, total) * a).sum(-1),
  }
  # Grad-CAM++ with exp(S): d2 = e^S g^2, d3 = e^S g^3, the paper's alpha.
  d2, d3 = g**2, g**3
  denom = 2 * d2 + total * d3
  alpha = np.where(denom == 0, 0, d2 / np.where(denom == 0, 1, denom))
  want["gradcam++"] = ((alpha * np.maximum(g, 0)).sum((1, 2), keepdims=True) * a).sum(-1)
  for m, ref in want.items():
    got = np.asarray(out[m][layer]["raw"][:, 0])
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=1e-6 * np.abs(ref).max(), err_msg=m)


def test_exact_gradcam_pp_equals_closed_form_for_relu_network(x):
  model = tiny("relu")
  for score in ("exp", "logit"):
    kw = dict(layers=LAYERS, methods=("gradcam", "gradcam++"), score=score)
    closed = cam.explain(model, x, derivatives="closed_form", **kw)
    exact = cam.explain(model, x, derivatives="exact", **kw)
    for layer in LAYERS:
      for m in ("gradcam", "gradcam++"):
        a, b = closed[m][layer]["raw"], exact[m][layer]["raw"]
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6 * float(jnp.abs(a).max()))


def test_exp_and_logit_scores_give_the_same_maps_and_log_scale_is_the_logit(x):
  model = tiny()
  e = cam.explain(model, x, layers=LAYERS, score="exp")
  lo = cam.explain(model, x, layers=LAYERS, score="logit")
  np.testing.assert_allclose(e["log_scale"], e["output"], rtol=1e-6)
  np.testing.assert_array_equal(lo["log_scale"], 0.0)
  for m in ("gradcam", "gradcam++"):
    for layer in LAYERS:
      np.testing.assert_allclose(e[m][layer]["raw"], lo[m][layer]["raw"], rtol=1e-6, atol=1e-8)


def _softmax_layer_fn(model, layer):
  return lambda v: jax.nn.softmax(above(model, layer)(v), -1)


def test_closed_form_softmax_derivatives_equal_forward_mode_ones_for_relu_network(x):
  model = tiny("relu")
  feats = acts(model, x)
  for layer in LAYERS:
    a = feats[layer]
    f = above(model, layer)
    logit_g = jax.jacrev(lambda v, f=f: f(v).sum(0))(a)  # [K, B, h, w, C]
    idx = jnp.broadcast_to(jnp.arange(4), (3, 4))
    d1, d2p, d3p = cam.softmax_closed_form(jax.nn.softmax(f(a), -1), logit_g, idx)
    e1, e2, e3 = cam.diagonal_derivatives(_softmax_layer_fn(model, layer), a)
    p = jax.nn.softmax(f(a), -1).T[:, :, None, None, None]
    for got, want in ((d1, e1), (p * d2p, e2), (p * d3p, e3)):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(jnp.abs(want).max()))


@pytest.mark.parametrize("activation", ["gelu", "softplus"])
def test_exact_derivatives_match_finite_differences_on_a_smooth_network(x, activation):
  model = tiny(activation)
  layer = "stage2"
  a = acts(model, x)[layer]
  f = _softmax_layer_fn(model, layer)
  d1, d2, d3 = cam.diagonal_derivatives(f, a)
  # Central differences of t -> f(a + t e_i) for a few coordinates i (every example at once), in
  # float64 NumPy from float32 evaluations with a step large enough for float32 rounding. The layer
  # feeds 2x2 max pooling, a kink wherever two entries of a window tie, so an example is compared
  # only where its entry wins (or loses) its window by more than the widest step 2h; the coordinates
  # are those that win, by that margin, in the most examples.
  h = 0.05
  margin = _pool_margin(np.asarray(a)).reshape(a.shape[0], -1)  # [B, n], signed
  wins = (margin > 2 * h).sum(0)
  chosen = np.argsort(wins, kind="stable")[::-1][:4]
  assert wins[chosen].min() >= 1, wins[chosen]
  for i in chosen:
    e = jax.nn.one_hot(i, margin.shape[1]).reshape(a.shape[1:])
    fs = {k: np.asarray(f(a + k * h * e), np.float64) for k in (-2, -1, 0, 1, 2)}
    fd1 = (fs[1] - fs[-1]) / (2 * h)
    fd2 = (fs[1] - 2 * fs[0] + fs[-1]) / h**2
    fd3 = (fs[2] - 2 * fs[1] + 2 * fs[-1] - fs[-2]) / (2 * h**3)
    idx = np.unravel_index(i, a.shape[1:])
    far = np.abs(margin[:, i]) > 2 * h  # examples away from the kink
    for d, fd, tol in ((d1, fd1, 2e-3), (d2, fd2, 5e-3), (d3, fd3, 2e-2)):
      got = np.asarray(d[(slice(None), slice(None), *idx)]).T  # [B, K]
      np.testing.assert_allclose(got[far], fd[far], atol=tol * max(1.0, np.abs(fd).max()))
  # The smooth network is curved: closed-form and exact Grad-CAM++ differ.
  kw = dict(layers=(layer,), methods=("gradcam++",), score="softmax")
  closed = cam.explain(model, x, derivatives="closed_form", **kw)["gradcam++"][layer]["raw"]
  exact = cam.explain(model, x, derivatives="exact", **kw)["gradcam++"][layer]["raw"]
  assert float(jnp.abs(closed - exact).max()) > 1e-3 * float(jnp.abs(exact).max())


def _pool_margin(a: np.ndarray) -> np.ndarray:
  """a_i - max of the other entries of its 2x2 pooling window: > 0 where a_i wins, [B, h, w, C]."""
  b, hh, ww, c = a.shape
  win = (
    a.reshape(b, hh // 2, 2, ww // 2, 2, c)
    .transpose(0, 1, 3, 5, 2, 4)
    .reshape(b, hh // 2, ww // 2, c, 4)
  )
  others = np.stack([np.delete(win, j, axis=-1).max(-1) for j in range(4)], -1)  # [b, H, W, c, 4]
  m = (win - others).reshape(b, hh // 2, ww // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return m.reshape(b, hh, ww, c)


def test_forward_mode_diagonals_equal_jax_hessian_diagonals(x):
  """On a small layer the full jax.hessian (and jacfwd of it) is affordable: its diagonal must agree."""
  model = tiny("gelu")
  layer = "stage3"  # 2x2x4 = 16 coordinates
  a = acts(model, x)[layer]
  f = lambda v: jnp.exp(above(model, layer)(v))
  d1, d2, d3 = cam.diagonal_derivatives(f, a)
  shape = a.shape[1:]
  n = int(np.prod(shape))
  for b in range(a.shape[0]):
    one = lambda v, b=b: f(a.at[b].set(v.reshape(shape)))[b]  # [K]
    v0 = a[b].reshape(-1)
    hess = jax.hessian(one)(v0)  # [K, n, n]
    third = jax.jacfwd(jax.hessian(one))(v0)  # [K, n, n, n]
    diag2 = hess[:, jnp.arange(n), jnp.arange(n)]
    diag3 = third[:, jnp.arange(n), jnp.arange(n), jnp.arange(n)]
    np.testing.assert_allclose(d2[:, b].reshape(-1, n), diag2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d3[:, b].reshape(-1, n), diag3, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d1[:, b].reshape(-1, n), jax.jacrev(one)(v0), rtol=1e-5, atol=1e-7)


def _extreme(model, x, sign, kw):
  """The model with its head scaled and shifted: logits in sign * [800, 1000]."""
  s = cam.explain(model, x, **kw)["output"]
  model.head.kernel[...] *= 100.0 / float(jnp.abs(s).max())
  model.head.bias[...] = model.head.bias[...] * 100.0 / float(jnp.abs(s).max()) + sign * 900.0
  return model


def _float64(model):
  state = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), nnx.state(model))
  return nnx.merge(nnx.graphdef(model), state)


def _pp_maps(a, s):
  """Grad-CAM++ raw maps [B, T, h, w] of score exp from the diagonal derivatives s of the logits."""
  d1, d2, d3 = cam.exp_derivatives(*s)
  return cam.weighted_map(a, cam.gradcam_pp_weights(cam.ratio_alpha(a, d2, d3), d1))


@pytest.mark.parametrize("derivatives", ["closed_form", "exact"])
def test_gradcam_pp_is_finite_at_extreme_logits_and_equals_float64(x, derivatives):
  """Logits of about +-1000: exp(S) over- or underflows in float32 (and float64); the maps must not.

  Closed form: the float32 maps equal the float64 ones to 1e-5 relative. Exact: the derivatives
  s1, s2, s3 of the float32 network equal the float64 network's to 1e-5 (of their largest), and
  the float32 maps equal float64 algebra on those same derivatives to 1e-5: exp(S) cancels and the
  algebra loses nothing. What is left between float32 and float64 maps is the network's own
  rounding of s1, s2, s3, which alpha = e2 / (2 e2 + sum A e3) amplifies where its denominator
  nearly vanishes (an input error eps becomes eps |e2| / |denominator|): float64 algebra on the
  float32 derivatives is itself 2.6e-5 from the float64 maps on an AVX-512 CPU, under 1e-5 on
  another (the order of float32 sums follows the vector width).
  """
  kw = dict(layers=LAYERS, methods=("gradcam++",), score="exp", derivatives=derivatives)
  tol = 1e-5
  close = lambda r, q: np.testing.assert_allclose(r, q, rtol=tol, atol=tol * np.abs(q).max())
  for sign in (1.0, -1.0):
    model = _extreme(tiny("gelu" if derivatives == "exact" else "relu"), x, sign, kw)
    out32 = cam.explain(model, x, **kw)
    o = np.abs(np.asarray(out32["output"]))
    assert o.min() >= 800 and o.max() <= 1000, o
    a32 = acts(model, x)
    s32 = {layer: cam.diagonal_derivatives(above(model, layer), a32[layer]) for layer in LAYERS}
    with jax.enable_x64(True):
      model64, x64 = _float64(model), jnp.asarray(x, jnp.float64)
      out64 = cam.explain(model64, x64, **kw)
      a64 = acts(model64, x64)
      for layer in LAYERS:
        r32 = np.asarray(out32["gradcam++"][layer]["raw"], np.float64)
        assert np.isfinite(r32).all() and np.abs(r32).max() > 0
        if derivatives == "closed_form":
          close(r32, np.asarray(out64["gradcam++"][layer]["raw"]))
          continue
        up = lambda v: jnp.asarray(v, jnp.float64)
        close(r32, np.asarray(_pp_maps(up(a32[layer]), [up(v) for v in s32[layer]])))
        s64 = cam.diagonal_derivatives(above(model64, layer), a64[layer])
        for p, q in zip(s32[layer], s64, strict=True):
          close(np.asarray(p, np.float64), np.asarray(q))


def test_targets_indices_top_k_and_functions_agree_with_all_classes(x):
  model = tiny()
  full = cam.explain(model, x, layers=LAYERS, methods=("gradcam", "gradcam++"))
  one = cam.explain(model, x, layers=LAYERS, methods=("gradcam", "gradcam++"), targets=C)
  top = cam.explain(model, x, layers=LAYERS, methods=("gradcam",), targets=cam.top_k(2))
  want_top = np.argsort(-np.asarray(full["output"]), -1, kind="stable")[:, :2]
  np.testing.assert_array_equal(top["targets"], want_top)
  fn = cam.explain(model, x, layers=("stage3",), methods=("gradcam",),
                   targets=lambda o: jax.nn.softmax(o)[:, 2])  # fmt: skip
  soft = cam.explain(model, x, layers=("stage3",), methods=("gradcam",), score="softmax",
                     targets=jnp.full((3,), 2))  # fmt: skip
  assert fn["targets"] is None
  np.testing.assert_allclose(fn["gradcam"]["stage3"]["raw"], soft["gradcam"]["stage3"]["raw"],
                             rtol=1e-5, atol=1e-9)  # fmt: skip
  for layer in LAYERS:
    for m in ("gradcam", "gradcam++"):
      pick = np.take_along_axis(np.asarray(full[m][layer]["raw"]), np.asarray(C)[:, None, None,
                                None], axis=1)  # fmt: skip
      np.testing.assert_allclose(one[m][layer]["raw"], pick, rtol=1e-5, atol=1e-8)
    pick = np.take_along_axis(np.asarray(full["gradcam"][layer]["raw"]),
                              want_top[:, :, None, None], axis=1)  # fmt: skip
    np.testing.assert_allclose(top["gradcam"][layer]["raw"], pick, rtol=1e-5, atol=1e-8)


def test_one_target_costs_one_backward_pass_not_k(x):
  """Compiled cost of Grad-CAM for one target per image against all K = 16 (XLA's flop count)."""
  model = tiny(num_classes=16)
  opts = dict(layers=LAYERS, methods=("gradcam",))

  def flops(targets):
    graphdef, state = nnx.split(model)
    o = cam._validate(model, x, LAYERS, targets, ("gradcam",), "logit", "closed_form", None, None,
                      False, "increase", 8, 0.15, 64, 64)  # fmt: skip
    idx = None if targets is None else jnp.asarray(targets)[:, None]
    lowered = cam._jitted.lower(("nnx", graphdef), o, state, x, idx, None)
    return lowered.compile().cost_analysis()["flops"]

  assert cam.explain(model, x, targets=C, **opts)["gradcam"]["stage1"]["raw"].shape[1] == 1
  f1, fk = flops(C), flops(None)
  assert fk > 5 * f1, (f1, fk)  # one forward pass, then 1 or 16 backward passes


def test_eigencam_is_the_first_principal_direction(x):
  model = tiny()
  out = cam.explain(model, x, layers=LAYERS, methods=("eigencam",), targets=C)
  feats = acts(model, x)
  for layer in LAYERS:
    a = np.asarray(feats[layer], np.float64)
    for b in range(3):
      flat = a[b].reshape(-1, a.shape[-1])
      _, _, vt = np.linalg.svd(flat, full_matrices=False)
      m = flat @ vt[0]
      m = m if m.sum() >= 0 else -m
      got = np.asarray(out["eigencam"][layer]["raw"][b, 0]).ravel()
      np.testing.assert_allclose(got, m, rtol=1e-4, atol=1e-5 * np.abs(m).max())


def _minmax01(m):
  lo, hi = m.min(), m.max()
  return np.zeros_like(m) if hi <= lo else (m - lo) / (hi - lo)


@pytest.mark.parametrize("score", ["logit", "softmax", "exp"])
def test_scorecam_equals_a_loop_of_masked_forward_passes(x, score):
  model = tiny()
  layer = "stage2"
  out = cam.explain(model, x, layers=(layer,), methods=("scorecam",), targets=C, score=score,
                    batch_size=5)  # fmt: skip
  a = np.asarray(acts(model, x)[layer])
  predict = lambda img: np.asarray(model(jnp.asarray(img, jnp.float32))[0], np.float64)
  conf = {"logit": lambda s: s, "exp": np.exp, "softmax": lambda s: np.exp(s) / np.exp(s).sum()}
  for b in range(3):
    c = int(C[b])
    s0 = predict(x[b : b + 1])[0, c]
    base = conf[score](predict(np.zeros((1, 8, 8, 1)))[0])[c]
    w = []
    for k in range(a.shape[-1]):
      up = np.asarray(jax.image.resize(jnp.asarray(a[b, ..., k]), (8, 8), "bilinear"))
      h = _minmax01(up)
      yk = conf[score](predict(np.asarray(x[b : b + 1]) * h[None, ..., None])[0])[c]
      w.append(yk - base)
    w = np.array(w) / (np.exp(s0) if score == "exp" else 1.0)
    want = (a[b] * w).sum(-1)
    np.testing.assert_allclose(out["scorecam"][layer]["raw"][b, 0], want, rtol=1e-4,
                               atol=1e-5 * np.abs(want).max())  # fmt: skip


def test_scorecam_softmax_weights_are_a_softmax_over_channels(x):
  model = tiny()
  inc = cam.explain(model, x, layers=("stage3",), methods=("scorecam",), targets=C)
  soft = cam.explain(model, x, layers=("stage3",), methods=("scorecam",), targets=C,
                     scorecam_weights="softmax")  # fmt: skip
  assert not np.allclose(inc["scorecam"]["stage3"]["raw"], soft["scorecam"]["stage3"]["raw"])
  with pytest.raises(ValueError, match="softmax"):
    cam.explain(model, x, layers=("stage3",), methods=("scorecam",), score="exp",
                scorecam_weights="softmax")  # fmt: skip


@pytest.mark.parametrize("layer", ["stage2", "stage3"])
def test_ablationcam_equals_a_loop_over_zeroed_channels(x, layer):
  model = tiny()
  out = cam.explain(model, x, layers=(layer,), methods=("ablationcam",), targets=C, batch_size=2)
  a = acts(model, x)[layer]
  f = above(model, layer)
  s = np.asarray(jnp.take_along_axis(f(a), C[:, None], -1)[:, 0], np.float64)
  w = []
  for k in range(a.shape[-1]):
    sk = np.asarray(jnp.take_along_axis(f(a.at[..., k].set(0.0)), C[:, None], -1)[:, 0])
    w.append((s - sk) / s)
  w = np.stack(w, -1)  # [B, C]
  want = (np.asarray(a) * w[:, None, None]).sum(-1)
  np.testing.assert_allclose(out["ablationcam"][layer]["raw"][:, 0], want, rtol=1e-4,
                             atol=1e-5 * np.abs(want).max())  # fmt: skip


def test_smooth_gradcam_pp_averages_the_derivatives_of_noisy_copies(x, key):
  model = tiny()
  layer, n, noise = "stage2", 3, 0.2
  out = cam.explain(model, x, layers=(layer,), methods=("smoothgradcam++",), targets=C,
                    score="exp", samples=n, noise=noise, key=key)  # fmt: skip
  a = np.asarray(acts(model, x)[layer], np.float64)
  sigma = noise * (np.asarray(x).max((1, 2, 3)) - np.asarray(x).min((1, 2, 3)))
  s0 = np.asarray(jnp.take_along_axis(model(x)[0], C[:, None], -1)[:, 0], np.float64)
  d1 = d2 = d3 = 0.0
  for k in jax.random.split(key, n):
    xs = x + sigma[:, None, None, None] * jax.random.normal(k, x.shape)
    a_s = acts(model, xs)[layer]
    g = np.asarray(grads(model, layer, a_s, C), np.float64)
    ss = np.asarray(jnp.take_along_axis(model(xs)[0], C[:, None], -1)[:, 0], np.float64)
    r = np.exp(ss - s0)[:, None, None, None]  # exp(S_s) / exp(S)
    d1, d2, d3 = d1 + r * g / n, d2 + r * g**2 / n, d3 + r * g**3 / n
  denom = 2 * d2 + a.sum((1, 2), keepdims=True) * d3
  alpha = np.where(denom == 0, 0, d2 / np.where(denom == 0, 1, denom))
  want = ((alpha * np.maximum(d1, 0)).sum((1, 2), keepdims=True) * a).sum(-1)
  got = out["smoothgradcam++"][layer]["raw"][:, 0]
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5 * np.abs(want).max())
  with pytest.raises(ValueError, match="PRNG key"):
    cam.explain(model, x, layers=(layer,), methods=("smoothgradcam++",))


def test_batched_equals_one_at_a_time_and_batch_statistics_are_not_used(x, key):
  model = tiny(train_mode=True)  # explain() switches to inference mode itself
  kw = dict(layers=LAYERS, methods=cam.METHODS, targets=C, key=key, samples=2)
  batch = cam.explain(model, x, **kw)
  for i in range(x.shape[0]):
    one = cam.explain(model, x[i : i + 1], **{**kw, "targets": C[i : i + 1]})
    for m in cam.METHODS:
      if m == "smoothgradcam++":
        continue  # its noise is drawn for the whole batch
      for layer in batch[m]:
        np.testing.assert_allclose(one[m][layer]["map"][0], batch[m][layer]["map"][i], atol=1e-5,
                                   err_msg=f"{m} {layer}")  # fmt: skip
  for m in cam.METHODS:
    for maps in batch[m].values():
      chex.assert_shape(maps["map"], (3, 1, 8, 8))
      chex.assert_shape(maps["raw_up"], (3, 1, 8, 8))
      assert float(maps["map"].min()) >= 0 and float(maps["map"].max()) <= 1 + 1e-6
  assert set(batch["cam"]) == {"stage3"}  # CAM only where GAP -> linear follows


def test_cam_refuses_a_layer_that_does_not_feed_the_head(x):
  model = tiny()
  with pytest.raises(ValueError, match="global average pooling"):
    cam.explain(model, x, layers=("stage2",), methods=("cam",))
  with pytest.raises(ValueError, match="no layer 'fc'"):
    cam.explain(model, x, layers=("stage3",), methods=("cam",), head="fc")
  out = cam.explain(model, x, layers=("stage3",), methods=("cam",), head="head")
  assert "stage3" in out["cam"]


def test_constant_gradients_give_finite_maps():
  model = tiny()
  model.head.kernel[...] = jnp.zeros_like(model.head.kernel[...])  # every gradient is 0
  x0 = jnp.zeros((2, 8, 8, 1))
  for score in cam.SCORES:
    methods = [m for m in cam.METHODS if m != "cam"]
    out = cam.explain(model, x0, layers=LAYERS, methods=methods, score=score,
                      derivatives="exact" if score == "softmax" else "closed_form",
                      key=jax.random.key(0), samples=2)  # fmt: skip
    for m in methods:
      for maps in out[m].values():
        assert np.isfinite(np.asarray(maps["map"])).all() and np.isfinite(maps["raw"]).all()
        if m != "eigencam":  # the only map that does not depend on the output
          np.testing.assert_array_equal(maps["map"], 0.0)


def test_bad_arguments_raise_value_errors(x):
  model = tiny()
  with pytest.raises(ValueError, match="no layer 'stage9'"):
    cam.explain(model, x, layers=("stage9",))
  with pytest.raises(ValueError, match="unknown score"):
    cam.explain(model, x, layers=LAYERS, score="prob")
  with pytest.raises(ValueError, match="unknown method"):
    cam.explain(model, x, layers=LAYERS, methods=("fullgrad",))
  with pytest.raises(ValueError, match="expected images"):
    cam.explain(model, x[..., 0], layers=LAYERS)
  with pytest.raises(ValueError, match="targets must be"):
    cam.explain(model, x, layers=LAYERS, targets=jnp.zeros((2,), jnp.int32))
  with pytest.raises(ValueError, match="its own score"):
    cam.explain(model, x, layers=LAYERS, targets=lambda o: o[:, 0], score="softmax")


def test_normalize_is_relu_over_max_and_zero_for_nonpositive_maps():
  m = jnp.array([[[[-1.0, 2.0], [4.0, 0.0]]], [[[-1.0, -2.0], [0.0, -3.0]]]])
  out = cam.normalize(m)
  np.testing.assert_allclose(out[0, 0], [[0, 0.5], [1, 0]])
  np.testing.assert_array_equal(out[1, 0], 0.0)
