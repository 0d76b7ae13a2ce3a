"""The train state (a small pytree) and the pure, jitted train step built on jax.grad and optax."""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from genjax.train import sharding

# XLA:CPU hands matrix products to YNNPACK and fuses neighbouring element-wise ops into them,
# where it first writes out their broadcast operands (a bias, or the zero of a ReLU, as a whole
# [B, H, W, C] array). Training steps compile with that off (the step times with and without are
# in the README's "How a run works").
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def _step_compiler_options() -> dict | None:
  """CPU_COMPILER_OPTIONS on the CPU if this XLA knows them (older jaxlibs have no YNNPACK), else None."""
  if jax.default_backend() != "cpu":
    return None
  try:
    jax.jit(lambda v: v + 1, compiler_options=CPU_COMPILER_OPTIONS).lower(np.float32(0)).compile()
  except RuntimeError:  # "No such compile option": compile as XLA would by default
    return None
  return CPU_COMPILER_OPTIONS


def jit_step(fn: Callable, **jit_kwargs) -> Callable:
  """jax.jit(fn, **jit_kwargs), with CPU_COMPILER_OPTIONS when JAX runs on a CPU that has them."""
  return jax.jit(fn, compiler_options=_step_compiler_options(), **jit_kwargs)


@struct.dataclass
class TrainState:
  """step: int32 scalar; params: nnx.Param state; rest: other variables; opt_state: optax state."""

  step: jax.Array
  params: Any
  rest: Any
  opt_state: Any


def create(
  make_model: Callable[[], nnx.Module], tx: optax.GradientTransformation, mesh
) -> tuple[nnx.GraphDef, TrainState]:
  """Builds the model and its TrainState inside one jit, replicated over `mesh`.

  Initializing under jit compiles once, instead of once per eager op, and writes every array
  straight to its place on the mesh (no host copy of the parameters).

  Args:
    make_model: () -> nnx.Module, e.g. lambda: Autoencoder(cfg, rngs=nnx.Rngs(key)).
    tx: the optimizer.
    mesh: the device mesh.

  Returns:
    (graphdef, state): the static structure for nnx.merge, and the state pytree.
  """
  graphdef = nnx.split(nnx.eval_shape(make_model), nnx.Param, ...)[0]

  def init():
    _, params, rest = nnx.split(make_model(), nnx.Param, ...)
    return TrainState(
      step=jnp.zeros((), jnp.int32), params=params, rest=rest, opt_state=tx.init(params)
    )

  state = jax.jit(init, out_shardings=sharding.replicated(mesh))()
  return graphdef, state


LossFn = Callable[[nnx.Module, Any, jax.Array], tuple[jax.Array, dict]]


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, loss_fn: LossFn):
  """jit_step(train_step, donate_argnums=0), train_step(state, batch, key) -> (state, metrics).

  loss_fn(model, batch, key) -> (scalar loss, metrics dict of scalars). The per-step key is
  fold_in(key, state.step), so a resumed run draws exactly the noise of an uninterrupted one.
  Variables other than nnx.Param that the model changes (e.g. batch statistics) are carried over.
  """

  def train_step(state: TrainState, batch, key: jax.Array):
    step_key = jax.random.fold_in(key, state.step)

    def objective(params):
      # copy=True: fresh Variables at this trace level, so batch statistics can be updated here.
      model = nnx.merge(graphdef, params, state.rest, copy=True)
      loss, metrics = loss_fn(model, batch, step_key)
      return loss, (metrics, nnx.split(model, nnx.Param, ...)[2])

    grads, (metrics, rest) = jax.grad(objective, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
    return state.replace(
      step=state.step + 1, params=params, rest=rest, opt_state=opt_state
    ), metrics

  return jit_step(train_step, donate_argnums=0)


def make_eval_fn(graphdef: nnx.GraphDef, fn: Callable[[nnx.Module, Any], Any]):
  """jit(eval(state, batch)) = fn(model, batch) with the model merged from the state."""

  def evaluate(state: TrainState, batch):
    return fn(nnx.merge(graphdef, state.params, state.rest), batch)

  return jax.jit(evaluate)


def check_finite(metrics: dict, step: int) -> None:
  """Stops the run with a message naming the step and the loss term when a metric is NaN or Inf."""
  metrics = jax.device_get(metrics)
  bad = [k for k, v in metrics.items() if not np.isfinite(v)]
  if bad:
    values = ", ".join(f"{k}={float(metrics[k])}" for k in bad)
    raise FloatingPointError(
      f"non-finite loss at step {step}: {values}. Lower the learning rate or "
      "check the inputs; the last checkpoint holds the state before it."
    )
