"""Evaluation of face-swap methods on the held-out photos of a pair, judged by dlib.

    rows, figures = face_swaps.evaluate(("George_W_Bush", "Colin_Powell"), swappers)

`swappers` maps a method's name to one `make(source) -> (swap_faces, size)` per seed (each
experiment's `face_swapper` with its workdir bound). Every held-out photo of each person (no
network here trained on them; genjax.data.faces.is_held_out) is swapped towards the other person by
the whole photo pipeline and scored by genjax.evaluate.face_identity. Two baselines come first:
"copy target" (the photo unchanged) and "paste source" (a held-out photo of the source, aligned
and pasted by the same code).
"""

import dataclasses
from pathlib import Path

import numpy as np

from genjax.evaluate import face_identity as fid
from genjax.faces import align, blend, detect, mark

FIELDS = ("match", "top1", "within_source", "beyond_target", "found", "landmark_error",
          "face_change", "self_error")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Photo:
  """A whole photo with its face: file name, uint8 pixels, dlib's face nearest the centre."""

  file: str
  pixels: np.ndarray
  face: detect.Face


def photos(person: str, *, held_out: bool, root=None) -> list[Photo]:
  """The original LFW photos of a person (`held_out`: the test files, else the training files)
  in which dlib finds a face, the one nearest the centre (LFW centres the person it names)."""
  from genjax.data import faces

  root = Path(root) if root else faces.default_root("lfw")
  out = []
  for f in sorted((root / person).glob("*.jpg")):
    if faces.is_held_out(f.name) != held_out:
      continue
    pixels = faces.read_rgb(f)
    face = detect.nearest(detect.detect(pixels), np.array(pixels.shape[1::-1]) / 2)
    if face is not None:
      out.append(Photo(f.name, pixels, face))
  return out


def person_mean(person: str, root=None) -> np.ndarray:
  """[128] mean descriptor of a person's training photos (never a held-out one), cached."""
  make = lambda: np.mean([detect.descriptor(p.pixels, p.face)
                          for p in photos(person, held_out=False, root=root)], 0)  # fmt: skip
  return fid.cached(f"mean_{person}", make)


def gallery(root=None) -> tuple[np.ndarray, tuple[str, ...]]:
  """([P, 128] mean descriptors, names) of the LFW3D people (158), held-out files left out, cached."""
  from genjax.data import faces

  ds = faces.load(root)
  keep = faces.split_held_out(ds)[0]
  desc = fid.crop_descriptors(faces.subset(ds, keep), f"lfw3d_train_{len(keep)}")
  return fid.class_means(desc, ds.y[keep], len(ds.names)), ds.names


def swap_photo(photo: Photo, new_face, size: int, **paste) -> np.ndarray:
  """uint8 photo with its face replaced by new_face(aligned crop [size, size, 3]) -> crop, pasted
  back with genjax.faces.blend.paste_back (options `paste`)."""
  x = photo.pixels.astype(np.float32) / 255.0
  crop, m = align.crop(x, photo.face.landmarks5, size)
  out = blend.paste_back(x, np.asarray(new_face(crop), np.float32), m, photo.face.landmarks68,
                         **paste)  # fmt: skip
  return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def face_region_change(outs, targets: list[Photo]) -> float:
  """Mean |out - photo| (pixels in [0, 1]) inside the hull of each target's 68 landmarks."""
  diffs = []
  for out, p in zip(outs, targets, strict=True):
    hull = blend.hull_mask(p.face.landmarks68, p.pixels.shape[:2]) > 0
    diffs.append(np.abs(out.astype(np.float32) - p.pixels)[hull].mean() / 255.0)
  return float(np.mean(diffs))


def _summary(outs, targets, source, target, means, gal, names) -> tuple[dict, fid.Scores]:
  """(the summary of one direction, the scores of each swap)."""
  scores = fid.score(outs, [p.face for p in targets], means[source], means[target], gal)
  summary = dict(scores.summary(names.index(source)), face_change=face_region_change(outs, targets))
  return summary, scores


