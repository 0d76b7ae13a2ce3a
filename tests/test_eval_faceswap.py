"""scripts/eval_faceswap.py: every model's swap is computed with that model's own state."""

import importlib.util
from pathlib import Path

import numpy as np

from experiments.aae import train as aae_train
from experiments.faceswap import train as a_train
from experiments.simswap import train as c_train

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
  spec = importlib.util.spec_from_file_location("eval_faceswap", ROOT / "scripts/eval_faceswap.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_each_swap_uses_its_own_models_state(monkeypatch):
  # Stand-ins for the three restored models: a model's "state" is a number, its swap returns it
  # (plus 10 x the decoder index for (a)); a swap that reads another model's state shows here.
  states = {"wa": 1.0, "wb": 2.0, "wc": 3.0}
  monkeypatch.setattr(a_train, "restore", lambda w: ("def_a", states[w], None))
  monkeypatch.setattr(a_train, "swap_fn", lambda g, i: lambda s, t: np.zeros(t.shape) + s + 10 * i)
  monkeypatch.setattr(aae_train, "restore", lambda w: ("def_b", None, states[w], None))
  monkeypatch.setattr(aae_train, "swap_fn", lambda d: lambda s, u, v: np.zeros(v.shape) + s)
  monkeypatch.setattr(c_train, "restore", lambda w: ("def_c", states[w], None))
  monkeypatch.setattr(c_train, "swap_fn", lambda d: lambda s, u, v: np.zeros(v.shape) + s)
  script = _load_script()

  swaps = script.swappers("wa", "wb", "wc")
  xs, xt = np.ones((70, 2, 2, 3)), np.ones((70, 2, 2, 3))  # more than one chunk of 64
  got = {
    name[:3]: {i: np.unique(fn(xs, xt, i)).tolist() for i in (0, 1)} for name, fn in swaps.items()
  }
  assert got == {"(a)": {0: [1.0], 1: [11.0]}, "(b)": {0: [2.0], 1: [2.0]},
                 "(c)": {0: [3.0], 1: [3.0]}}  # fmt: skip
  assert all(fn(xs, xt, 0).shape == xt.shape for fn in swaps.values())
  assert "|" not in "".join(swaps)  # names go into a Markdown table
