"""Orbax checkpoints of a train-state pytree: saved every N steps and at the end, resumed from the workdir.

Orbax writes each step to a temporary folder and renames it when complete, so a run killed while
saving leaves the last complete checkpoint as the latest one. A step damaged afterwards (a truncated
or missing file: a full disk, a partial copy) is reported on stderr and moved aside to
<directory>.corrupt/<step>, and the newest step that restores is used.

Saving is asynchronous: maybe_save() returns once the arrays are in host memory (copied off an
accelerator; on a CPU, referenced, which makes the next step's donation copy instead of overwrite)
and the files are written in the background while training goes on; restore() and close() wait for
them. The sharded arrays are saved as they are (each process writes its part, every byte of a
replicated array once) and restored straight into the template's shardings, with no host copy of
the whole state. Multi-process, every process calls every method, and the directory is on a
filesystem that all of them see.
"""

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import orbax.checkpoint as ocp
from flax import nnx

from genjax.train import distributed, sharding


def saved_steps(directory: str | Path) -> list[int]:
  """The steps saved in `directory` (its folders named by a step number), oldest first."""
  directory = Path(directory)
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


def _root_cause(e: BaseException) -> BaseException:
  while e.__cause__ is not None:
    e = e.__cause__
  return e


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:300] if text else "no message"


def _restore_newest(manager: ocp.CheckpointManager, args):
  """(step, restored, errors): the newest step of `manager` that restores with `args`, and the
  (step, root cause) of each newer one that did not. Raises the newest step's error when none
  restores (a template that does not match the run fails every step)."""
  errors = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      return step, manager.restore(step, args=args), errors
    except Exception as e:  # Orbax and TensorStore raise many kinds for a damaged step
      errors.append((step, _root_cause(e)))
  raise errors[0][1]


class Checkpointer:
  """Thin wrapper over ocp.CheckpointManager for one train-state pytree."""

  def __init__(self, directory: str | Path, *, every: int, max_to_keep: int = 2):
    self.every = every
    self.manager = ocp.CheckpointManager(
      Path(directory).absolute(),
      options=ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=True
      ),
    )
    self._last = self.manager.latest_step()  # the newest step saved or being saved

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def restore(self, state):
    """Returns the newest saved state that restores, shaped (and sharded) like `state`, or `state`
    if none was saved.

    Steps newer than the one restored failed to restore into the same template, so they are
    damaged: each is reported and moved aside. If no step restores, nothing is moved and the
    newest step's error is raised (a template that does not match the run fails every step).
    Errors are reported by their root cause (TensorStore's, e.g. OUT_OF_RANGE for a short file),
    not by the wrappers Orbax raises from it.
    """
    self.manager.wait_until_finished()
    if not self.manager.all_steps():
      return state
    abstract = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding)
    template = jax.tree.map(abstract, state)
    step, restored, errors = _restore_newest(self.manager, ocp.args.StandardRestore(template))
    if errors:
      if distributed.is_main():
        for bad, e in errors:
          self._set_aside(bad, e, restored=step)
      distributed.barrier("checkpoint-set-aside")
      self.manager.reload()
    self._last = step
    return restored

  def _set_aside(self, step: int, error: Exception, *, restored: int) -> None:
    directory = Path(self.manager.directory)
    aside = directory.parent / f"{directory.name}.corrupt"
    aside.mkdir(exist_ok=True)
    target = aside / str(step)
    if target.exists():
      shutil.rmtree(target)
    shutil.move(directory / str(step), target)
    print(f"checkpoint step {step} in {directory} could not be restored ({type(error).__name__}: "
          f"{_first_line(error)}); moved to {target}; resuming from step {restored}.",
          file=sys.stderr)  # fmt: skip

  def due(self, step: int) -> bool:
    """True at the multiples of `every` (none when every <= 0)."""
    return self.every > 0 and step % self.every == 0

  def maybe_save(self, step: int, state, *, force: bool = False) -> bool:
    """Starts saving at multiples of `every` (and whenever force=True, e.g. at the last step)."""
    if not (force or self.due(step)):
      return False
    if self._last == step:
      return False
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._last = step
    return True

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _tuples(value):
  """JSON lists back to the tuples the frozen model configs hold (nested ones too)."""
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  return value


