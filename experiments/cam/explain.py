"""Explains a trained classifier: overlay grids, faithfulness metrics and the randomization check.

Reads a workdir written by experiments/cam/train.py and writes to `out`:
  overlays_correct.png, overlays_wrong.png   image x (method, layer) overlays, one row per class
  overlays_methods.png                       the ten methods at the last layer, one row per class
  explain.json, explain.md                   Average Drop %, % Increase in Confidence, Win %,
                                             deletion / insertion AUC, ROAD (MoRF / LeRF) of every
                                             method, randomization rank correlations
Every map explains the model's predicted class with the chosen score (default exp(logit)); the
randomization check keeps the trained model's predicted class for every randomized network.
"""

import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from experiments.cam import train
from genjax import nn
from genjax.data import tfds as data
from genjax.explain import cam, metrics, overlay, sanity
from genjax.models import classifier

CLASSES = data.SHORT_NAMES


def combos(layers) -> list[tuple[str, str]]:
  """(method, layer) pairs: CAM on the last layer, Grad-CAM and Grad-CAM++ on every layer."""
  return [("cam", layers[-1])] + [(m, name) for m in ("gradcam", "gradcam++") for name in layers]


def method_combos(layers, last: int = 2) -> list[tuple[str, str]]:
  """Every method of genjax.explain.cam at the `last` layers (CAM at the last one only)."""
  return [("cam", layers[-1])] + [(m, name) for m in cam.METHODS[1:] for name in layers[-last:]]


@functools.lru_cache(maxsize=8)
def make_fns(graphdef, pairs, score: str):
  """Jitted (maps of the predicted class, probabilities) functions for one model structure and a
  tuple of (method, layer) pairs (cached, so the overlays, metrics and sanity check share one
  compilation)."""
  layers = tuple(dict.fromkeys(name for _, name in pairs))
  methods = tuple(dict.fromkeys(m for m, _ in pairs))

  @jax.jit
  def predicted_maps(params, rest, x, key):
    model = nnx.merge(graphdef, params, rest)
    out = cam.explain(model, x, layers=layers, methods=methods, targets=cam.top_k(1), score=score,
                      key=key, batch_size=256)  # fmt: skip
    maps = {f"{m}/{name}": out[m][name]["map"][:, 0] for m, name in pairs}
    return maps, jax.nn.softmax(out["output"]), out["targets"][:, 0]

  @jax.jit
  def probs(params, rest, x):
    model = nnx.merge(graphdef, params, rest)
    model.eval()
    return jax.nn.softmax(model(x)[0])

  return predicted_maps, probs


def faithfulness(graphdef, state, ds, pairs, *, score, n, n_curve, steps, batch, n_road=0,
                 seed=0) -> dict:  # fmt: skip
  """Per (method, layer): Average Drop, Increase in Confidence on n images; deletion/insertion AUC
  on the first n_curve; ROAD MoRF/LeRF (mean confidence over 10%..90% removed) on the first n_road;
  Win % of Grad-CAM++ over Grad-CAM per layer where both are in `pairs`."""
  predicted_maps, probs = make_fns(graphdef, tuple(pairs), score)
  predict = lambda img: probs(state.params, state.rest, img)
  key = jax.random.key(seed)
  acc: dict[str, list] = {}
  for i in tqdm(range(0, n, batch), desc="faithfulness", unit="batch"):
    x = jnp.asarray(ds.x[i : i + batch])
    maps, p, c = predicted_maps(state.params, state.rest, x, jax.random.fold_in(key, i))
    y = jnp.take_along_axis(p, c[:, None], -1)[:, 0]
    for k, m in maps.items():
      o = jnp.take_along_axis(predict(metrics.masked_inputs(x, m)), c[:, None], -1)[:, 0]
      acc.setdefault(f"{k}/drop", []).append(np.asarray(metrics.average_drop(y, o)))
      acc.setdefault(f"{k}/increase", []).append(np.asarray(metrics.increase_in_confidence(y, o)))
      if i < n_curve:
        dele = metrics.perturbation_curve(predict, x, m, c, x, jnp.zeros_like(x), steps=steps)
        ins = metrics.perturbation_curve(predict, x, m, c, metrics.blur(x), x, steps=steps)
        acc.setdefault(f"{k}/deletion", []).append(np.asarray(metrics.auc(dele)))
        acc.setdefault(f"{k}/insertion", []).append(np.asarray(metrics.auc(ins)))
      if i < n_road:
        for order in ("morf", "lerf"):
          r = metrics.road_curve(predict, x[: n_road - i], m[: n_road - i], c[: n_road - i],
                                 key=jax.random.fold_in(key, i), order=order)  # fmt: skip
          acc.setdefault(f"{k}/road_{order}", []).append(np.asarray(r.mean(-1)))
  per = {k: np.concatenate(v) for k, v in acc.items()}
  rows = {}
  for m, name in pairs:
    k = f"{m}/{name}"
    rows[k] = {
      "average_drop": float(per[f"{k}/drop"].mean()),
      "increase_in_confidence": float(per[f"{k}/increase"].mean()),
      "deletion_auc": float(per[f"{k}/deletion"].mean()),
      "insertion_auc": float(per[f"{k}/insertion"].mean()),
    }
    if n_road:
      rows[k]["road_morf"] = float(per[f"{k}/road_morf"].mean())
      rows[k]["road_lerf"] = float(per[f"{k}/road_lerf"].mean())
  for m, name in pairs:
    if m == "gradcam++" and f"gradcam/{name}" in rows:
      pp, g = per[f"gradcam++/{name}/drop"], per[f"gradcam/{name}/drop"]
      rows[f"gradcam++/{name}"]["win_vs_gradcam"] = float(metrics.win(pp, g).mean())
      rows[f"gradcam/{name}"]["win_vs_gradcam++"] = float(metrics.win(g, pp).mean())
  return {"n": n, "n_curve": min(n_curve, n), "n_road": min(n_road, n), "steps": steps,
          "score": score, "rows": rows}  # fmt: skip


