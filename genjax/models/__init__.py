"""Models as Flax NNX modules, one family per file."""
