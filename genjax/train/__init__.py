"""The shared training pieces: state and step, the loop, sharding, checkpoints, logging."""
