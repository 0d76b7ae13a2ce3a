"""genjax.explain.cam's Grad-CAM++ against tf-keras-vis on genjax's Fashion-MNIST classifier
(scripts/bench_cam.py is its command line, and its docstring says what is measured).

Each side runs in its own process and writes its maps into a folder `out`: run_genjax
(genjax.npz), run_tkv (tkv.npz); agreement compares them. A side gets the classifier from
classifier(): fresh weights, or those of a finished run through the `restore` function given
(experiments/cam/train.py's restore: the library does not import experiments). TensorFlow and
tf_keras_vis are imported inside run_tkv (pip install tf-keras-vis), so importing this module needs
neither (it imports jax, through genjax.explain.cam).
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genjax.bench import map_pearson
from genjax.explain import cam

LAYERS = ("stage1", "stage2", "stage3")


def classifier(model_dir: str | None = None, restore: Callable | None = None):
  """(graphdef, params, rest, model config) of a trained classifier (restore(model_dir) ->
  (graphdef, state, config)), or of a fresh one (ClassifierConfig(decoder=False), nnx.Rngs(0))
  where model_dir is None."""
  from flax import nnx

  from genjax.models import classifier as classifier_lib

  if model_dir:
    graphdef, state, config = restore(model_dir)
    return graphdef, state.params, state.rest, config.model.to_dict()
  cfg = classifier_lib.ClassifierConfig(decoder=False)
  model = classifier_lib.Classifier(cfg, rngs=nnx.Rngs(0))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  return graphdef, params, rest, {"channels": cfg.channels, "depth": cfg.depth}


def run_genjax(x: np.ndarray, out: Path, *, exact_images: int, seconds: float,
               model_dir: str | None = None, restore: Callable | None = None) -> dict:  # fmt: skip
  """genjax's Grad-CAM++ maps (3 layers x 10 classes) of the images x per second, with closed-form
  derivatives (timed for `seconds`, at least one call) and exact ones (exact_images images, one
  call); writes the closed-form maps, the paper's and tf-keras-vis' alpha normalization, to
  out/genjax.npz."""
  import jax

  graphdef, params, rest, _ = classifier(model_dir, restore)
  from flax import nnx

  model = nnx.merge(graphdef, params, rest)
  res = {}
  for mode, n in (("closed_form", len(x)), ("exact", exact_images)):
    kw = dict(layers=LAYERS, methods=("gradcam++",), score="exp", derivatives=mode)
    fns = {norm: (lambda xb, norm=norm, kw=kw: cam.explain(model, xb, normalize_alpha=norm, **kw))
           for norm in (False, True)}  # fmt: skip
    xb = jax.device_put(x[:n])
    t0 = time.perf_counter()
    jax.block_until_ready(fns[False](xb))
    first = time.perf_counter() - t0
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < (seconds if mode == "closed_form" else 0) or calls < 1:
      maps = jax.block_until_ready(fns[False](xb))
      calls += 1
    dt = (time.perf_counter() - t0) / calls
    res[mode] = {"maps_per_s": n * len(LAYERS) * 10 / dt, "s_per_call": dt, "images": n,
                 "first_call_s": first}  # fmt: skip
    if mode == "closed_form":
      tkv_like = fns[True](xb)
      np.savez(out / "genjax.npz", **{
        f"{name}/{norm}": np.asarray(jax.nn.relu(m["gradcam++"][name]["raw"]))
        for norm, m in (("paper", maps), ("tkv", tkv_like)) for name in LAYERS})  # fmt: skip
  return res


def run_tkv(x: np.ndarray, out: Path, *, seconds: float, model_dir: str | None = None,
            restore: Callable | None = None) -> dict:  # fmt: skip
  """tf-keras-vis' GradcamPlusPlus maps (one call per layer and class) of the images x per second
  (timed for `seconds`, at least one call), on a Keras copy of the classifier with its weights;
  writes the maps at layer resolution to out/tkv.npz."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf
  from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
  from tf_keras_vis.utils.scores import CategoricalScore

  tf.config.set_visible_devices([], "GPU")
  _, params, rest, mcfg = classifier(model_dir, restore)
  keras = tf.keras
  inp = keras.Input((28, 28, 1))
  h, j = inp, 0
  for s, c in enumerate(mcfg["channels"]):
    if s:
      h = keras.layers.MaxPooling2D(2)(h)
    for d in range(mcfg["depth"]):
      conv = keras.layers.Conv2D(c, 3, padding="same", use_bias=False, name=f"conv{j}")
      bn = keras.layers.BatchNormalization(epsilon=1e-5, name=f"bn{j}")
      act = keras.layers.Activation(
        "relu", name=f"stage{s + 1}" if d == mcfg["depth"] - 1 else None
      )
      h = act(bn(conv(h)))
      j += 1
  logits = keras.layers.Dense(10, name="head")(keras.layers.GlobalAveragePooling2D()(h))
  model = keras.Model(inp, logits)
  for k in range(j):
    s, d = f"stage{k // mcfg['depth'] + 1}", k % mcfg["depth"]
    p, r = params[s], rest[s]
    model.get_layer(f"conv{k}").set_weights([np.asarray(p["convs"][d]["kernel"][...])])
    model.get_layer(f"bn{k}").set_weights([np.asarray(v) for v in (
      p["norms"][d]["scale"][...], p["norms"][d]["bias"][...],
      r["norms"][d]["mean"][...], r["norms"][d]["var"][...])])  # fmt: skip
  model.get_layer("head").set_weights(
    [np.asarray(params["head"]["kernel"][...]), np.asarray(params["head"]["bias"][...])]
  )
  gradcam = GradcamPlusPlus(model, clone=True)

  def all_maps(expand: bool):
    return {
      (name, c): gradcam(
        CategoricalScore([c] * len(x)),
        x,
        penultimate_layer=name,
        seek_penultimate_conv_layer=False,
        expand_cam=expand,
      )  # fmt: skip
      for name in LAYERS
      for c in range(10)
    }

  t0 = time.perf_counter()
  all_maps(True)
  first = time.perf_counter() - t0
  calls, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds or calls < 1:
    all_maps(True)
    calls += 1
  dt = (time.perf_counter() - t0) / calls
  small = all_maps(False)
  np.savez(out / "tkv.npz", **{
    name: np.stack([np.asarray(small[(name, c)]) for c in range(10)], 1) for name in LAYERS})  # fmt: skip
  return {"maps_per_s": len(x) * len(LAYERS) * 10 / dt, "s_per_call": dt, "images": len(x),
          "first_call_s": first, "tf": tf.__version__}  # fmt: skip


