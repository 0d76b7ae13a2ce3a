"""Identity encoders: the margin-softmax losses against NumPy, verification metrics, a smoke run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.identity import train as id_train
from experiments.identity.configs import identity as id_configs
from genjax import losses


def _margin_reference(e, w, y, kind, s, m):
  e = e / np.linalg.norm(e, axis=1, keepdims=True)
  w = w / np.linalg.norm(w, axis=0, keepdims=True)
  cos = e @ w
  logits = s * cos.copy()
  for i, k in enumerate(y):
    theta = np.arccos(cos[i, k])
    logits[i, k] = s * (cos[i, k] - m) if kind == "cosface" else s * np.cos(theta + m)
  logits -= logits.max(1, keepdims=True)
  logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  return -logp[np.arange(len(y)), y]


@pytest.mark.parametrize("kind,margin", [("cosface", 0.35), ("arcface", 0.5)])
def test_margin_softmax_matches_numpy(key, kind, margin):
  e = np.asarray(jax.random.normal(key, (6, 5)), np.float64)
  w = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (5, 7)), np.float64)
  y = np.array([0, 3, 6, 2, 2, 1])
  got = losses.margin_softmax(jnp.asarray(e), jnp.asarray(w), jnp.asarray(y), kind=kind,
                              scale=16.0, margin=margin)  # fmt: skip
  np.testing.assert_allclose(got, _margin_reference(e, w, y, kind, 16.0, margin), rtol=1e-5)
  plain = losses.margin_softmax(jnp.asarray(e), jnp.asarray(w), jnp.asarray(y), kind=kind,
                                scale=16.0, margin=0.0)  # fmt: skip
  assert np.all(np.asarray(got) > np.asarray(plain))  # the margin makes the true class harder
  with pytest.raises(ValueError, match="class_weights"):
    losses.margin_softmax(jnp.asarray(e), jnp.asarray(w.T), jnp.asarray(y))


def test_verification_accuracy_on_separable_and_random_scores():
  same = np.r_[np.ones(50), np.zeros(50)].astype(np.int32)
  perfect = np.r_[np.linspace(0.6, 0.9, 50), np.linspace(-0.2, 0.4, 50)]
  assert id_train.verification_accuracy(perfect, same)["verification_acc"] == 1.0
  noise = np.random.default_rng(0).uniform(size=100)
  assert id_train.verification_accuracy(noise, same)["verification_acc"] < 0.75
  pairs, labels = id_train.verification_pairs(np.repeat(np.arange(5), 4), 30, seed=0)
  y = np.repeat(np.arange(5), 4)
  assert np.all((y[pairs[:, 0]] == y[pairs[:, 1]]) == labels) and labels.sum() == 30


def test_identity_smoke(tmp_path):
  results = id_train.train_and_evaluate(id_configs.get_config("smoke"), str(tmp_path))
  assert results["step"] == 2 and results["num_test_ids"] == 3
  assert 0.0 <= results["verification_acc"] <= 1.0
