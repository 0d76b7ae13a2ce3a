"""A tour of the project on real data: one short run of each of its five parts, one report page.

  python scripts/tour.py --workdir runs/tour            # Fashion-MNIST and LFW photos (offline:
                                                        # GENJAX_DATA_DIR=../shared/data)
  python scripts/tour.py --workdir runs/tour-smoke --smoke   # generated data, every config's :smoke

Five parts, each an experiment's own train_and_evaluate run on its own config with the overrides in
PARTS (the one place the tour's settings live), each in its own workdir under --workdir, then one
page, <workdir>/report.md, with every part's numbers, figures and time. A part whose workdir holds
part.json is finished and skipped when the tour runs again; one killed midway resumes from its
checkpoints. The face part needs the `faces` extra (dlib); without it only that part is skipped.

Measured on a 2-core x86-64 CPU shared with other jobs (load 1 to 2), from an empty TFDS folder
(GENJAX_TFDS_DIR) and an empty compilation cache: 306 s for the whole command. Per part (CPU time
in brackets, both threads counted): autoencoder 37 s [44 s], 27 s of it TFDS preparing
Fashion-MNIST; VAE 12 s [21 s]; GAN 40 s [73 s]; classifier 80 s [141 s]; face swap 135 s [220 s],
29 s of it dlib finding and aligning the pair's 766 photos. Results: autoencoder test MSE 0.01906,
BCE 0.3008 nats per pixel; VAE test -ELBO 258.81, IWAE NLL 252.30 nats (k = 1000, 200 images);
GAN Frechet distance (ours) 55.02, floor 0.91, evaluator 85.9%; classifier 85.07% test accuracy;
face swap held-out self-swap PSNR 16.5 dB (George_W_Bush) and 13.8 dB (Colin_Powell), blurred
faces: not yet a working swap. `--smoke`: 30 s (37 s of CPU time) from an empty cache. Again in a
clean clone of 4c29ce9, machine idle, cold caches: 327 s (parts 41, 13, 50, 90, 128 s), the same
numbers to the last digit.
The short runs show each model working, not its final quality: the full studies, named on the
report page with their measured times, are what the READMEs report.
"""

import dataclasses
import importlib
import importlib.util
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class Part:
  """One short run: experiments/<experiment>/configs/<file>.py:<variant> with `overrides`."""

  name: str  # its workdir under --workdir and its section of the report
  title: str
  config: str  # "<experiment>/<file>:<variant>"
  overrides: dict  # config fields on real data (dotted names for nested fields)
  expected_s: int  # seconds on a 2-core CPU from cold caches (data preparation included)
  data: str  # what its first run does to its data (then cached under GENJAX_TFDS_DIR)
  full: str  # the full study: command, its measured time and result


