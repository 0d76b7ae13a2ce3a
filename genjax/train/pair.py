"""Two networks trained against each other, each with its own optimizer: G and D.

G is whatever D judges (a GAN's generator, an adversarial autoencoder, a face-swap generator); D is
the discriminator or critic. One train step alternates the two updates, each a jax.grad of its own
objective with the other network held fixed:

    g_def, d_def, state = pair.create(make_g, make_d, g_tx, d_tx, mesh)
    state, d_terms = pair.update_d(state, lambda d_params: (L_D, terms), d_tx)
    state, g_terms = pair.update_g(state, lambda g_params: (L_G, terms), g_tx)

`frozen` holds the variables of a fixed network that the losses read (a face-swap model's identity
net): it is checkpointed with the state and never updated.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from genjax.train import sharding


@struct.dataclass
class PairState:
  """step: int32 scalar; G's and D's nnx.Param state, other variables and optimizer state; frozen:
  variables of a fixed net (None if there is none)."""

  step: jax.Array
  g_params: Any
  g_rest: Any
  g_opt: Any
  d_params: Any
  d_rest: Any
  d_opt: Any
  frozen: Any = None


def create(make_g: Callable[[], nnx.Module], make_d: Callable[[], nnx.Module], g_tx, d_tx, mesh,
           frozen: Any = None) -> tuple[nnx.GraphDef, nnx.GraphDef, PairState]:  # fmt: skip
  """(g_graphdef, d_graphdef, state): both networks and their optimizer states initialized in one
  jit, everything (frozen too) replicated over the mesh."""
  g_def = nnx.split(nnx.eval_shape(make_g), nnx.Param, ...)[0]
  d_def = nnx.split(nnx.eval_shape(make_d), nnx.Param, ...)[0]

  def init(frozen):
    _, gp, gr = nnx.split(make_g(), nnx.Param, ...)
    _, dp, dr = nnx.split(make_d(), nnx.Param, ...)
    return PairState(jnp.zeros((), jnp.int32), gp, gr, g_tx.init(gp), dp, dr, d_tx.init(dp), frozen)

  return g_def, d_def, jax.jit(init, out_shardings=sharding.replicated(mesh))(frozen)


def update_d(state: PairState, objective: Callable, d_tx) -> tuple[PairState, Any]:
  """One step of d_tx on objective(d_params) -> (loss, aux); G and frozen pass through."""
  grads, aux = jax.grad(objective, has_aux=True)(state.d_params)
  updates, d_opt = d_tx.update(grads, state.d_opt, state.d_params)
  return state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt=d_opt), aux


def update_g(state: PairState, objective: Callable, g_tx) -> tuple[PairState, Any]:
  """One step of g_tx on objective(g_params) -> (loss, aux); D and frozen pass through."""
  grads, aux = jax.grad(objective, has_aux=True)(state.g_params)
  updates, g_opt = g_tx.update(grads, state.g_opt, state.g_params)
  return state.replace(g_params=optax.apply_updates(state.g_params, updates), g_opt=g_opt), aux
