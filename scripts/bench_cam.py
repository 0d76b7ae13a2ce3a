"""Grad-CAM++ maps per second: genjax against tf-keras-vis, same architecture, weights and images.

  python scripts/bench_cam.py [--model runs/cam/ae-s0] [--images 64] [--seconds 30]

Measured side by side in one run, each library in its own process (thread pools and memory do not
mix): maps for 3 layers x 10 classes of a batch of test-sized images.
  genjax-closed   closed-form derivatives, all layers and classes in one jitted call
  genjax-exact    exact third-order derivatives of the network (few images: it costs 3rd-order
                  forward mode once per activation coordinate)
  tf-keras-vis    GradcamPlusPlus, one call per (layer, class), the Keras model loaded with genjax's
                  weights (pip install tf-keras-vis; TensorFlow on the CPU)
Agreement: Pearson correlation between the two libraries' normalized maps at layer resolution,
(a) with tf-keras-vis' alpha normalization reproduced in genjax (same definition: must be ~1) and
(b) against the paper's Grad-CAM++ (genjax default), which tf-keras-vis departs from.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genjax import bench  # noqa: E402

LAYERS = ("stage1", "stage2", "stage3")


def _model(model_dir: str | None):
  """(graphdef, params, rest, model config) of a trained classifier, or a fresh one."""
  from flax import nnx

  from genjax.models import classifier

  if model_dir:
    from experiments.cam import train

    graphdef, state, config = train.restore(model_dir)
    return graphdef, state.params, state.rest, config.model.to_dict()
  cfg = classifier.ClassifierConfig(decoder=False)
  graphdef, params, rest = nnx.split(classifier.Classifier(cfg, rngs=nnx.Rngs(0)), nnx.Param, ...)
  return graphdef, params, rest, {"channels": cfg.channels, "depth": cfg.depth}


def run_genjax(args, x: np.ndarray, out: Path) -> dict:
  import jax

  from genjax.explain import cam

  graphdef, params, rest, _ = _model(args.model)
  from flax import nnx

  model = nnx.merge(graphdef, params, rest)
  res = {}
  for mode, n in (("closed_form", len(x)), ("exact", args.exact_images)):
    kw = dict(layers=LAYERS, methods=("gradcam++",), score="exp", derivatives=mode)
    fns = {norm: (lambda xb, norm=norm, kw=kw: cam.explain(model, xb, normalize_alpha=norm, **kw))
           for norm in (False, True)}  # fmt: skip
    xb = jax.device_put(x[:n])
    t0 = time.perf_counter()
    jax.block_until_ready(fns[False](xb))
    first = time.perf_counter() - t0
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < (args.seconds if mode == "closed_form" else 0) or calls < 1:
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


def run_tkv(args, x: np.ndarray, out: Path) -> dict:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf
  from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
  from tf_keras_vis.utils.scores import CategoricalScore

  tf.config.set_visible_devices([], "GPU")
  _, params, rest, mcfg = _model(args.model)
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
  while time.perf_counter() - t0 < args.seconds or calls < 1:
    all_maps(True)
    calls += 1
  dt = (time.perf_counter() - t0) / calls
  small = all_maps(False)
  np.savez(out / "tkv.npz", **{
    name: np.stack([np.asarray(small[(name, c)]) for c in range(10)], 1) for name in LAYERS})  # fmt: skip
  return {"maps_per_s": len(x) * len(LAYERS) * 10 / dt, "s_per_call": dt, "images": len(x),
          "first_call_s": first, "tf": tf.__version__}  # fmt: skip


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--model", default=None, help="classifier workdir (default: fresh weights)")
  p.add_argument("--images", type=int, default=64)
  p.add_argument("--exact_images", type=int, default=1)
  p.add_argument("--seconds", type=float, default=30.0)
  p.add_argument("--which", default=None, help=argparse.SUPPRESS)
  p.add_argument("--out", default=None, help=argparse.SUPPRESS)
  args = p.parse_args()
  from genjax.data import tfds as data
  from genjax.explain import cam

  x = np.asarray(data.get_dataset("fashion_mnist", "test").x[: args.images]) if args.model else (
    np.random.default_rng(0).uniform(size=(args.images, 28, 28, 1)).astype(np.float32))  # fmt: skip
  if args.which:  # child process
    fn = run_genjax if args.which == "genjax" else run_tkv
    print(json.dumps(fn(args, x, Path(args.out))))
    return
  with tempfile.TemporaryDirectory() as tmp:
    res = {}
    for which in ("genjax", "tkv"):
      cmd = [sys.executable, __file__, "--which", which, "--out", tmp, "--images", str(args.images),
             "--exact_images", str(args.exact_images), "--seconds", str(args.seconds)]  # fmt: skip
      cmd += ["--model", args.model] if args.model else []
      proc = subprocess.run(cmd, capture_output=True, text=True)
      if proc.returncode:
        sys.exit(f"{which} failed:\n{proc.stderr[-3000:]}")
      res[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    g, t = np.load(Path(tmp) / "genjax.npz"), np.load(Path(tmp) / "tkv.npz")
    g = {
      k: np.asarray(cam.minmax(v)) for k, v in g.items()
    }  # tf-keras-vis' normalization: (x - min) / (max - min)
    t = {k: np.asarray(cam.minmax(v)) for k, v in t.items()}
    agree = {name: {"same_definition": bench.map_pearson(g[f"{name}/tkv"], t[name])[0],
                    "paper_vs_tkv": bench.map_pearson(g[f"{name}/paper"], t[name])[0],
                    "max_abs_diff_same_definition": float(np.abs(g[f"{name}/tkv"] - t[name]).max())}
             for name in LAYERS}  # fmt: skip
  closed, exact, tkv = res["genjax"]["closed_form"], res["genjax"]["exact"], res["tkv"]
  print(
    f"Grad-CAM++ maps/s, {len(LAYERS)} layers x 10 classes, {args.images} images "
    f"({'trained weights ' + args.model if args.model else 'fresh weights, random images'}):"
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
  print(json.dumps({"genjax": res["genjax"], "tkv": tkv, "agreement": agree}))


if __name__ == "__main__":
  main()
