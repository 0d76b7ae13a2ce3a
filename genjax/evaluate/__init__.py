"""Evaluation of generative models: sample quality on our own frozen classifier, likelihoods."""
