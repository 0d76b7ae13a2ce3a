"""Data: Fashion-MNIST and other TFDS sets (tfds.py), face photos, crops and aligned faces (faces.py)."""