FASHION = "reading Fashion-MNIST, which the first run prepares with TFDS (importing TensorFlow)"
PARTS = (
  Part("autoencoder", "Dense autoencoder with an L2 weight penalty", "autoencoder/dense:l2",
       {"num_steps": 468}, 40, FASHION,
       "`python scripts/sweep_autoencoder.py --workdir runs/ae`: 17 runs of 468 steps (15 "
       "trained: two repeat a config) in 4 min 39 s on an idle 2-core CPU; dense-l2 test MSE "
       "0.01906, BCE 0.3008 (the same numbers as this part)."),
  Part("vae", "Dense VAE (beta = 1, Bernoulli pixels)", "vae/dense:beta1",
       {"num_steps": 468, "iwae_k": 1000, "iwae_examples": 200}, 20, FASHION,
       "`python scripts/sweep_vae.py --workdir runs/vae`: 7 models in 3 min 50 s on an idle "
       "2-core CPU; dense-beta1 (938 steps) test -ELBO 252.58, IWAE NLL 243.30 nats (k = 1000, "
       "1000 images)."),
  Part("gan", "DCGAN, non-saturating loss", "gan/dcgan:ns",
       {"num_steps": 600, "sample_every": 200, "eval_samples": 2000, "evaluator_steps": 400}, 45,
       FASHION,
       "`python scripts/train_gan_evaluator.py --workdir runs/gan/evaluator` then `python "
       "scripts/sweep_gan.py --workdir runs/gan --evaluator_dir runs/gan/evaluator --seeds 0,1,2` "
       "(4 objectives x 3 seeds x 2000 steps; 20 min 31 s on an idle 2-core CPU): NS Frechet "
       "distance 54.6 +- 2.8, "
       "WGAN-GP 42.7 +- 1.2 (floor 0.30), evaluator 89.0%."),
  Part("classifier", "Autoencoder-regularized classifier (half width), explained by Grad-CAM++",
       "cam/classifier:ae",
       {"num_steps": 300, "warmup_steps": 30, "model.channels": (16, 32, 64)}, 80, FASHION,
       "`python scripts/train_classifiers.py --workdir runs/cam --seeds 0,1,2` (10 epochs, 4680 "
       "steps: 79 min per run), then `python scripts/explain_classifier.py --model runs/cam/ae-s0 "
       "--out runs/cam/explain` (565 s): 93.41 +- 0.17% test accuracy, faithfulness tables."),
  Part("faceswap", "Face swap (a): shared encoder, a decoder per person, at 64x64",
       "faceswap/shared_encoder:default",
       {"num_steps": 200, "batch_size": 8, "model.image_shape": (64, 64, 3),
        "checkpoint_every": 100}, 130,
       "finding and aligning the faces of the pair's photos with dlib (cached for later runs)",
       "`python scripts/train.py --config experiments/faceswap/configs/shared_encoder.py --workdir "
       "runs/faceswap/a-s0 --config.num_steps=2475` (100x100; 1.46 s per step measured, so about "
       "60 min), then "
       "`python scripts/eval_faceswap.py --a runs/faceswap/a-s0`: 67.4% / 68.0% of held-out swaps "
       "match the source under dlib's face descriptor."),
)  # fmt: skip


def missing_faces_extra() -> str | None:
  """Why the face part cannot run here (the `faces` extra is not installed), or None."""
  need = {"dlib": "dlib-bin", "face_recognition_models": "face-recognition-models",
          "cv2": "opencv-python-headless"}  # fmt: skip
  missing = [pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None]
  if not missing:
    return None
  return (f"skipped: the face part needs the `faces` extra ({', '.join(missing)} not installed); "
          'install it with `pip install -e ".[faces]"` and run the tour again.')  # fmt: skip


def get_config(part: Part, smoke: bool):
  """The part's config: the experiment's variant plus the overrides, or its :smoke variant."""
  experiment, rest = part.config.split("/")
  file, variant = rest.split(":")
  module = importlib.import_module(f"experiments.{experiment}.configs.{file}")
  config = module.get_config(f"{variant},smoke" if smoke else variant)
  if not smoke:
    config.update_from_flattened_dict(part.overrides)
  return config


# --- Each part's data, and its numbers and figures after training --------------------------------


def _prepare(experiment: str, config, workdir: Path) -> None:
  """Loads the part's data once (cached in-process), so its first preparation is timed apart."""
  if experiment == "faceswap":
    if config.dataset != "mock":  # the same call as the experiment's, so its cache is hit
      from genjax.data import faces

      config.data_root = _pair_photos(workdir, config)
      faces.load_aligned(config.data_root, size=config.model.image_shape[0])
    return
  from genjax.data import tfds as data

  kw = {"manual_dir": config.data_dir} if config.get("data_dir") else {}
  for split in (config.train_split, config.test_split):
    data.get_dataset(config.dataset, split, **kw)


def _pair_photos(workdir: Path, config) -> str:
  """A folder of links to the pair's LFW photo folders, so that only the two people trained on are
  found and aligned (766 of the 1,140 photos; the crops are cached under the folder's name)."""
  from genjax.data import faces

  src = Path(config.data_root) if config.data_root else faces.default_root("lfw")
  names = (config.identity_a, config.identity_b)
  pair = workdir / f"lfw_{'_'.join(names)}"
  pair.mkdir(parents=True, exist_ok=True)
  for name in names:
    if not (src / name).is_dir():
      raise FileNotFoundError(f"no photos of {name} in {src}; set GENJAX_DATA_DIR to the folder "
                              "that holds faces/lfw.")  # fmt: skip
    if not (pair / name).is_symlink():
      (pair / name).symlink_to((src / name).resolve(), target_is_directory=True)
  return str(pair)


