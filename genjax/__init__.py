"""genjax: generative models and their explanation in JAX (the distribution is `genjax-lab`)."""

__version__ = "0.1.0"
