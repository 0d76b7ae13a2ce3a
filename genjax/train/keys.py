"""PRNG keys by role: every random number of a run comes from key(seed, role), one role per use.

    init_key = keys.key(config.seed, keys.INIT)

key(seed, role) = fold_in(key(seed), role), so a new use (a new role) never shifts the numbers of
another, and a resumed run draws what an uninterrupted one would. The roles every experiment
shares are here; an experiment names its own further roles (2 and up) beside its code.
"""

import jax

INIT = 0  # parameter initialization
TRAIN = 1  # the training loop: step s draws from fold_in(key(seed, TRAIN), s) (genjax.train.loop)


def key(seed: int, role: int) -> jax.Array:
  """The key of `role` in the run of `seed`: fold_in(jax.random.key(seed), role)."""
  return jax.random.fold_in(jax.random.key(seed), role)
