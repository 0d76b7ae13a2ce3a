"""Deterministic, resumable batches: the batch of global step s is a function of (seed, s) only.

    get_batch = batching.batches((x, y), mesh, seed=0, batch_size=128)
    x_s, y_s = get_batch(s)   # sharded over the mesh's data axis

Each epoch is a fixed permutation of the examples, np.random.default_rng([seed, epoch]), cut into
full batches (the last incomplete one is dropped), so a run resumed at step s sees the batches an
uninterrupted run would, whatever the number of devices or processes.
"""

from collections.abc import Callable

import jax
import numpy as np

from genjax.train import sharding


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The order of the examples in `epoch`: a function of (seed, epoch) only, so runs resume exactly."""
  return np.random.default_rng([seed, epoch]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
  """Full batches in one pass over n examples (468 of 128 for Fashion-MNIST's 60,000)."""
  per_epoch = n // batch_size
  if per_epoch == 0:
    raise ValueError(f"batch_size {batch_size} is larger than the dataset ({n} examples).")
  return per_epoch


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> np.ndarray:
  """Indices of the batch taken at global `step` (epochs drop their last incomplete batch)."""
  epoch, i = divmod(step, steps_per_epoch(n, batch_size))
  return epoch_permutation(seed, epoch, n)[i * batch_size : (i + 1) * batch_size]


def batches(arrays, mesh, *, seed: int, batch_size: int, on_device: bool = True,
            prepare: Callable | None = None) -> Callable[[int], object]:  # fmt: skip
  """get(step) -> the rows batch_indices(seed, step, n, batch_size) of `arrays` (an array or a
  pytree of arrays with a common leading axis of n), sharded over the mesh's data axis.

  on_device: the arrays are placed whole on every device once and each batch is gathered there
  (data sets that fit, the usual case here); else each batch is cut on the host and placed
  (sharding.shard_batch). prepare: applied to the gathered batch in the same jitted gather
  (e.g. uint8 pixels to float32), on_device only.
  """
  n = {a.shape[0] for a in jax.tree.leaves(arrays)}
  if len(n) != 1:
    raise ValueError(f"arrays with different leading sizes {sorted(n)} cannot be batched together.")
  n = n.pop()
  if not on_device:
    if prepare is not None:
      raise ValueError("prepare runs in the on-device gather; pass on_device=True.")
    rows = lambda s: jax.tree.map(lambda a: a[batch_indices(seed, s, n, batch_size)], arrays)
    return lambda s: sharding.shard_batch(rows(s), mesh)
  placed = sharding.replicate(arrays, mesh)
  prepare = prepare or (lambda batch: batch)
  take = jax.jit(lambda a, i: prepare(jax.tree.map(lambda x: x[i], a)),
                 out_shardings=sharding.data_sharding(mesh))  # fmt: skip
  return lambda s: take(placed, batch_indices(seed, s, n, batch_size))
