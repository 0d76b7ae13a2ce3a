"""The experiments: one package each, importing only genjax and itself (tests/test_imports.py).

What entry points need of several experiments at once is here, e.g. the face-swap models by the
letter the README gives them.
"""

import importlib
from pathlib import Path

# The face-swap models by letter: the experiment whose train.face_swapper(workdir, source) loads one.
FACE_SWAP_MODELS = {"a": "experiments.faceswap.train", "b": "experiments.aae.train",
                    "c": "experiments.simswap.train"}  # fmt: skip
FACE_SWAP_NAMES = {"a": "(a) shared encoder", "b": "(b) adversarial AE",
                   "c": "(c) identity injection"}  # fmt: skip


def face_swapper(model: str, workdir: str | Path, source: str):
  """(swap_faces, crop size) of face-swap model `model` ("a", "b" or "c") trained in `workdir`,
  for genjax.faces.swap: aligned crops [B, s, s, 3] in [0, 1] -> the same faces with the identity
  of `source` (see each experiment's face_swapper)."""
  if model not in FACE_SWAP_MODELS:
    raise ValueError(f"face-swap model {model!r}: want one of {sorted(FACE_SWAP_MODELS)}.")
  return importlib.import_module(FACE_SWAP_MODELS[model]).face_swapper(workdir, source)
