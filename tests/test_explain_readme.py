"""The CAM README's example on a model from outside the project runs as written."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "experiments" / "cam" / "README.md"


def test_the_readme_example_runs_and_gives_an_overlay():
  text = README.read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
  example = next(b for b in blocks if "cam.explain(" in b)
  scope: dict = {}
  exec(compile(example, str(README), "exec"), scope)
  rgb = np.asarray(scope["rgb"])
  assert rgb.shape == (32, 32, 3) and np.isfinite(rgb).all()
  assert 0 <= rgb.min() and rgb.max() <= 1
  maps = np.asarray(scope["out"]["scorecam"]["conv"]["map"])
  assert maps.shape == (4, 1, 32, 32) and maps.max() > 0
