"""Orbax checkpoints of a train-state pytree: saved every N steps and at the end, resumed from the workdir.

Orbax writes each step to a temporary folder and renames it when complete, so a run killed while
saving leaves the last complete checkpoint as the latest one. A step damaged afterwards (a truncated
or missing file: a full disk, a partial copy) is reported on stderr and moved aside to
<directory>.corrupt/<step>, and the newest step that restores is used. The state is replicated over
the mesh (data parallelism), so one host copy is saved and restored arrays are placed back with the
shardings of the template state.
"""

import shutil
import sys
from pathlib import Path

import jax
import orbax.checkpoint as ocp


def saved_steps(directory: str | Path) -> list[int]:
  """The steps saved in `directory` (its folders named by a step number), oldest first."""
  directory = Path(directory)
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


class Checkpointer:
  """Thin wrapper over ocp.CheckpointManager for one train-state pytree."""

  def __init__(self, directory: str | Path, *, every: int, max_to_keep: int = 2):
    self.every = every
    self.manager = ocp.CheckpointManager(
      Path(directory).absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def restore(self, state):
    """Returns the newest saved state that restores, shaped (and sharded) like `state`, or `state`
    if none was saved.

    Steps newer than the one restored failed to restore into the same template, so they are
    damaged: each is reported and moved aside. If no step restores, nothing is moved and the
    newest step's error is raised (a template that does not match the run fails every step).
    """
    steps = sorted(self.manager.all_steps(), reverse=True)
    template, errors = jax.device_get(state), []
    for step in steps:
      try:
        host = self.manager.restore(step, args=ocp.args.StandardRestore(template))
      except Exception as e:  # Orbax and TensorStore raise many kinds for a damaged step
        errors.append((step, e))
        continue
      for bad, e in errors:
        self._set_aside(bad, e, restored=step)
      return jax.tree.map(lambda a, t: jax.device_put(a, t.sharding), host, state)
    if errors:
      raise errors[0][1]
    return state

  def _set_aside(self, step: int, error: Exception, *, restored: int) -> None:
    directory = Path(self.manager.directory)
    aside = directory.parent / f"{directory.name}.corrupt"
    aside.mkdir(exist_ok=True)
    target = aside / str(step)
    if target.exists():
      shutil.rmtree(target)
    shutil.move(directory / str(step), target)
    self.manager.reload()
    text = str(error).strip()
    message = text.splitlines()[0][:300] if text else "no message"
    print(f"checkpoint step {step} in {directory} could not be restored ({type(error).__name__}: "
          f"{message}); moved to {target}; resuming from step {restored}.", file=sys.stderr)  # fmt: skip

  def maybe_save(self, step: int, state, *, force: bool = False) -> bool:
    """Saves at multiples of `every` (and whenever force=True, e.g. at the last step)."""
    if not force and (self.every <= 0 or step % self.every):
      return False
    if self.manager.latest_step() == step:
      return False
    self.manager.save(step, args=ocp.args.StandardSave(jax.device_get(state)), force=True)
    self.manager.wait_until_finished()
    return True

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