def _autoencoder(workdir: Path, config, r: dict, smoke: bool) -> dict:
  return {
    "numbers": {"test MSE (per pixel)": f"{r['test_mse']:.5f}",
                "test BCE (nats per pixel)": f"{r['test_bce']:.4f}",
                "weight norm": f"{r['weight_norm']:.1f}"},
    "figures": [("16 test images (top) and their reconstructions", "reconstructions.png")],
  }  # fmt: skip


def _vae(workdir: Path, config, r: dict, smoke: bool) -> dict:
  return {
    "numbers": {
      "test -ELBO (nats per image, binarized)": f"{r['test_neg_elbo']:.2f}",
      f"test IWAE NLL (k = {r['iwae_k']}, first {r['iwae_examples']} images)":
        f"{r['test_iwae_nll']:.2f}",
      "KL (nats per image)": f"{r['test_kl']:.2f}",
      "reconstruction MSE (grey pixels)": f"{r['test_mse']:.5f}",
    },
    "figures": [("test images, binarized, reconstructed", "reconstructions.png"),
                ("64 samples from the prior", "samples.png")],
  }  # fmt: skip


def _gan(workdir: Path, config, r: dict, smoke: bool) -> dict:
  grids = sorted((workdir / "samples").glob("step_*.png"))
  notes = ["The scores come from this project's own small Fashion-MNIST classifier (trained in the "
           "part's evaluator/ folder), not Inception-v3: not comparable with FIDs."]  # fmt: skip
  if not smoke:
    notes.append(f"After {r['step']} steps the samples are blobs with the outlines of clothes and "
                 "a checkerboard texture; the study's samples after 2000 steps are still poor too "
                 "(experiments/gan/README.md). The floor is above the study's 0.32 because fewer "
                 "images are compared.")  # fmt: skip
  return {
    "numbers": {
      f"Frechet distance, ours ({r['eval_samples']} samples)": f"{r['fd']:.2f}",
      "floor: real train vs real test": f"{r['fd_floor_train_vs_test']:.2f}",
      "classifier score, ours (1 to 10)":
        f"{r['classifier_score']:.2f} (real test images {r['classifier_score_real']:.2f})",
      "class-histogram entropy (nats; even 2.303)": f"{r['class_entropy']:.3f}",
      "evaluator test accuracy": f"{100 * r['evaluator_test_accuracy']:.1f}%",
    },
    "figures": [(f"samples of a fixed z at step {int(g.stem[5:])}", f"samples/{g.name}")
                for g in grids[-1:]],
    "notes": notes,
  }  # fmt: skip


def _classifier(workdir: Path, config, r: dict, smoke: bool) -> dict:
  cams = explain_classifier(workdir)
  numbers = {"test accuracy" + ("" if smoke else " (10,000 images)"):
             f"{100 * r['test_accuracy']:.2f}%",
             "test cross-entropy": f"{r['test_ce']:.4f}",
             "test reconstruction BCE (nats per pixel)": f"{r['test_rec_bce']:.4f}"}  # fmt: skip
  for layer, row in cams["faithfulness"].items():
    key = f"Grad-CAM++ {layer}: Average Drop % / Increase in Confidence % ({cams['n']} images)"
    numbers[key] = f"{row['average_drop']:.1f} / {row['increase_in_confidence']:.1f}"
  notes = ["Average Drop: the confidence lost when the image is multiplied by the map (lower: the "
           "map keeps what the class needs); Increase in Confidence: % of images whose confidence "
           "rises."]  # fmt: skip
  if not smoke:
    notes.insert(0, f"Channels {tuple(config.model.channels)}, half the study's (32, 64, 128), "
                 f"and {r['step']} steps instead of 4680, to fit the tour's budget.")  # fmt: skip
  return {
    "numbers": numbers,
    "figures": [("Grad-CAM++ (score exp(logit)) of the top-1 and the top-2 class at stage1, "
                 "stage2, stage3; one test image per class", "gradcampp.png"),
                ("test images and the decoder's reconstructions from stage3",
                 "reconstructions.png")],
    "notes": notes,
  }  # fmt: skip


