"""Data parallelism over a device mesh: batches split on the "data" axis, everything else replicated.

jit follows the shardings of its arguments (no pmap), so nothing here is specific to a backend; it
has run on one CPU and on N fake CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N),
not yet on a GPU or a TPU.
"""

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh named ("data",) over the first `num_devices` devices (default: all)."""
  devices = jax.devices()
  n = num_devices or len(devices)
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


def shard_batch(batch, mesh: jax.sharding.Mesh):
  """Places a host batch (pytree of arrays with a leading batch axis) split over the mesh."""
  return jax.device_put(batch, data_sharding(mesh))


def replicate(tree, mesh: jax.sharding.Mesh):
  """Places a pytree (params, optimizer state, a small dataset) whole on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))
