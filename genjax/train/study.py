"""Multi-run studies: the plan first (run count, expected time, runs done), each config once.

    runs = [study.Run(name, config, seconds), ...]   # seconds: the run's expected time to train
    rows = study.run("autoencoder study", root, runs, train_and_evaluate, basis="...")

Each run is an ordinary workdir <root>/<name>. Before anything trains, the plan is printed: the
number of runs, the planned runs whose config (its full content, less PROGRESS_FIELDS) equals an
earlier one's and so are not trained again, the runs already finished in root, and the expected time
of the rest with its basis. As it goes, each distinct run prints "run i/N: <name>" and whether it is
new, resumed or already done.
"""

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import ml_collections

from genjax.train import config as tconfig

# Fields that set how a run reports progress or when it pauses, not what it trains.
PROGRESS_FIELDS = ("progress", "time_limit_minutes")


@dataclasses.dataclass(frozen=True)
class Run:
  """One planned run: the workdir <root>/<name>, its config, its expected seconds (an estimate)."""

  name: str
  config: ml_collections.ConfigDict
  seconds: float


def content(config: ml_collections.ConfigDict | dict) -> dict:
  """The config as results.json stores it (JSON types: tuples as lists), less PROGRESS_FIELDS."""
  d = tconfig.plain(config)
  for k in PROGRESS_FIELDS:
    d.pop(k, None)
  return d


def differences(planned: dict, stored: dict) -> list[str]:
  """Dotted names of the fields where two config contents differ.

  A planned None matches any stored value: a placeholder that the run resolves and records (the
  classifier's num_steps, from its epochs), so it is a function of the other fields. A field that
  the stored config lacks matches when planned as None or "": the config gained it after that run,
  whose behaviour was this default (e.g. an empty data_dir).
  """
  new, old = dict(tconfig.leaves(planned)), dict(tconfig.leaves(stored))
  out = []
  for path in sorted(new.keys() | old.keys()):
    if path not in old:
      if new[path] not in (None, ""):
        out.append(path)
    elif path not in new or (new[path] != old[path] and new[path] is not None):
      out.append(path)
  return out


def duplicates(runs: Iterable[Run]) -> dict[str, str]:
  """{name: the earlier run with the same config content} for every planned repeat of a config."""
  first, twins = {}, {}
  for r in runs:
    key = json.dumps(content(r.config), sort_keys=True)
    if key in first:
      twins[r.name] = first[key]
    else:
      first[key] = r.name
  return twins


def status(workdir: Path, config: ml_collections.ConfigDict) -> tuple[str, dict | None]:
  """("done", results) for a run that reached its last step with this config; ("resume", None) for
  one of this config stopped before it; ("new", None) otherwise. ValueError when the workdir holds a
  run of another config (training there would resume that run's checkpoints)."""
  results = stored = None
  if (workdir / "results.json").exists():
    results = json.loads((workdir / "results.json").read_text())
    stored = results.get("config", {})
  elif (workdir / "config.json").exists():
    stored = json.loads((workdir / "config.json").read_text())
  if stored is None:
    return "new", None
  diff = differences(content(config), content(stored))
  if diff:
    raise ValueError(
      f"{workdir} holds a run of another config (it differs in {', '.join(diff)}); move that "
      "folder away or choose another --workdir"
    )
  if results is not None and results.get("step") == stored.get("num_steps"):
    return "done", results
  return ("resume" if (workdir / "checkpoints").exists() else "new"), None


def duration(seconds: float) -> str:
  """'40 s', '12 min', '2.5 h'."""
  if seconds < 90:
    return f"{seconds:.0f} s"
  return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def _plan(root: Path, runs: list[Run]) -> tuple[dict, dict]:
  """(twins, {name: status}) of the distinct runs; ValueError for names planned twice and for
  every workdir that holds another config, before anything trains."""
  names = [r.name for r in runs]
  if len(set(names)) < len(names):
    raise ValueError(f"run names planned twice: {sorted({n for n in names if names.count(n) > 1})}")
  twins, states, errors = duplicates(runs), {}, []
  for r in runs:
    try:
      if r.name not in twins:
        states[r.name] = status(root / r.name, r.config)
    except ValueError as e:
      errors.append(str(e))
  if errors:
    raise ValueError("\n".join(errors))
  return twins, states


def run(
  title: str,
  root: str | Path,
  runs: Iterable[Run],
  train: Callable[[ml_collections.ConfigDict, str], dict],
  *,
  basis: str,
  on_result: Callable[[str, dict], None] | None = None,
) -> list[tuple[str, dict]]:
  """Trains each distinct config of `runs` once, in plan order; returns [(name, results)] for all.

  train(config, workdir) -> results: an experiment's train_and_evaluate. A repeat of an earlier
  run's config gets that run's results. basis: how the runs' seconds were estimated (printed).
  on_result(name, results): called as each planned run's results are at hand (partial reports).
  """
  root, runs = Path(root), list(runs)
  twins, states = _plan(root, runs)
  index = {name: i for i, name in enumerate(states, 1)}
  n = len(states)

  # The plan.
  count = {s: sum(st == s for st, _ in states.values()) for s in ("done", "resume", "new")}
  left = sum(r.seconds for r in runs if r.name in states and states[r.name][0] != "done")
  repeats = f" ({len(twins)} repeat an earlier run's config)" if twins else ""
  print(f"{title}: {len(runs)} runs in {root}, {n} to train once each{repeats}", flush=True)
  for name, twin in twins.items():
    print(f"  {name} has the config of {twin}: trained once, its results used for both", flush=True)
  print(f"  {count['done']} of {n} already done (skipped), {count['resume']} to resume, "
        f"{count['new']} new; expected time of the rest: about {duration(left)} "
        f"(an estimate, {basis})", flush=True)  # fmt: skip

  # The runs.
  finished, rows = {}, []
  for r in runs:
    if r.name in twins:
      twin = twins[r.name]
      results = finished[twin]
      print(f"  {r.name}: same config as run {index[twin]}/{n} ({twin}), its results reused",
            flush=True)  # fmt: skip
    else:
      (state, results), i = states[r.name], index[r.name]
      if state == "done":
        print(f"run {i}/{n}: {r.name} (already done: {root / r.name}/results.json)", flush=True)
      else:
        what = "resumed from its checkpoint" if state == "resume" else "new"
        print(f"run {i}/{n}: {r.name} ({what}; about {duration(r.seconds)})", flush=True)
        t0 = time.perf_counter()
        results = train(r.config, str(root / r.name))
        print(f"run {i}/{n}: {r.name} took {duration(time.perf_counter() - t0)}", flush=True)
      finished[r.name] = results
    rows.append((r.name, results))
    if on_result is not None:
      on_result(r.name, results)
  return rows
