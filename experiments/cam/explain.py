"""Explains a trained classifier: overlay grids, faithfulness metrics and the randomization check.

Reads a workdir written by experiments/cam/train.py and writes to `out`:
  overlays_correct.png, overlays_wrong.png   image x (method, layer) overlays, one row per class
  explain.json, explain.md                   Average Drop %, % Increase in Confidence, Win %,
                                             deletion / insertion AUC, randomization rank correlations
Every map explains the model's predicted class with the chosen score (default exp(logit)).
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
from genjax.explain import cam, metrics
from genjax.models import classifier

CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Boot")  # fmt: skip


def combos(layers) -> list[tuple[str, str]]:
  """(method, layer) pairs: CAM on the last layer, Grad-CAM and Grad-CAM++ on every layer."""
  return [("cam", layers[-1])] + [(m, name) for m in ("gradcam", "gradcam++") for name in layers]


@functools.lru_cache(maxsize=4)
def make_fns(graphdef, layers, score: str):
  """Jitted (maps of the predicted class, probabilities) functions for one model structure
  (cached, so the overlays, metrics and sanity check share one compilation)."""
  explainer = cam.make_explainer(graphdef, layers=tuple(layers), score=score)

  @jax.jit
  def predicted_maps(params, rest, x):
    out = explainer(params, rest, x)
    c = jnp.argmax(out["logits"], -1)
    pick = lambda m: jnp.take_along_axis(m, c[:, None, None, None], axis=1)[:, 0]
    maps = {f"{m}/{name}": pick(out[m][name]["map"]) for m, name in combos(layers)}
    return maps, jax.nn.softmax(out["logits"]), c

  @jax.jit
  def probs(params, rest, x):
    model = nnx.merge(graphdef, params, rest)
    model.eval()
    return jax.nn.softmax(model(x)[0])

  return predicted_maps, probs


def faithfulness(graphdef, state, ds, layers, *, score, n, n_curve, steps, batch) -> dict:
  """Per (method, layer): Average Drop, Increase in Confidence on n images; deletion/insertion AUC
  on the first n_curve; Win % of Grad-CAM++ over Grad-CAM per layer."""
  predicted_maps, probs = make_fns(graphdef, layers, score)
  predict = lambda img: probs(state.params, state.rest, img)
  acc: dict[str, list] = {}
  for i in tqdm(range(0, n, batch), desc="faithfulness", unit="batch"):
    x = jnp.asarray(ds.x[i : i + batch])
    maps, p, c = predicted_maps(state.params, state.rest, x)
    y = jnp.take_along_axis(p, c[:, None], -1)[:, 0]
    for key, m in maps.items():
      o = jnp.take_along_axis(predict(metrics.masked_inputs(x, m)), c[:, None], -1)[:, 0]
      acc.setdefault(f"{key}/drop", []).append(np.asarray(metrics.average_drop(y, o)))
      acc.setdefault(f"{key}/increase", []).append(np.asarray(metrics.increase_in_confidence(y, o)))
      if i < n_curve:
        dele = metrics.perturbation_curve(predict, x, m, c, x, jnp.zeros_like(x), steps=steps)
        ins = metrics.perturbation_curve(predict, x, m, c, metrics.blur(x), x, steps=steps)
        acc.setdefault(f"{key}/deletion", []).append(np.asarray(metrics.auc(dele)))
        acc.setdefault(f"{key}/insertion", []).append(np.asarray(metrics.auc(ins)))
  per = {k: np.concatenate(v) for k, v in acc.items()}
  rows = {}
  for m, name in combos(layers):
    k = f"{m}/{name}"
    rows[k] = {
      "average_drop": float(per[f"{k}/drop"].mean()),
      "increase_in_confidence": float(per[f"{k}/increase"].mean()),
      "deletion_auc": float(per[f"{k}/deletion"].mean()),
      "insertion_auc": float(per[f"{k}/insertion"].mean()),
    }
  for name in layers:
    pp, g = per[f"gradcam++/{name}/drop"], per[f"gradcam/{name}/drop"]
    rows[f"gradcam++/{name}"]["win_vs_gradcam"] = float(metrics.win(pp, g).mean())
    rows[f"gradcam/{name}"]["win_vs_gradcam++"] = float(metrics.win(g, pp).mean())
  return {"n": n, "n_curve": min(n_curve, n), "steps": steps, "score": score, "rows": rows}


def randomized_params(params, config, layers, upto: int, seed: int):
  """Cascading randomization (Adebayo et al. 2018): re-initialize the head and the top `upto`
  stages (upto = 0: head only) with fresh initial values; the rest keeps the trained weights."""
  cfg = classifier.ClassifierConfig(**config.model.to_dict())
  fresh = nnx.state(
    nn.build(lambda: classifier.Classifier(cfg, rngs=nnx.Rngs(params=seed))), nnx.Param
  )
  depth = cfg.depth
  stages = range(len(layers) - upto, len(layers))
  convs = {j for s in stages for j in range(s * depth, (s + 1) * depth)}

  def pick(path, trained, new):
    keys = [getattr(p, "key", getattr(p, "idx", None)) for p in path]
    if keys[0] == "head" or (keys[0] in ("convs", "norms") and keys[1] in convs):
      return new
    return trained

  return jax.tree_util.tree_map_with_path(pick, params, fresh)


def sanity(graphdef, state, config, ds, layers, *, score, n, seed) -> dict:
  """Mean Spearman correlation between maps of the trained and progressively randomized model."""
  predicted_maps, _ = make_fns(graphdef, layers, score)
  x = jnp.asarray(ds.x[:n])
  trained, _, _ = predicted_maps(state.params, state.rest, x)
  out = {}
  for upto in range(len(layers) + 1):
    params = randomized_params(state.params, config, layers, upto, seed)
    rand, _, _ = predicted_maps(params, state.rest, x)
    level = "head" + "".join(f"+{layers[-1 - s]}" for s in range(upto))
    out[level] = {k: float(metrics.spearman(trained[k], rand[k]).mean()) for k in trained}
  return out


def overlays(graphdef, state, ds, layers, path: Path, *, correct: bool, score: str) -> Path | None:
  """One row per class: the first test image of that class that is (in)correctly classified."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  predicted_maps, probs = make_fns(graphdef, layers, score)
  x_all = jnp.asarray(ds.x[:2000])
  # predictions only (a forward pass); the maps of all classes and layers are computed for the
  # chosen rows alone, since for 2000 images they would not fit in memory
  c = np.concatenate([np.asarray(probs(state.params, state.rest, x_all[i : i + 250]).argmax(-1))
                      for i in range(0, len(x_all), 250)])  # fmt: skip
  y = ds.y[:2000]
  rows = [np.flatnonzero((y == k) & ((c == y) == correct))[:1] for k in range(10)]
  idx = np.concatenate(rows)
  if len(idx) == 0:
    return None  # e.g. no misclassified image among the first 2000
  maps, p, c = predicted_maps(state.params, state.rest, x_all[idx])
  cols = combos(layers)
  fig, axes = plt.subplots(len(idx), len(cols) + 1, figsize=(1.4 * (len(cols) + 1), 1.5 * len(idx)))
  axes = np.atleast_2d(axes)
  for r, i in enumerate(idx):
    img = np.asarray(ds.x[i, ..., 0])
    axes[r, 0].imshow(img, cmap="gray")
    axes[r, 0].set_title(f"{CLASSES[ds.y[i]]}->{CLASSES[int(c[r])]}", fontsize=7)
    for j, (m, name) in enumerate(cols):
      axes[r, j + 1].imshow(img, cmap="gray")
      axes[r, j + 1].imshow(np.asarray(maps[f"{m}/{name}"][r]), cmap="jet", alpha=0.5, vmin=0,
                            vmax=1)  # fmt: skip
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
        n_sanity=500, seed=1234) -> dict:  # fmt: skip
  """Everything above for the model in model_dir; writes explain.json / explain.md / PNGs to out."""
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  graphdef, state, config = train.restore(model_dir)
  layers = tuple(classifier.Classifier.layer_names(config.model.channels))
  ds = data.get_dataset(config.dataset, config.test_split)
  n = min(n, len(ds))
  t0 = time.perf_counter()
  for correct in (True, False):
    name = "overlays_correct.png" if correct else "overlays_wrong.png"
    overlays(graphdef, state, ds, layers, out / name, correct=correct, score=score)
  result = {"model_dir": str(model_dir), "layers": list(layers)}
  result["faithfulness"] = faithfulness(graphdef, state, ds, layers, score=score, n=n,
                                        n_curve=n_curve, steps=steps, batch=batch)  # fmt: skip
  result["sanity"] = sanity(graphdef, state, config, ds, layers, score=score,
                            n=min(n_sanity, n), seed=seed)  # fmt: skip
  result["seconds"] = time.perf_counter() - t0
  (out / "explain.json").write_text(json.dumps(result, indent=2))
  (out / "explain.md").write_text(report(result))
  return result