def agreement(out: Path) -> dict:
  """Per layer, between the two sides' maps in `out` after tf-keras-vis' normalization ((x - min)
  / (max - min)): Pearson r with tf-keras-vis' alpha normalization reproduced in genjax
  (same_definition, and its max_abs_diff_same_definition) and with the paper's (paper_vs_tkv)."""
  g, t = np.load(out / "genjax.npz"), np.load(out / "tkv.npz")
  g = {k: np.asarray(cam.minmax(v)) for k, v in g.items()}
  t = {k: np.asarray(cam.minmax(v)) for k, v in t.items()}
  return {name: {"same_definition": map_pearson(g[f"{name}/tkv"], t[name])[0],
                 "paper_vs_tkv": map_pearson(g[f"{name}/paper"], t[name])[0],
                 "max_abs_diff_same_definition": float(np.abs(g[f"{name}/tkv"] - t[name]).max())}
          for name in LAYERS}  # fmt: skip


def print_report(res: dict, agree: dict, images: int, model_dir: str | None) -> None:
  """The sides' maps/s (res: {"genjax": run_genjax's, "tkv": run_tkv's}), their ratios and the
  agreement per layer."""
  closed, exact, tkv = res["genjax"]["closed_form"], res["genjax"]["exact"], res["tkv"]
  print(
    f"Grad-CAM++ maps/s, {len(LAYERS)} layers x 10 classes, {images} images "
    f"({'trained weights ' + model_dir if model_dir else 'fresh weights, random images'}):"
  )
  for name, r in (("genjax closed-form", closed), ("genjax exact", exact), ("tf-keras-vis", tkv)):
    print(
      f"  {name:20s} {r['maps_per_s']:10.1f} maps/s  ({r['images']} images, first call "
      f"{r['first_call_s']:.1f} s)"
    )
  print(
    f"  ratio genjax closed-form / tf-keras-vis: {closed['maps_per_s'] / tkv['maps_per_s']:.1f}x"
  )
  print(
    f"  ratio genjax exact / tf-keras-vis:       {exact['maps_per_s'] / tkv['maps_per_s']:.3f}x"
  )
  print("Agreement of normalized maps (Pearson r over maps, layer resolution):")
  for name, a in agree.items():
    print(
      f"  {name}: same definition r={a['same_definition']:.5f} (max |diff| "
      f"{a['max_abs_diff_same_definition']:.1e}); paper Grad-CAM++ vs tf-keras-vis r="
      f"{a['paper_vs_tkv']:.4f}"
    )
