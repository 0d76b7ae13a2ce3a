"""The shared training pieces: state and step (state.py), G/D pairs (pair.py), PRNG roles (keys.py),
the loop, config checks, sharding, several processes, checkpoints and restores, logging, studies."""