def run_config(workdir: str | Path, *, finished: bool = False) -> ml_collections.ConfigDict:
  """The config of the run in `workdir`, its lists under `model` as tuples.

  From workdir/config.json (written when the run starts, so a run can be restored before it has
  finished) or, with finished=True, from the "config" of workdir/results.json (written at its end).
  Raises FileNotFoundError naming the missing file.
  """
  workdir = Path(workdir)
  name = "results.json" if finished else "config.json"
  path = workdir / name
  if not path.exists():
    raise FileNotFoundError(
      f"{path} not found: {workdir} holds no {'finished ' if finished else ''}run; train it first "
      f"(python scripts/train.py --config ... --workdir {workdir})."
    )
  saved = json.loads(path.read_text())
  config = ml_collections.ConfigDict(saved["config"] if finished else saved)
  if "model" in config:
    config.model = ml_collections.ConfigDict(_tuples(config.model.to_dict()))
  return config


def restore_latest(workdir: str | Path, state):
  """`state` (a template: the freshly built train state of the run's config) filled from the
  newest checkpoint in workdir/checkpoints that restores. FileNotFoundError if there is none."""
  directory = Path(workdir) / "checkpoints"
  if not saved_steps(directory):
    raise FileNotFoundError(f"no checkpoint in {directory}; train the model first.")
  ckpt = Checkpointer(directory, every=0)
  try:
    return ckpt.restore(state)
  finally:
    ckpt.close()


def restore_start(workdir: str | Path, state):
  """`state` (a template: the freshly built train state) filled from the newest checkpoint of
  another run's workdir that restores, for a run that starts from it (config.init_from). Nothing in
  that workdir is moved; a newest step that does not restore is reported and the next older one
  read. FileNotFoundError if it holds no checkpoint."""
  directory = Path(workdir).absolute() / "checkpoints"
  if not saved_steps(directory):
    raise FileNotFoundError(f"no checkpoint in {directory} to start from; train that run first.")
  abstract = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding)
  template = jax.tree.map(abstract, state)
  manager = ocp.CheckpointManager(directory)
  try:
    step, restored, errors = _restore_newest(manager, ocp.args.StandardRestore(template))
  finally:
    manager.close()
  for bad, e in errors:
    print(f"checkpoint step {bad} in {directory} could not be restored ({type(e).__name__}: "
          f"{_first_line(e)}); starting from step {step} instead.", file=sys.stderr)  # fmt: skip
  return restored


def restore_model(workdir: str | Path, make_model: Callable[[], nnx.Module], mesh):
  """(graphdef, (params, rest)) of a trained model, for inference: only the `params` and `rest`
  of the newest checkpoint in workdir/checkpoints (a genjax.train.state.TrainState; the optimizer
  state is not read), replicated over `mesh`. make_model() builds the model of the run's config
  (traced for shapes only).

  A newest step that does not restore (a damaged or partial copy) is reported and the next older
  one read instead; nothing in the workdir is moved (reading a model never changes its run). If no
  step restores, the newest step's error is raised."""
  directory = Path(workdir).absolute() / "checkpoints"
  if not saved_steps(directory):
    raise FileNotFoundError(f"no checkpoint in {directory}; train the model first.")
  graphdef, params, rest = nnx.split(nnx.eval_shape(make_model), nnx.Param, ...)
  on_mesh = sharding.replicated(mesh)
  abstract = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=on_mesh)
  template = {"params": jax.tree.map(abstract, params), "rest": jax.tree.map(abstract, rest)}
  args = ocp.args.PyTreeRestore(item=template, partial_restore=True,
                                restore_args=ocp.checkpoint_utils.construct_restore_args(template))  # fmt: skip
  manager = ocp.CheckpointManager(directory)
  try:
    step, restored, errors = _restore_newest(manager, args)
  finally:
    manager.close()
  for bad, e in errors:
    print(f"checkpoint step {bad} in {directory} could not be restored ({type(e).__name__}: "
          f"{_first_line(e)}); reading step {step} instead.", file=sys.stderr)  # fmt: skip
  return graphdef, (restored["params"], restored["rest"])
