"""Checks of a run's config: values in range before anything is built, and resume compatibility.

    check_values(config)            # ConfigError naming the first field out of its range
    check_resume(saved, config)     # ConfigError naming every field a resume may not change

Both run in loop.setup, before data, model or checkpoint is touched, so a bad command line fails
in a second with the field's name instead of deep in XLA or Orbax.

The range rules go by the field's dotted path (fnmatch patterns, first match wins), so one table
covers every experiment's config: "*learning_rate" is any learning rate, "loss.*" any loss weight.
A field no rule names is not checked.
"""

import fnmatch
import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import ml_collections


class ConfigError(ValueError):
  """A config value out of range, or a config that does not match the run it would resume."""


def _number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rule(test: Callable[[Any], bool], want: str, *, integer: bool = False):
  def check(v) -> str | None:
    if not _number(v) or (integer and not float(v).is_integer()) or not math.isfinite(v):
      return f"must be {'an integer' if integer else 'a finite number'} {want}"
    return None if test(v) else f"must be {'an integer ' if integer else ''}{want}"

  return check


_POSITIVE_INT = _rule(lambda v: v >= 1, ">= 1", integer=True)
_COUNT = _rule(lambda v: v >= 0, ">= 0", integer=True)
_POSITIVE = _rule(lambda v: v > 0, "> 0")
_NONNEGATIVE = _rule(lambda v: v >= 0, ">= 0")
_FRACTION = _rule(lambda v: 0 <= v <= 1, "in [0, 1]")
_MOMENTUM = _rule(lambda v: 0 <= v < 1, "in [0, 1)")


def _one_of(*names: str):
  return lambda v: None if v in names else f"must be one of {', '.join(names)}"


def _if_number(check):
  """The check for numbers; other values (the loss's kind names, flags) pass."""
  return lambda v: check(v) if _number(v) else None


# (pattern on the dotted path, check, None allowed?), first match wins.
RULES: tuple[tuple[str, Callable, bool], ...] = (
  ("num_devices", _POSITIVE_INT, True),  # None: every visible device
  ("kernels", _one_of("auto", "cpu", "xla"), True),  # None: $GENJAX_KERNELS, else auto
  ("model.dtype", _one_of("float32", "bfloat16"), False),
  ("num_steps", _COUNT, True),  # None (the classifier): config.epochs passes over the data
  ("*batch_size", _POSITIVE_INT, False),
  ("iwae_batch", _POSITIVE_INT, False),
  ("iwae_chunk", _POSITIVE_INT, False),
  ("iwae_k", _POSITIVE_INT, False),
  ("log_every", _POSITIVE_INT, False),
  ("checkpoint_every", _COUNT, False),  # 0: only at the end
  ("sample_every", _COUNT, False),
  ("warmup_steps", _COUNT, False),
  ("eval_samples", _POSITIVE_INT, False),
  ("evaluator_steps", _COUNT, False),
  ("iwae_examples", _COUNT, False),  # 0: every test image
  ("epochs", _POSITIVE, False),
  ("time_limit_minutes", _NONNEGATIVE, True),  # 0 or None: no limit
  ("*learning_rate", _POSITIVE, False),
  ("optimizer.b1", _MOMENTUM, False),
  ("optimizer.b2", _MOMENTUM, False),
  ("beta", _NONNEGATIVE, False),
  ("lambda_*", _NONNEGATIVE, False),
  ("weight_decay", _NONNEGATIVE, False),
  ("loss.same_fraction", _FRACTION, False),
  ("loss.prior_std", _POSITIVE, False),
  ("loss.d_steps", _POSITIVE_INT, False),
  ("loss.id_views", _COUNT, False),  # 0: the identity loss on the swap itself
  ("loss.fm_layers", _POSITIVE_INT, False),
  ("loss.*", _if_number(_NONNEGATIVE), False),  # any other loss weight, the noise level
  ("model.latent_dim", _POSITIVE_INT, False),
)

