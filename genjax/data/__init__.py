"""Data: Fashion-MNIST and other TFDS sets (tfds.py), resumable batches (batching.py), face photos,
crops and aligned faces (faces.py)."""
