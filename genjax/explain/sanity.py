"""The cascading model-parameter randomization check (Adebayo et al. 2018) for any NNX model.

The parameters of the modules in `cascade` (named by path, from the output down) are replaced one
module after another by re-initialized ones; after each step the maps of the randomized network are
compared with the trained network's by Spearman rank correlation. A map that stays correlated
while the weights above its layer are random follows the input, not what the network learned.
The target class is fixed: the trained network's (so trained and randomized maps explain the same
class, whatever the randomized network predicts).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from genjax.explain import cam, metrics


def _keys(path) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _under(keys: tuple[str, ...], prefix: str) -> bool:
  want = tuple(prefix.split("."))
  return keys[: len(want)] == want


def randomize(
  model: nnx.Module, paths: Sequence[str], *, fresh: nnx.Module | None = None, key=None
):
  """A copy of `model` whose parameters under `paths` are re-initialized.

  fresh: a model of the same structure (e.g. built with another seed) whose parameters are taken;
  without it each parameter array is redrawn as N(0, std of the trained array) with `key`
  (constant arrays, such as zero biases, keep their value).
  """
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  names = [_keys(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  for p in paths:
    if not any(_under(k, p) for k in names):
      raise ValueError(f"no parameters under {p!r} in {type(model).__name__}.")
  if fresh is not None:
    new = nnx.state(fresh, nnx.Param)
    if jax.tree.structure(new) != jax.tree.structure(params):
      raise ValueError("fresh must have the same parameter structure as model.")
  else:
    if key is None:
      raise ValueError("randomize needs fresh= or key=.")
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    drawn = [
      jnp.where(v.std() > 0, v.std() * jax.random.normal(k, v.shape, v.dtype), v)
      for v, k in zip(leaves, keys, strict=True)
    ]
    new = jax.tree.unflatten(treedef, drawn)

  def pick(path, trained, replaced):
    return replaced if any(_under(_keys(path), p) for p in paths) else trained

  mixed = jax.tree_util.tree_map_with_path(pick, params, new)
  return nnx.merge(graphdef, mixed, rest)


def cascading_randomization(
  model: nnx.Module,
  x: jax.Array,
  *,
  layers: Sequence[str],
  cascade: Sequence[str],
  methods: Sequence[str] = ("gradcam", "gradcam++"),
  targets=None,
  fresh: nnx.Module | None = None,
  key=None,
  **explain_kw,
) -> dict:
  """{level: {"method/layer": mean Spearman correlation}} for the cascade's levels.

  Level i has cascade[0..i] re-initialized (e.g. cascade=("head", "stage3", "stage2", "stage1"),
  levels "head", "head+stage3", ...). targets: int [B]; default the trained model's predicted
  class, held fixed for every level. Other keywords go to cam.explain.
  """
  if targets is None:
    out = cam.explain(model, x, layers=layers, methods=(), targets=cam.top_k(1), **explain_kw)
    targets = out["targets"][:, 0]
  kw = dict(layers=layers, methods=methods, targets=targets, **explain_kw)

  def maps(m):
    out = cam.explain(m, x, **kw)
    return {f"{me}/{la}": out[me][la]["map"][:, 0] for me in methods for la in out[me]}

  trained = maps(model)
  result = {}
  for i in range(len(cascade)):  # one draw for all levels: level i+1 extends level i
    rand = maps(randomize(model, cascade[: i + 1], fresh=fresh, key=key))
    level = "+".join(cascade[: i + 1])
    result[level] = {
      name: float(metrics.spearman(trained[name], rand[name]).mean()) for name in trained
    }
  return result