# Fields a resumed run may change: how long it runs, on which devices and kernel forms (the same
# function, computed by other ops), how it reports, where it reads data from, how it is evaluated
# afterwards. Any other difference would restore a checkpoint into another model,
# optimizer or objective.
RESUMABLE = (
  "num_steps", "epochs", "time_limit_minutes", "num_devices", "kernels", "progress", "log_every",
  "checkpoint_every", "sample_every", "data_dir", "data_root", "eval_*", "iwae_*", "evaluator_*",
)  # fmt: skip


# Fields in which a run started from another run's checkpoint (config.init_from) may differ from
# that run, besides RESUMABLE: the objective's weights, the frozen net a new loss term reads, and
# init_from itself. The model, optimizer, data and seed stay those of the run it starts from.
INIT_MAY_CHANGE = ("loss.*", "init_from", "landmark_workdir")

# Values that mean "off": a field absent from a saved config (written before the field existed)
# that has one of these now leaves the run as it was.
_OFF = (None, False, 0, 0.0, "", (), [])


def leaves(config: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
  """(dotted path, value) of every leaf of a (nested) config or dict."""
  for key, value in config.items():
    if isinstance(value, (Mapping, ml_collections.ConfigDict)):
      yield from leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def check_values(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first field whose value is out of its range (see RULES)."""
  for path, value in leaves(config):
    for pattern, check, none_ok in RULES:
      if fnmatch.fnmatchcase(path, pattern):
        problem = None if (value is None and none_ok) else check(value)
        if problem:
          raise ConfigError(f"config.{path} = {value!r}: {problem}.")
        break


def plain(config) -> dict:
  """The config as JSON values (tuples as lists), as config.json holds it."""
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json())
  return json.loads(json.dumps(config))


def differences(saved: Mapping, config, may_change=RESUMABLE) -> list[tuple[str, Any, Any]]:
  """(path, saved value, new value) of each field that differs and that a resume may not change
  (patterns `may_change`). A field the saved config lacks is no difference while it is off (None,
  False, 0, "" or empty): the saved run predates the field and ran without it."""
  old, new = dict(leaves(plain(saved))), dict(leaves(plain(config)))
  missing = object()
  out = []
  for path in sorted(old.keys() | new.keys()):
    if any(fnmatch.fnmatchcase(path, p) for p in may_change):
      continue
    a, b = old.get(path, missing), new.get(path, missing)
    if a is missing and any(b == off and type(b) is type(off) for off in _OFF):
      continue
    if a != b:
      out.append((path, "(absent)" if a is missing else a, "(absent)" if b is missing else b))
  return out


def check_resume(saved: Mapping, config, *, where: str = "the workdir") -> None:
  """Raises one ConfigError naming every field in which `config` differs from the `saved` config of
  the run being resumed, except those in RESUMABLE."""
  diff = differences(saved, config)
  if diff:
    lines = "\n".join(f"  {p}: {a!r} (saved) -> {b!r} (now)" for p, a, b in diff)
    raise ConfigError(
      f"{where} holds checkpoints of a run with another config, so nothing was restored. "
      f"Fields that differ:\n{lines}\nUse a new --workdir, or pass the saved values "
      "(the workdir's config.json)."
    )


def check_init(saved: Mapping, config, *, where: str) -> None:
  """Raises one ConfigError naming every field in which `config` differs from the `saved` config of
  the run it starts from (config.init_from), except those in RESUMABLE and INIT_MAY_CHANGE."""
  diff = differences(saved, config, RESUMABLE + INIT_MAY_CHANGE)
  if diff:
    lines = "\n".join(f"  {p}: {a!r} (there) -> {b!r} (now)" for p, a, b in diff)
    raise ConfigError(
      f"config.init_from = {where!r} holds a run with another model, optimizer, data or seed, so "
      f"nothing was restored. Fields that differ:\n{lines}\nOnly the loss weights (loss.*) and "
      "the nets a new loss term reads may differ from the run a run starts from."
    )
