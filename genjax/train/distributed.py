"""Several processes, one program: JAX's distributed runtime started before any JAX computation.

Each process drives its own devices (one host, or one GPU of a host); together they form one global
mesh, every process runs the same steps on its rows of the same global batch, and the gradient
all-reduce crosses processes (NCCL on GPUs, ICI/DCN on TPUs, gloo on CPUs). Only process 0 writes
logs, configs, results and figures; the checkpoint is written by Orbax from every process.
"""

import itertools
import os

import jax

EXPLICIT = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
_barriers = itertools.count()  # every process passes the same barriers in the same order


def launcher() -> str | None:
  """How this process was started as one of several, or None for a single-process run.

  "env": the three EXPLICIT variables (any launcher, e.g. two shells on one machine);
  "slurm": an srun step of more than one task; "ompi": mpirun with a world size above 1;
  "tpu": a Cloud TPU VM (JAX marks one at import by setting TPU_ML_PLATFORM; a single-host TPU
  joins as a 1-process run). The last three are the clusters jax.distributed detects itself.
  """
  env = os.environ
  given = [k for k in EXPLICIT if k in env]
  if len(given) == len(EXPLICIT):
    return "env"
  cluster = None
  if "SLURM_JOB_ID" in env and "SLURM_STEP_NODELIST" in env:
    if int(env.get("SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "1"))) > 1:
      cluster = "slurm"
  elif int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    cluster = "ompi"
  elif env.get("TPU_ML_PLATFORM") == "JAX":
    cluster = "tpu"
  if given and cluster is None:  # on a cluster, JAX reads JAX_COORDINATOR_ADDRESS itself
    missing = ", ".join(k for k in EXPLICIT if k not in env)
    raise ValueError(f"distributed: {', '.join(given)} set but not {missing}; set all three.")
  return cluster


def initialize() -> None:
  """Starts jax.distributed when launcher() finds several processes; otherwise does nothing.

  Call it first, before any JAX computation (jax.distributed must precede the backends). On CPUs
  the cross-process collectives are gloo: JAX's default (0.10), set here where a JAX has none.
  """
  how = launcher()
  if how is None or jax.distributed.is_initialized():
    return
  if jax.config.jax_cpu_collectives_implementation is None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if how == "env":
    jax.distributed.initialize(
      coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
      num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
      process_id=int(os.environ["JAX_PROCESS_ID"]),
    )
  else:
    jax.distributed.initialize()


def is_main() -> bool:
  """True in process 0, the one that writes logs, results and figures (always, single-process)."""
  return jax.process_index() == 0


def barrier(name: str, *, timeout_s: int = 3600) -> None:
  """Waits until every process has reached the barrier `name` (a no-op in a single process).

  It waits on the distributed runtime's key-value store, not in a collective: the first collective
  of a CPU run sets up gloo, which gives up after 30 s, too soon for processes that wait while
  process 0 prepares a data set.
  """
  if jax.process_count() > 1:
    import orbax.checkpoint as ocp

    wait = ocp.multihost.get_barrier_sync_fn()
    wait(key=f"genjax-{name}-{next(_barriers)}", timeout_ms=1000 * timeout_s)


def agree(value: bool) -> bool:
  """Process 0's `value` on every process: decisions that must be the same everywhere (a clock)."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils

  return bool(multihost_utils.broadcast_one_to_all(value))


def main_first(fn, *args, **kwargs):
  """fn(*args, **kwargs) in process 0, then in the others: a cache that fn fills on first use
  (tensorflow-datasets' prepared data on a shared disk) is written by one process, then read."""
  if is_main():
    out = fn(*args, **kwargs)
  barrier("main-first")
  if not is_main():
    out = fn(*args, **kwargs)
  return out