def match_interval(hits, level: float = 0.95, draws: int = 10_000, seed: int = 0):
  """(low, high) percentile bootstrap interval of the match share over the held-out photos.

  hits: [S, N] bool, seed by photo (or [N] for one seed). Each draw resamples the N photos with
  replacement, a photo keeping its S seeds together, and takes the mean over seeds and photos: how
  far the share of these trained seeds could move with another draw of photos of the same two
  people (the seeds' own spread is the sd beside it). A narrow margin over a bar inside this
  interval is not one the evaluator can tell from the bar. For shares near one half it agrees with
  the binomial's normal approximation (tests/test_face_evaluation.py); at 0 or 1 it collapses (no
  match in any photo gives [0, 0]) and understates the uncertainty there.
  """
  h = np.asarray(hits, np.float64)
  per_photo = (h[None] if h.ndim == 1 else h).mean(0)
  idx = np.random.default_rng(seed).integers(0, len(per_photo), (draws, len(per_photo)))
  stats = per_photo[idx].mean(1)
  tail = (1 - level) / 2
  return float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail))


def rank_correlation(x, y, draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
  """(Spearman's rho, two-sided permutation p-value) of two [N] arrays; ties get their mean rank.

  The p-value is the share of `draws` random pairings of x with a permutation of y whose |rho|
  reaches the observed one ((k + 1) / (draws + 1)); (nan, nan) when either array is constant.
  In float64 on the host, for a handful of photos: genjax.explain.metrics.spearman is the batched
  float32 form for maps, and gives 0, not nan, for a constant map.
  """
  rx, ry = _ranks(x), _ranks(y)
  if rx.std() == 0 or ry.std() == 0:
    return float("nan"), float("nan")
  rx, ry = (rx - rx.mean()) / rx.std(), (ry - ry.mean()) / ry.std()
  rho = float(np.mean(rx * ry))
  perm = np.argsort(np.random.default_rng(seed).random((draws, len(ry))), axis=1)
  null = (ry[perm] * rx).mean(1)
  return rho, float((np.sum(np.abs(null) >= abs(rho) - 1e-12) + 1) / (draws + 1))


def _ranks(v) -> np.ndarray:
  v = np.asarray(v, np.float64)
  r = np.empty(len(v))
  r[np.argsort(v, kind="stable")] = np.arange(1, len(v) + 1)
  _, inv = np.unique(v, return_inverse=True)
  return (np.bincount(inv, r) / np.bincount(inv))[inv]


def pose_association(row: dict) -> dict:
  """{direction: {"abs yaw" | "abs roll" | "eyes": (rho, p)}}: rank_correlation of each held-out
  photo's match share (over seeds) with how its face sits (face_identity.head_pose); does the pose
  or the size of the target's face decide whether a swap is matched?"""
  out = {}
  for d, v in row["photos"].items():
    share = np.mean(v["match"], 0)
    feats = {"abs yaw": np.abs(v["pose"]["yaw"]), "abs roll": np.abs(v["pose"]["roll"]),
             "eyes": np.asarray(v["pose"]["eyes"])}  # fmt: skip
    out[d] = {k: rank_correlation(f, share) for k, f in feats.items()}
  return out


def evaluate(pair: tuple[str, str], swappers: dict, *, paste=None, figure_photos: int = 6,
             root=None) -> tuple[dict, dict]:  # fmt: skip
  """(rows, figures): rows[method] = {"seeds": [{direction: summary}], "mean": ..., "sd": ...,
  "photos": {direction: {"file": [N], "match", "d_source", "d_target": [S][N] (null where dlib
  found no face), "pose": {"yaw" | "roll" | "eyes": [N]}}},
  "interval": {direction: [low, high]}}
  with direction "A->B" (targets of A given B's identity), "B->A" and "both" (summaries only);
  "interval" is match_interval's 95% interval of the match share; figures[name] a before/after
  grid per direction (rows: photo, paste source, each method's first seed); "pose" is
  face_identity.head_pose of each target photo's face."""
  paste = paste or {}
  targets = {p: photos(p, held_out=True, root=root) for p in pair}
  means = {p: person_mean(p, root) for p in pair}
  gal, names = gallery()
  directions = [(pair[0], pair[1]), (pair[1], pair[0])]
  key = lambda t, s: f"{t}->{s}"
  shown = {t: np.linspace(0, len(targets[t]) - 1, figure_photos).round().astype(int)
           for t, _ in directions}  # fmt: skip
  tiles = {key(t, s): [[targets[t][i].pixels for i in shown[t]]] for t, s in directions}

  def run(name, make_outputs, make_self=None, seed=0):
    per, scores = {}, {}
    for t, s in directions:
      outs = make_outputs(t, s)
      per[key(t, s)], scores[key(t, s)] = _summary(outs, targets[t], s, t, means, gal, names)
      if make_self is not None:
        per[key(t, s)]["self_error"] = face_region_change(make_self(t), targets[t])
      if seed == 0 and name != "copy target":
        tiles[key(t, s)].append([outs[i] for i in shown[t]])
    n = {d: per[d]["n"] for d in per}
    per["both"] = {k: float(np.average([per[d][k] for d in n], weights=list(n.values())))
                   for k in per[next(iter(n))] if k != "n"}  # fmt: skip
    per["both"]["n"] = sum(n.values())
    return per, scores

  rows = {"copy target": [run("copy target", lambda t, s: [p.pixels for p in targets[t]])]}
  crops = {p: [align.crop(q.pixels.astype(np.float32) / 255, q.face.landmarks5, 100)[0]
               for q in targets[p]] for p in pair}  # fmt: skip

  def paste_source(t, s):
    return [swap_photo(p, lambda c, i=i: crops[s][i % len(crops[s])], 100, **paste)
            for i, p in enumerate(targets[t])]  # fmt: skip

  rows["paste source"] = [run("paste source", paste_source)]
  for name, makers in swappers.items():
    rows[name] = []
    for seed, make in enumerate(makers):
      by_source = {}

      def outputs(t, s, make=make, by_source=by_source):
        if s not in by_source:
          by_source[s] = make(s)
        fn, size = by_source[s]
        return [swap_photo(p, lambda c: fn(c[None])[0], size, **paste) for p in targets[t]]

      rows[name].append(run(name, outputs, lambda t, o=outputs: o(t, t), seed))
  figures = {f"before_after_{d.replace('->', '_to_')}": grid(v) for d, v in tiles.items()}
  files = {key(t, s): [p.file for p in targets[t]] for t, s in directions}
  poses = {
    key(t, s): [fid.head_pose(p.face.landmarks68) for p in targets[t]] for t, s in directions
  }
  poses = {d: {k: [q[k] for q in v] for k in v[0]} for d, v in poses.items()}
  return {m: _aggregate(v, files, poses) for m, v in rows.items()}, figures


def _aggregate(runs: list[tuple[dict, dict]], files: dict, poses: dict) -> dict:
  seeds = [per for per, _ in runs]
  out = {"seeds": seeds, "mean": {}, "sd": {}, "photos": {}, "interval": {}}
  for d in seeds[0]:
    for stat, fn in (("mean", np.mean), ("sd", lambda v: np.std(v, ddof=1) if len(v) > 1 else 0.0)):
      out[stat][d] = {k: float(fn([s[d][k] for s in seeds])) for k in seeds[0][d]}
  for d in files:
    hits = np.stack([h[d].matches() for _, h in runs])
    dist = {k: [[None if np.isnan(v) else float(v) for v in getattr(h[d], k)] for _, h in runs]
            for k in ("d_source", "d_target")}  # fmt: skip
    out["photos"][d] = {"file": files[d], "match": hits.tolist(), **dist, "pose": poses[d]}
    out["interval"][d] = list(match_interval(hits))
  return out


def grid(rows: list[list[np.ndarray]], crop: int = 180) -> np.ndarray:
  """Rows of photos, each cut to its central crop x crop, as one float image; every tile but those
  of the first row (the originals) marked SYNTHETIC."""
  tiles = []
  for r, row in enumerate(rows):
    for img in row:
      h, w = img.shape[:2]
      t, left = (h - crop) // 2, (w - crop) // 2
      tile = img[t : t + crop, left : left + crop].astype(np.float32) / 255.0
      tiles.append(tile if r == 0 else mark.mark_synthetic(tile))
  ncol = len(rows[0])
  lines = [np.concatenate(tiles[i : i + ncol], 1) for i in range(0, len(tiles), ncol)]
  return np.concatenate(lines, 0)


def save_figure(path, grid: np.ndarray) -> Path:
  """A before/after grid as PNG with the synthetic metadata (its tiles are already marked)."""
  from PIL import Image
  from PIL.PngImagePlugin import PngInfo

  info = PngInfo()
  info.add_text("synthetic", "true")
  info.add_text("Description", mark.SYNTHETIC_NOTE)
  path = Path(path)
  Image.fromarray(np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)).save(path, pnginfo=info)
  return path


