"""scripts/eval_faceswap.py: every model and seed swaps with its own workdir's model."""

import importlib.util
from pathlib import Path

from experiments.aae import train as aae_train
from experiments.faceswap import train as a_train
from experiments.simswap import train as c_train

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
  spec = importlib.util.spec_from_file_location("eval_faceswap", ROOT / "scripts/eval_faceswap.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_each_seed_swaps_with_its_own_workdir(monkeypatch):
  # Stand-ins for the restored models: a swapper reports which model, workdir and source made it;
  # a closure that captured the loop's last workdir would show here.
  for tag, module in (("a", a_train), ("b", aae_train), ("c", c_train)):
    monkeypatch.setattr(module, "face_swapper", lambda w, s, tag=tag: ((tag, w, s), 100))
  script = _load_script()
  swaps = script.swappers("a0,a1,a2", "b0", "c0,c1")
  got = {name[:3]: [make("Colin_Powell")[0] for make in makers] for name, makers in swaps.items()}
  assert got == {
    "(a)": [("a", f"a{i}", "Colin_Powell") for i in range(3)],
    "(b)": [("b", "b0", "Colin_Powell")],
    "(c)": [("c", "c0", "Colin_Powell"), ("c", "c1", "Colin_Powell")],
  }
  assert "|" not in "".join(swaps)  # names go into a Markdown table
  assert set(script.swappers("", "b0", "")) == {"(b) adversarial AE"}
