"""Read and edit the output of any layer of a model, named by its dotted path in the module tree.

    out, acts = forward(model, x, layers=("layer4.1", "blocks.2.mlp"), edits={"layer4.1": f})

calls the model on x once; while it runs, each named layer's output y is recorded (acts[path] = y)
and, where an edit is given, replaced by f(y) before the rest of the network reads it. Both the
CAM methods' gradients (f(y) = y + delta, differentiated at delta = 0) and their masked forward
passes (f(y) = y * mask, or f(y) = v to run only the part of the network above the layer) come
from this one mechanism, so nothing is asked of the model: no method names, no feature dicts.

A path names
  - an `nnx.Module` inside `model` (an nnx.Module): "stage3", "layer4.1", "blocks.2.mlp"; its
    `__call__` is intercepted; a path that ends in a method name ("encoder.encode") intercepts that
    method instead;
  - a linen module called by `model` (any function, e.g. `functools.partial(net.apply, variables)`):
    its `module.path` joined by dots, list entries written either way ("layers_2" or "layers.2"),
    intercepted with `flax.linen.intercept_methods`.
A layer must be called exactly once per forward pass (a module applied twice has no single output
to explain); otherwise a ValueError says how often it ran.
"""

import re
from collections.abc import Callable, Mapping, Sequence

import jax
from flax import nnx

# Interception of NNX modules: the instance's class is swapped, for the duration of one forward
# pass, for a cached subclass whose method calls the hook registered for that instance (special
# methods such as __call__ are looked up on the type, so an instance attribute would not do).
_SUBCLASSES: dict[tuple[type, str], type] = {}
_HOOKS: dict[int, Callable] = {}


def _subclass(cls: type, method: str) -> type:
  key = (cls, method)
  if key not in _SUBCLASSES:
    original = getattr(cls, method)

    def wrapped(self, *args, **kwargs):
      y = original(self, *args, **kwargs)
      hook = _HOOKS.get(id(self))
      return y if hook is None else hook(y)

    ns = {method: wrapped, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    _SUBCLASSES[key] = type(cls)(cls.__name__, (cls,), ns)
  return _SUBCLASSES[key]


def module_paths(model: nnx.Module) -> dict[str, nnx.Module]:
  """{dotted path: submodule} of every module inside `model` ("" is the model itself)."""
  return {
    ".".join(str(k) for k in path): node
    for path, node in nnx.iter_graph(model)
    if isinstance(node, nnx.Module)
  }


def resolve(model: nnx.Module, path: str) -> tuple[nnx.Module, str]:
  """(module, method name) that a dotted path names; ValueError listing the paths that exist."""
  modules = module_paths(model)
  if path in modules and path:
    return modules[path], "__call__"
  parent, _, method = path.rpartition(".")
  owner = modules.get(parent)
  if owner is not None and method and callable(getattr(type(owner), method, None)):
    return owner, method
  names = [p for p in modules if p]
  shown = ", ".join(repr(p) for p in names[:40]) + (" ..." if len(names) > 40 else "")
  raise ValueError(f"no layer {path!r} in {type(model).__name__}; its module paths are {shown}.")


def _check_output(path: str, y):
  if not isinstance(y, jax.Array):
    raise ValueError(
      f"layer {path!r} returns {type(y).__name__}, not an array; name a layer whose output is one "
      "array (e.g. a submodule of it)."
    )


class _Recorder:
  """Records each layer's output, applies its edit, counts calls."""

  def __init__(self, layers: Sequence[str], edits: Mapping[str, Callable]):
    self.layers, self.edits = tuple(layers), dict(edits)
    self.acts: dict[str, jax.Array] = {}
    self.calls = dict.fromkeys(self.layers, 0)

  def hook(self, path: str) -> Callable:
    def record(y):
      _check_output(path, y)
      self.calls[path] += 1
      self.acts[path] = y
      return self.edits[path](y) if path in self.edits else y

    return record

  def check(self, seen: Sequence[str] = ()):
    for path, n in self.calls.items():
      if n == 0:
        hint = f" Layers called: {', '.join(repr(s) for s in seen[:40])}." if seen else ""
        raise ValueError(f"layer {path!r} was not called in the forward pass.{hint}")
      if n > 1:
        raise ValueError(
          f"layer {path!r} was called {n} times in one forward pass; its output is not one "
          "activation to explain. Name a module that runs once."
        )


def _linen_name(path: tuple[str, ...]) -> tuple[str, str]:
  joined = ".".join(path)
  return joined, re.sub(r"_(\d+)(?=\.|$)", r".\1", joined)


def forward(model, x, *, layers: Sequence[str], edits: Mapping[str, Callable] | None = None):
  """Run `model(x)` recording (and editing) the outputs of `layers`: (output, {path: activation}).

  model: an nnx.Module, or any function of x that calls linen modules. The output is what the
  model returns, unchanged (a tuple stays a tuple).
  """
  edits = edits or {}
  unknown = set(edits) - set(layers)
  if unknown:
    raise ValueError(f"edits for layers not requested: {sorted(unknown)}.")
  rec = _Recorder(layers, edits)
  if isinstance(model, nnx.Module):
    targets = {path: resolve(model, path) for path in layers}
    swapped = []
    try:
      for path, (module, method) in targets.items():
        if id(module) in _HOOKS:
          raise ValueError(f"layer {path!r} names a module already named by another path.")
        _HOOKS[id(module)] = rec.hook(path)
        swapped.append((module, type(module)))
        object.__setattr__(module, "__class__", _subclass(type(module), method))
      out = model(x)
    finally:
      for module, cls in swapped:
        object.__setattr__(module, "__class__", cls)
        _HOOKS.pop(id(module), None)
    rec.check()
    return out, rec.acts

  import flax.linen as linen

  seen: list[str] = []
  hooks = {path: rec.hook(path) for path in layers}

  def interceptor(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if context.method_name != "__call__":
      return y
    for name in _linen_name(context.module.path):
      if name in hooks:
        return hooks[name](y)
    seen.append(".".join(context.module.path))
    return y

  with linen.intercept_methods(interceptor):
    out = model(x)
  rec.check(seen)
  return out, rec.acts