def sanity_check(graphdef, state, config, ds, layers, *, score, n, seed) -> dict:
  """Cascading randomization from the head down (head, +stage3, ...): mean Spearman correlation
  between maps of the trained and the randomized network, both of the trained network's predicted
  class; re-initialized weights come from a fresh Classifier built with `seed`."""
  cfg = classifier.ClassifierConfig(**config.model.to_dict())
  fresh = nn.build(lambda: classifier.Classifier(cfg, rngs=nnx.Rngs(params=seed)))
  model = nnx.merge(graphdef, state.params, state.rest)
  x = jnp.asarray(ds.x[:n])
  out = {}
  for m, layer_names in (("cam", layers[-1:]), ("gradcam", layers), ("gradcam++", layers)):
    res = sanity.cascading_randomization(
      model, x, layers=layer_names, methods=(m,), cascade=("head", *layers[::-1]), fresh=fresh,
      score=score,
    )  # fmt: skip
    for level, row in res.items():
      out.setdefault(level, {}).update(row)
  return out


def overlays(graphdef, state, ds, pairs, path: Path, *, correct: bool, score: str) -> Path | None:
  """One row per class: the first test image of that class that is (in)correctly classified."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  predicted_maps, probs = make_fns(graphdef, tuple(pairs), score)
  x_all = jnp.asarray(ds.x[:2000])
  c = np.concatenate([np.asarray(probs(state.params, state.rest, x_all[i : i + 250]).argmax(-1))
                      for i in range(0, len(x_all), 250)])  # fmt: skip
  y = ds.y[:2000]
  rows = [np.flatnonzero((y == k) & ((c == y) == correct))[:1] for k in range(10)]
  idx = np.concatenate(rows)
  if len(idx) == 0:
    return None  # e.g. no misclassified image among the first 2000
  maps, p, c = predicted_maps(state.params, state.rest, x_all[idx], jax.random.key(0))
  fig, axes = plt.subplots(len(idx), len(pairs) + 1,
                           figsize=(1.4 * (len(pairs) + 1), 1.5 * len(idx)))  # fmt: skip
  axes = np.atleast_2d(axes)
  for r, i in enumerate(idx):
    img = np.asarray(ds.x[i, ..., 0])
    axes[r, 0].imshow(img, cmap="gray", vmin=0, vmax=1)
    axes[r, 0].set_title(f"{CLASSES[ds.y[i]]}->{CLASSES[int(c[r])]}", fontsize=7)
    for j, (m, name) in enumerate(pairs):
      heat = np.clip(np.asarray(maps[f"{m}/{name}"][r]), 0, 1)
      axes[r, j + 1].imshow(overlay.overlay(np.clip(img, 0, 1), heat))
      if r == 0:
        axes[r, j + 1].set_title(f"{m}\n{name}", fontsize=7)
  for a in axes.ravel():
    a.axis("off")
  fig.suptitle(f"{'correctly' if correct else 'wrongly'} classified test images (true->predicted); "
               f"maps of the predicted class, score {score}", fontsize=8)  # fmt: skip
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return path


def run(model_dir: str, out: str, *, score="exp", n=10000, n_curve=1000, steps=16, batch=250,
        n_sanity=500, n_methods=1000, n_road=200, method_layers=2, seed=1234) -> dict:  # fmt: skip
  """Everything above for the model in model_dir; writes explain.json / explain.md / PNGs to out.

  The layer table (CAM, Grad-CAM, Grad-CAM++ on every stage) uses n images; the methods table
  (all ten at the last `method_layers` stages, ROAD included) the first n_methods, ROAD on the
  first n_road.
  """
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  graphdef, state, config = train.restore(model_dir)
  layers = tuple(classifier.Classifier.layer_names(config.model.channels))
  ds = data.get_dataset(config.dataset, config.test_split)
  n = min(n, len(ds))
  t0 = time.perf_counter()
  for correct in (True, False):
    name = "overlays_correct.png" if correct else "overlays_wrong.png"
    overlays(graphdef, state, ds, combos(layers), out / name, correct=correct, score=score)
  overlays(graphdef, state, ds, method_combos(layers, last=1), out / "overlays_methods.png",
           correct=True, score=score)  # fmt: skip
  result = {"model_dir": str(model_dir), "layers": list(layers)}
  kw = dict(score=score, n_curve=n_curve, steps=steps, batch=batch)
  result["faithfulness"] = faithfulness(graphdef, state, ds, combos(layers), n=n, **kw)
  result["methods"] = faithfulness(graphdef, state, ds, method_combos(layers, method_layers),
                                   n=min(n_methods, n), n_road=n_road, **kw)  # fmt: skip
  result["sanity"] = sanity_check(graphdef, state, config, ds, layers, score=score,
                                  n=min(n_sanity, n), seed=seed)  # fmt: skip
  result["seconds"] = time.perf_counter() - t0
  (out / "explain.json").write_text(json.dumps(result, indent=2))
  (out / "explain.md").write_text(report(result))
  return result


def _table(f: dict, road: bool) -> list[str]:
  head = ("| method | layer | Average Drop % (lower better) | % Increase in Confidence | Win % "
          "| deletion AUC (lower better) | insertion AUC (higher better) |")  # fmt: skip
  if road:
    head += " ROAD MoRF (lower better) | ROAD LeRF (higher better) |"
  lines = [head, "|---" * head.count(" | ") + "|---|"]
  for k, r in f["rows"].items():
    m, layer = k.split("/")
    w = r.get("win_vs_gradcam", r.get("win_vs_gradcam++"))
    line = (f"| {m} | {layer} | {r['average_drop']:.2f} | {r['increase_in_confidence']:.2f} | "
            f"{'' if w is None else f'{w:.2f}'} | {r['deletion_auc']:.4f} | "
            f"{r['insertion_auc']:.4f} |")  # fmt: skip
    if road:
      line += f" {r['road_morf']:.4f} | {r['road_lerf']:.4f} |"
    lines.append(line)
  return lines


def report(result: dict) -> str:
  f, g = result["faithfulness"], result["methods"]
  lines = [
    f"Faithfulness on {f['n']} test images (deletion/insertion AUC on the first {f['n_curve']}, "
    f"{f['steps']} steps; score {f['score']}; maps of the predicted class).",
    "",
    *_table(f, road=False),
    "",
    f"Every method at the last layers on the first {g['n']} test images (deletion/insertion on "
    f"the first {g['n_curve']}, ROAD on the first {g['n_road']}: mean confidence over 10%..90% "
    "of the pixels removed by noisy linear imputation).",
    "",
    *_table(g, road=True),
  ]
  s = result["sanity"]
  keys = list(next(iter(s.values())))
  lines += ["", "Randomization sanity check: mean Spearman correlation of trained vs randomized maps, "
            "both of the trained model's predicted class (near 1 = the map ignores the weights; "
            "lower is what a faithful method shows).", "",
            "| randomized | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]  # fmt: skip
  for level, row in s.items():
    lines.append(f"| {level} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
  return "\n".join(lines) + "\n"
