"""Data parallelism over a device mesh: batches split on the "data" axis, everything else replicated.

jit follows the shardings of its arguments (no pmap), so nothing here is specific to a backend; it
has run on one CPU, on N fake CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N) and
on 2 CPU processes of one device each (tests/test_distributed.py), not yet on a GPU or a TPU. In a
multi-process run the mesh spans the devices of every process; each process computes the same
global host batch and places only its own rows.
"""

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh named ("data",) over the first `num_devices` devices (default: all).

  Multi-process, the mesh holds every device of every process, grouped by process, so that each
  process holds one contiguous block of a batch's rows (process_rows).
  """
  devices = jax.devices()
  n = num_devices or len(devices)
  if jax.process_count() > 1:
    if n != len(devices):
      raise ValueError(
        f"make_mesh: a run of {jax.process_count()} processes uses all of their {len(devices)} "
        f"devices; asked for {n} (leave num_devices unset)"
      )
    devices = sorted(devices, key=lambda d: (d.process_index, d.id))
  if n > len(devices):
    hint = f" (on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count={n} makes {n})"
    raise ValueError(
      f"make_mesh: asked for {n} devices, only {len(devices)} visible"
      + (hint if devices[0].platform == "cpu" else "")
    )
  return jax.sharding.Mesh(np.asarray(devices[:n]), ("data",))


def data_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh) -> None:
  if batch_size % mesh.size:
    raise ValueError(
      f"batch_size {batch_size} is not divisible by the {mesh.size} devices of the mesh."
    )


def process_rows(batch_size: int, mesh: jax.sharding.Mesh) -> slice:
  """The rows of a global batch of `batch_size` that this process's devices hold (all of them in a
  single process): one block, on a mesh from make_mesh."""
  index = data_sharding(mesh).addressable_devices_indices_map((batch_size,))
  rows = sorted((s.start or 0, batch_size if s.stop is None else s.stop) for (s,) in index.values())
  start, stop = rows[0][0], rows[-1][1]
  if sum(b - a for a, b in rows) != stop - start:
    raise ValueError(f"process_rows: this process's rows {rows} are not one block")
  return slice(start, stop)


def shard_batch(batch, mesh: jax.sharding.Mesh):
  """Places a host batch (pytree of arrays with a leading batch axis) split over the mesh.

  `batch` is the global batch, the same on every process; a process of a multi-process run places
  its rows (process_rows) and jax.make_array_from_process_local_data assembles the global array.
  """
  if jax.process_count() == 1:
    return jax.device_put(batch, data_sharding(mesh))

  def place(x):
    x = np.asarray(x)
    local = x[process_rows(x.shape[0], mesh)]
    return jax.make_array_from_process_local_data(data_sharding(mesh), local, x.shape)

  return jax.tree.map(place, batch)


def replicate(tree, mesh: jax.sharding.Mesh):
  """Places a pytree (params, optimizer state, a small dataset) whole on every device of the mesh.

  Multi-process, each process passes the same host values and fills its own devices."""
  return jax.device_put(tree, replicated(mesh))
