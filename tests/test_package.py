"""The installed distribution: regular packages (an __init__.py in each), one version string."""

import importlib.metadata
from pathlib import Path

import genjax

ROOT = Path(genjax.__file__).resolve().parent


def test_every_folder_of_the_library_is_a_regular_package():
  folders = {p.parent for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts}
  missing = sorted(
    str(f.relative_to(ROOT.parent)) for f in folders if not (f / "__init__.py").exists()
  )
  assert not missing, missing


def test_version_is_the_distributions():
  assert genjax.__version__ == importlib.metadata.version("genjax-lab")
