"""Orbax checkpoints of a train-state pytree: saved every N steps and at the end, resumed from the workdir.

Orbax writes each step to a temporary folder and renames it when complete, so a run killed while
saving leaves the last complete checkpoint as the latest one. The state is replicated over the mesh
(data parallelism), so one host copy is saved and restored arrays are placed back with the
shardings of the template state.
"""

from pathlib import Path

import jax
import orbax.checkpoint as ocp


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
    """Returns the latest saved state shaped (and sharded) like `state`, or `state` if none exists."""
    step = self.manager.latest_step()
    if step is None:
      return state
    host = self.manager.restore(step, args=ocp.args.StandardRestore(jax.device_get(state)))
    return jax.tree.map(lambda a, t: jax.device_put(a, t.sharding), host, state)

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