def report(result: dict) -> str:
  f = result["faithfulness"]
  lines = [
    f"Faithfulness on {f['n']} test images (deletion/insertion AUC on the first {f['n_curve']}, "
    f"{f['steps']} steps; score {f['score']}; maps of the predicted class).",
    "",
    "| method | layer | Average Drop % (lower better) | % Increase in Confidence | Win % "
    "| deletion AUC (lower better) | insertion AUC (higher better) |",
    "|---|---|---|---|---|---|---|",
  ]
  for k, r in f["rows"].items():
    m, layer = k.split("/")
    w = r.get("win_vs_gradcam", r.get("win_vs_gradcam++"))
    lines.append(
      f"| {m} | {layer} | {r['average_drop']:.2f} | {r['increase_in_confidence']:.2f} | "
      f"{'' if w is None else f'{w:.2f}'} | {r['deletion_auc']:.4f} | {r['insertion_auc']:.4f} |"
    )
  s = result["sanity"]
  keys = list(next(iter(s.values())))
  lines += ["", "Randomization sanity check: mean Spearman correlation of trained vs randomized maps "
            "(near 1 = the map ignores the weights; lower is what a faithful method shows).", "",
            "| randomized | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]  # fmt: skip
  for level, row in s.items():
    lines.append(f"| {level} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
  return "\n".join(lines) + "\n"
