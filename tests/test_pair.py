"""genjax.train.pair: each update is one optax step on its own objective; the other net and the
frozen variables pass through bit for bit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from genjax.train import pair, sharding


def test_each_update_is_one_optax_step_and_leaves_the_other_net_and_frozen_alone():
  make_g = lambda: nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  make_d = lambda: nnx.Linear(2, 1, rngs=nnx.Rngs(1))
  g_tx, d_tx = optax.adam(0.1), optax.sgd(0.5)
  frozen = {"f": jnp.arange(4.0)}
  g_def, d_def, state = pair.create(make_g, make_d, g_tx, d_tx, sharding.make_mesh(1), frozen)
  assert int(state.step) == 0
  x = jnp.ones((5, 3))
  d_loss = lambda dp: ((nnx.merge(d_def, dp, state.d_rest)(
    nnx.merge(g_def, state.g_params, state.g_rest)(x)) ** 2).mean(), {"d": 1})  # fmt: skip

  new, aux = pair.update_d(state, d_loss, d_tx)
  assert aux == {"d": 1}
  grads = jax.grad(lambda p: d_loss(p)[0])(state.d_params)
  # sgd: params - 0.5 * grad, computed here by hand
  expected = jax.tree.map(lambda p, g: p - 0.5 * g, state.d_params, grads)
  chex.assert_trees_all_close(new.d_params, expected, rtol=1e-6)
  for same in ("g_params", "g_rest", "g_opt", "frozen", "step"):
    chex.assert_trees_all_equal(getattr(new, same), getattr(state, same))

  g_loss = lambda gp: (nnx.merge(g_def, gp, state.g_rest)(x).sum(), None)
  new_g, _ = pair.update_g(state, g_loss, g_tx)
  grads = jax.grad(lambda p: g_loss(p)[0])(state.g_params)
  updates, _ = g_tx.update(grads, state.g_opt, state.g_params)
  chex.assert_trees_all_close(new_g.g_params, optax.apply_updates(state.g_params, updates))
  for same in ("d_params", "d_rest", "d_opt", "frozen"):
    chex.assert_trees_all_equal(getattr(new_g, same), getattr(state, same))
  assert not np.allclose(new_g.g_params["kernel"][...], state.g_params["kernel"][...])