def _faceswap(workdir: Path, config, r: dict, smoke: bool) -> dict:
  a, b = r["identities"]
  numbers = {f"held-out self-swap {n} L1 / PSNR / SSIM":
             f"{r[f'self_{k}_l1']:.3f} / {r[f'self_{k}_psnr']:.1f} dB / {r[f'self_{k}_ssim']:.2f}"
             for k, n in (("a", a), ("b", b))}  # fmt: skip
  numbers["faces: train / held out"] = f"{r['num_train']} / {r['num_test']}"
  figures = [(f"held-out aligned faces, rows: {a}, {a} -> {a}, {a} -> {b}, {b}, {b} -> {b}, "
              f"{b} -> {a} (marked SYNTHETIC)", "preview.png")]  # fmt: skip
  size = config.model.image_shape[0]
  notes = [f"**This is not a working face swap yet.** After {r['step']} steps of "
           f"{config.batch_size} faces per person at {size}x{size} the decoders draw a blurred, "
           "generic face: a swap "
           "changes the face region but carries little of the source's identity, and the pasted "
           "face is visibly soft. The part shows the pipeline end to end (detection, alignment, "
           "training, paste-back, SYNTHETIC mark); the full run below is the one that swaps, and "
           "the face-swap README judges it with dlib's face descriptor."]  # fmt: skip
  if not smoke:
    figures.append(
      (
        f"held-out photos: before | after ({a} -> {b}, then {b} -> {a}); the whole "
        "pipeline: dlib finds and aligns the face, the model redraws it, it is pasted "
        "back (alpha, colour transfer), marked SYNTHETIC",
        photo_swaps(workdir),
      )
    )
  return {"numbers": numbers, "figures": figures, "notes": notes}


FINISH: dict[str, Callable] = {"autoencoder": _autoencoder, "vae": _vae, "gan": _gan,
                               "cam": _classifier, "faceswap": _faceswap}  # fmt: skip