def _cell(row: dict, d: str, k: str, pct: bool) -> str:
  m, s = row["mean"][d][k], row["sd"][d][k]
  f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
  cell = f"{f(m)} +- {f(s)}" if len(row["seeds"]) > 1 else f(m)
  if k == "match" and d in row.get("interval", {}):
    low, high = row["interval"][d]
    cell += f" [{100 * low:.1f}, {100 * high:.1f}]"
  return cell


def markdown(rows: dict) -> str:
  """The results as a Markdown table (mean +- sd over seeds where there are several; after each
  match share, [its 95% bootstrap interval over the held-out photos], see match_interval)."""
  dirs = [d for d in next(iter(rows.values()))["mean"] if d != "both"]
  head = ("| method | seeds | " + " | ".join(f"match {d}" for d in dirs) + " | top-1 (158) "
          "| within 0.6 of source | 0.6 or more from target | landmark error | face change "
          "| self-swap error |")  # fmt: skip
  lines = [head, "|" + "---|" * (head.count("|") - 1)]
  for name, row in rows.items():
    cells = [_cell(row, d, "match", True) for d in dirs]
    cells += [_cell(row, "both", k, True) for k in ("top1", "within_source", "beyond_target")]
    cells += [_cell(row, "both", "landmark_error", False), _cell(row, "both", "face_change", False)]
    cells.append(_cell(row, "both", "self_error", False) if "self_error" in row["mean"]["both"]
                 else "-")  # fmt: skip
    lines.append(f"| {name} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
  lines += ["", "Match: mean +- sd over seeds, then [95% bootstrap interval over the held-out "
                "photos, seeds kept together]."]  # fmt: skip
  pose = _pose_table(rows)
  return "\n".join(lines + (["", *pose] if pose else [])) + "\n"


def _pose_table(rows: dict) -> list[str]:
  """Lines of a table of pose_association for each method and direction whose photos' match
  shares are not all equal (copy target, never a match, has no row; nor has a results.json written
  before the pose was kept)."""
  lines = []
  for name, row in rows.items():
    if not all("pose" in v for v in row["photos"].values()):
      continue
    for d, assoc in pose_association(row).items():
      if not lines:
        lines = ["| method | direction | " + " | ".join(f"rho with {k}" for k in assoc) + " |",
                 "|---|---|" + "---|" * len(assoc)]  # fmt: skip
      if not all(np.isnan(r) for r, _ in assoc.values()):
        cells = [f"{r:+.2f} (p = {p:.3f})" if np.isfinite(r) else "-" for r, p in assoc.values()]
        lines.append(f"| {name} | {d} | " + " | ".join(cells) + " |")
  if len(lines) <= 2:
    return []
  return lines + ["", "Spearman's rho of each held-out photo's match share (over seeds) with how "
                      "its face sits (face_identity.head_pose: absolute yaw, absolute roll in "
                      "degrees, eye distance in pixels), two-sided permutation p."]  # fmt: skip
