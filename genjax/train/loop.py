"""The training loop every experiment shares: resume, step, check, log, checkpoint.

    workdir, mesh, key = loop.setup(config, workdir)
    ... data, model, train_step ...
    state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, key,
                                   images_per_step=config.batch_size)
    ... evaluate, write results ...
    writer.close(); ckpt.close()

The loop resumes `state` from workdir/checkpoints and runs global steps state.step .. num_steps, so
a killed run started again with the same command continues where its last checkpoint left it and
ends in the same state: batches and keys are functions of the global step. The metrics of step s
are read while step s+1 runs, so the host never stalls the device: only the total loss crosses to
the host each step (a non-finite term makes it non-finite, and then every term is fetched to name
the culprit); all terms are logged every log_every steps. A step that is checkpointed is checked
and logged before its checkpoint is saved (which waits for it anyway), so a checkpoint never holds
a state past a non-finite loss, and a run killed after it resumes with its log complete.

Multi-process (genjax.train.distributed), every process runs this same loop on the global state;
process 0 alone writes config.json, the metrics and the progress bar, and its clock decides when a
time limit is reached, so every process stops after the same step.
"""

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from genjax import kernels
from genjax.train import checkpoint, distributed, keys, sharding
from genjax.train import config as tconfig
from genjax.train import logging as tlog
from genjax.train import state as tstate


def setup(config: ml_collections.ConfigDict, workdir: str | Path):
  """(workdir, mesh, train_key) of a run: the workdir created; the mesh over config.num_devices
  devices (default: all), checked to split config.batch_size evenly; the training key
  fold_in(key(config.seed), 1), whose per-step keys train_step folds in from the step.
  config.kernels (auto | cpu | xla; absent or None: $GENJAX_KERNELS, else auto) sets the form of
  genjax.kernels for everything built afterwards.

  Before anything is built the config's values are range-checked (tconfig.check_values), and a
  workdir that holds checkpoints is checked to hold a run of this config (tconfig.check_resume:
  only run length, reporting, data paths and evaluation may differ); either raises a ConfigError
  (a ValueError) naming the fields. The config is then written to workdir/config.json (by
  process 0, replaced whole so that no process reads half of it), so a run can be restored before
  it has finished.

  config.init_from (optional): the workdir of another run of the same model, optimizer, data and
  seed, whose latest checkpoint (parameters, optimizer states and step) a new run starts from,
  with other loss weights (tconfig.INIT_MAY_CHANGE), e.g. a loss term switched on for the last
  steps of a schedule; once the run has checkpoints of its own it resumes from those."""
  tconfig.check_values(config)
  kernels.set_form(config.get("kernels"))
  try:
    mesh = sharding.make_mesh(config.get("num_devices"))
    sharding.check_batch_size(config.batch_size, mesh)
  except ValueError as e:
    raise tconfig.ConfigError(f"config.num_devices / config.batch_size: {e}") from None
  workdir = Path(workdir)
  saved = workdir / "config.json"
  if saved.exists() and checkpoint.saved_steps(workdir / "checkpoints"):
    tconfig.check_resume(json.loads(saved.read_text()), config, where=str(workdir))
  elif config.get("init_from"):  # a new run that starts from another run's latest checkpoint
    other = Path(config.init_from) / "config.json"
    if not other.exists():
      raise tconfig.ConfigError(f"config.init_from: {other} not found; train that run first.")
    tconfig.check_init(json.loads(other.read_text()), config, where=config.init_from)
  workdir.mkdir(parents=True, exist_ok=True)
  if distributed.is_main():
    partial = saved.with_name(saved.name + ".partial")
    partial.write_text(config.to_json(indent=2))
    partial.replace(saved)
  return workdir, mesh, keys.key(config.seed, keys.TRAIN)


def run(
  config: ml_collections.ConfigDict,
  workdir: str | Path,
  state: Any,
  train_step: Callable,
  get_batch: Callable[[int], Any],
  key: jax.Array,
  *,
  images_per_step: int,
  show: Mapping[str, str] | None = None,
  after_step: Callable[[int, Any], None] | None = None,
) -> tuple[Any, tlog.MetricWriter, checkpoint.Checkpointer]:
  """Trains `state` to config.num_steps; returns (state, writer, checkpointer), both still open.

  config: num_steps, log_every, checkpoint_every; optional progress (default True) and
    time_limit_minutes (a shared machine's budget: stop early, checkpoint, return what was trained).
  train_step(state, batch, key) -> (state, metrics with a scalar "loss"); get_batch(step) -> batch.
  images_per_step: for the images/s figure logged with the metrics.
  show: metrics on the progress bar, with their formats (default {"loss": ".4f"}).
  after_step(n, state): called after each step with the number of steps done (e.g. sample grids).
  """
  workdir, show = Path(workdir), show or {"loss": ".4f"}
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=config.checkpoint_every)
  if ckpt.latest_step() is None and config.get("init_from"):
    state = checkpoint.restore_start(config.init_from, state)  # params, optimizers and step
  else:
    state = ckpt.restore(state)
  start = int(state.step)
  writer = tlog.MetricWriter(workdir, start_step=start)
  bar = tqdm(total=config.num_steps, initial=start, desc=workdir.name, unit="step",
             disable=not (config.get("progress", True) and distributed.is_main()))  # fmt: skip
  minutes = config.get("time_limit_minutes")
  deadline = time.monotonic() + 60 * minutes if minutes else None

  def report(n, metrics, t0, seen, force=False) -> bool:
    """NaN/Inf check of the step that made `n` steps; logs every log_every steps. True if logged."""
    bar.update(1)
    if not force and n % config.log_every and np.isfinite(jax.device_get(metrics["loss"])):
      return False
    metrics = jax.device_get(metrics)
    tstate.check_finite(metrics, n)
    rate = seen / max(time.perf_counter() - t0, 1e-9)
    writer.write_scalars(n, dict(metrics, images_per_s=rate))
    bar.set_postfix({k: f"{float(metrics[k]):{f}}" for k, f in show.items()}, img_s=f"{rate:.0f}")
    return True

  pending, t0, seen = None, time.perf_counter(), 0
  for step in range(start, config.num_steps):
    if deadline is not None and distributed.agree(time.monotonic() > deadline):
      break
    state, metrics = train_step(state, get_batch(step), key)
    if pending is not None and report(*pending, t0, seen):
      t0, seen = time.perf_counter(), 0
    pending, seen = (step + 1, metrics), seen + images_per_step
    if after_step is not None:
      after_step(step + 1, state)
    if ckpt.due(step + 1):  # a saved step has passed its NaN check and has its row in the log
      if report(*pending, t0, seen):
        t0, seen = time.perf_counter(), 0
      pending = None
      ckpt.maybe_save(step + 1, state)
  if pending is not None:
    report(*pending, t0, seen, force=True)
  ckpt.maybe_save(int(state.step), state, force=True)
  bar.close()
  return state, writer, ckpt