def explain_classifier(workdir: Path, *, n: int = 1000, batch: int = 250) -> dict:
  """Grad-CAM++ of the top-2 classes at every stage: the overlay figure (first test image of each
  class) and, per stage, Average Drop / Increase in Confidence of the top-1 map on n test images."""
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from experiments.cam import train as cam_train
  from genjax.data import tfds as data
  from genjax.explain import cam, metrics
  from genjax.models import classifier

  graphdef, state, config = cam_train.restore(workdir)
  layers = classifier.Classifier.layer_names(config.model.channels)
  ds = data.get_dataset(config.dataset, config.test_split)
  batch = min(batch, len(ds))
  n = max(batch, min(n, len(ds)) // batch * batch)

  @jax.jit
  def maps_and_drop(params, rest, x):
    model = nnx.merge(graphdef, params, rest)
    out = cam.explain(model, x, layers=layers, methods=("gradcam++",), targets=cam.top_k(2),
                      score="exp")  # fmt: skip
    p, c = jax.nn.softmax(out["output"]), out["targets"]
    model.eval()
    y = jnp.take_along_axis(p, c[:, :1], -1)[:, 0]
    drops = {}
    for layer in layers:
      m = out["gradcam++"][layer]["map"]
      o = jax.nn.softmax(model(metrics.masked_inputs(x, m[:, 0]))[0])
      o = jnp.take_along_axis(o, c[:, :1], -1)[:, 0]
      drops[layer] = (metrics.average_drop(y, o), metrics.increase_in_confidence(y, o))
    return {layer: out["gradcam++"][layer]["map"] for layer in layers}, c, p, drops

  acc: dict[str, list] = {layer: [] for layer in layers}
  for i in range(0, n, batch):
    maps, c, p, drops = jax.device_get(maps_and_drop(state.params, state.rest, ds.x[i : i + batch]))
    if i == 0:
      first = (maps, c, p)
    for layer in layers:
      acc[layer].append(drops[layer])
  faithfulness = {layer: {"average_drop": float(np.concatenate([d for d, _ in v]).mean()),
                          "increase_in_confidence": float(np.concatenate([u for _, u in v]).mean())}
                  for layer, v in acc.items()}  # fmt: skip
  _overlay_figure(workdir / "gradcampp.png", ds.x[:batch], ds.y[:batch], *first, layers)
  return {"n": n, "faithfulness": faithfulness}


def _overlay_figure(path: Path, x, y, maps, c, p, layers, *, scale: int = 4) -> None:
  """Rows: the first image of each class; columns: the image, then (top-1, top-2) x layers; each
  tile labelled with its class, probability and layer (one PIL image: 70 matplotlib axes took
  seconds to lay out)."""
  from PIL import Image, ImageDraw

  from genjax.data.tfds import SHORT_NAMES as CLASSES
  from genjax.explain import overlay

  rows = [int(np.flatnonzero(y == k)[0]) for k in range(len(CLASSES)) if np.any(y == k)]
  cols = [(t, layer) for t in (0, 1) for layer in layers]
  side, band, pad = x.shape[1] * scale, 24, 4
  h, w = side + band, side + pad
  grid = np.full((len(rows) * h, (len(cols) + 1) * w, 3), 255, np.uint8)
  labels = []
  for r, i in enumerate(rows):
    img = np.clip(np.asarray(x[i, ..., 0], np.float64), 0, 1)
    tiles = [np.repeat(img[..., None], 3, -1)]
    labels.append((r, 0, f"{CLASSES[int(y[i])]}\n(true class)"))
    for j, (t, layer) in enumerate(cols, 1):
      tiles.append(overlay.overlay(img, np.clip(np.asarray(maps[layer][i, t], np.float64), 0, 1)))
      k = int(c[i, t])
      labels.append((r, j, f"top-{t + 1} {CLASSES[k]} {p[i, k]:.2f}\n{layer}"))
    for j, tile in enumerate(tiles):
      big = np.kron(tile, np.ones((scale, scale, 1)))
      grid[r * h + band : (r + 1) * h, j * w : j * w + side] = np.round(big * 255).astype(np.uint8)
  im = Image.fromarray(grid)
  draw = ImageDraw.Draw(im)
  for r, j, text in labels:
    draw.multiline_text((j * w + 1, r * h + 1), text, fill=(0, 0, 0), spacing=1)
  im.save(path)


def photo_swaps(workdir: Path) -> str:
  """Before | after of the first held-out photo of each person, swapped to the other one; returns
  the figure's file name in workdir."""
  from PIL import Image

  from experiments.faceswap import train as fs_train
  from genjax.data import faces
  from genjax.faces import mark, swap

  graphdef, state, config = fs_train.restore(workdir)
  names, size = (config.identity_a, config.identity_b), config.model.image_shape[0]
  root = Path(config.data_root) if config.data_root else faces.default_root("lfw")
  rows = []
  for i, name in enumerate(names):
    photo_path = next(f for f in sorted((root / name).glob("*.jpg")) if faces.is_held_out(f.name))
    fn = fs_train.swap_fn(graphdef, 1 - i)
    redraw = lambda crops, fn=fn: np.asarray(fn(state, crops))
    with Image.open(photo_path) as im:
      photo = np.asarray(im.convert("RGB"))
    out, _, _ = swap.swap_frame(photo, redraw, size, swap.SwapOptions())
    rows.append(np.concatenate([photo, np.full((photo.shape[0], 4, 3), 255, np.uint8), out], 1))
  mark.save_synthetic_png(workdir / "before_after.png", np.concatenate(rows, 0) / 255.0)
  return "before_after.png"


# --- The tour -------------------------------------------------------------------------------------


def run_part(i: int, part: Part, workdir: Path, smoke: bool, log: Callable = print) -> dict:
  """Trains and reports one part (or reads its part.json if finished); returns its record."""
  part_dir, total = workdir / part.name, len(PARTS)
  done = part_dir / "part.json"
  if done.exists():
    record = json.loads(done.read_text())
    if record["smoke"] != smoke:
      kind = "--smoke" if record["smoke"] else "real-data"
      raise ValueError(f"{part_dir} holds a {kind} run; give this tour another --workdir.")
    log(f"part {i}/{total}: {part.title}: finished before ({record['seconds']:.0f} s), skipped")
    return record
  experiment = part.config.split("/")[0]
  log(f"part {i}/{total}: {part.title} (expected ~{part.expected_s} s)"
      + (" [smoke: generated data]" if smoke else ""))  # fmt: skip
  why = None if smoke else (missing_faces_extra() if experiment == "faceswap" else None)
  if why:  # no part.json: the part runs once the extra is installed
    log(f"part {i}/{total}: {why}")
    return {"name": part.name, "title": part.title, "skipped": why}
  t0, cpu0 = time.perf_counter(), time.process_time()
  config = get_config(part, smoke)
  _prepare(experiment, config, part_dir)
  data_s = time.perf_counter() - t0
  train = importlib.import_module(f"experiments.{experiment}.train")
  results = train.train_and_evaluate(config, str(part_dir))
  section = FINISH[experiment](part_dir, config, results, smoke)
  overrides = {} if smoke else {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in part.overrides.items()}  # fmt: skip
  record = {"name": part.name, "title": part.title, "smoke": smoke, "config": part.config,
            "overrides": overrides, "steps": int(results["step"]), "data_seconds": data_s,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0,
            **section}  # fmt: skip
  done.write_text(json.dumps(record, indent=2))
  numbers = "; ".join(f"{k}: {v}" for k, v in record["numbers"].items())
  log(f"part {i}/{total}: done in {record['seconds']:.0f} s ({record['cpu_seconds']:.0f} s of "
      f"CPU time); {numbers}")  # fmt: skip
  return record


def run(workdir: str | Path, *, smoke: bool = False, parts=None, log: Callable = print) -> Path:
  """Runs the tour's parts (names from PARTS; default all) into workdir; returns report.md."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  unknown = set(parts or ()) - {p.name for p in PARTS}
  if unknown:
    raise ValueError(f"unknown parts {sorted(unknown)}; choose from {[p.name for p in PARTS]}")
  t0, records = time.perf_counter(), []
  for i, part in enumerate(PARTS, 1):
    if parts and part.name not in parts:
      records.append({"name": part.name, "title": part.title, "skipped": "not run (--parts)"})
      continue
    records.append(run_part(i, part, workdir, smoke, log))
  path = workdir / "report.md"
  path.write_text(report(records, smoke=smoke, seconds=time.perf_counter() - t0))
  return path


def report(records: list[dict], *, smoke: bool, seconds: float) -> str:
  """The report page: a summary table, one section per part, the full studies."""
  data = "generated data (every config's :smoke variant)" if smoke else "Fashion-MNIST and LFW"
  ran = [r for r in records if "seconds" in r]
  lines = [
    f"# genjax tour: {data}", "",
    f"{platform.machine()} CPU with {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}. "
    f"This invocation took {seconds:.0f} s; the parts' own times (each from the run that finished "
    f"it, data preparation and compilation included) add up to "
    f"{sum(r['seconds'] for r in ran):.0f} s.", "",
    "Every part's settings: `PARTS` in `experiments/tour.py`. Running the tour again skips the "
    "finished parts (part.json in their folders) and resumes an interrupted one.", "",
    "| part | time | key numbers |", "|---|---|---|",
  ]  # fmt: skip
  if smoke:
    lines[2:2] = ["Two steps per part on generated data: the numbers test the code, not the "
                  "models.", ""]  # fmt: skip
  for i, r in enumerate(records, 1):
    cell = r.get("skipped") or "; ".join(f"{k}: {v}" for k, v in list(r["numbers"].items())[:2])
    time_s = f"{r['seconds']:.0f} s" if "seconds" in r else "-"
    lines.append(f"| {i}. [{r['title']}](#{i}-{r['name']}) | {time_s} | {cell} |")
  for i, (part, r) in enumerate(zip(PARTS, records, strict=True), 1):
    lines += ["", f'<a id="{i}-{part.name}"></a>', "", f"## {i}. {part.title}", ""]
    if "skipped" in r:
      lines += [f"**{r['skipped']}**", "", f"Full run: {part.full}"]
      continue
    file, variant = part.config.split("/")[1].split(":")
    cfg = f"`experiments/{part.config.split('/')[0]}/configs/{file}.py:{variant}"
    if smoke:
      head = f"{cfg},smoke`: {r['steps']} steps in `{part.name}/`; took {r['seconds']:.0f} s."
    else:
      over = ", ".join(f"`{k}={v}`" for k, v in r["overrides"].items())
      data = f", {r['data_seconds']:.0f} s of it {part.data}" if r["data_seconds"] >= 1 else ""
      head = (f"{cfg}` with {over}: {r['steps']} steps in `{part.name}/`; took "
              f"{r['seconds']:.0f} s{data} (expected ~{part.expected_s} s from cold "
              "caches).")  # fmt: skip
    lines += [head, "",
              "| number | value |", "|---|---|"]  # fmt: skip
    lines += [f"| {k} | {v} |" for k, v in r["numbers"].items()]
    for caption, file_name in r["figures"]:
      lines += ["", f"![{caption}]({part.name}/{file_name})", "", f"*{caption}*"]
    lines += ["", *(f"{note}\n" for note in r.get("notes", ())), f"Full run: {part.full}"]
  return "\n".join(lines) + "\n"
