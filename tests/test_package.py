"""The installed distribution: regular packages (an __init__.py in each), one version string."""

import importlib.metadata
from pathlib import Path

import pytest

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


def test_the_face_data_folder_is_never_looked_for_inside_site_packages(monkeypatch, tmp_path):
  from genjax.data import faces

  monkeypatch.delenv("GENJAX_DATA_DIR", raising=False)
  checkout = faces.default_root("lfw")  # this source checkout: beside the project root
  assert checkout == ROOT.parent.parent / "shared" / "data" / "faces" / "lfw"
  installed = tmp_path / "lib" / "python3.11" / "site-packages" / "genjax" / "data" / "faces.py"
  monkeypatch.setattr(faces, "__file__", str(installed))
  with pytest.raises(ValueError, match="GENJAX_DATA_DIR"):
    faces.default_root("lfw")
  monkeypatch.setenv("GENJAX_DATA_DIR", str(tmp_path))
  assert faces.default_root("lfw") == tmp_path / "faces" / "lfw"
