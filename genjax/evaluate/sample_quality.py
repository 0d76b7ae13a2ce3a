"""Sample-quality numbers on features of our own frozen classifier: Frechet distance, classifier
score (the Inception-score analogue) and the entropy of the predicted-class histogram.

These use a Fashion-MNIST classifier trained by this project (genjax.evaluate.features), not
Inception-v3, so they are NOT comparable with published FID / Inception-score values; they compare
models evaluated with the same frozen classifier only.
"""

import numpy as np


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean [D] and unbiased covariance [D, D] of features [N, D], in float64."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or f.shape[0] < 2:
    raise ValueError(f"statistics: expected features [N >= 2, D], got shape {f.shape}.")
  return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
  """tr((S1 S2)^{1/2}) for symmetric PSD S1, S2, without a general matrix square root.

  S1 S2 = S1^{1/2} (S1^{1/2} S2 S1^{1/2}) S1^{-1/2} is similar to the symmetric PSD matrix
  M = S1^{1/2} S2 S1^{1/2}, so its eigenvalues are M's (real, >= 0) and
  tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(M)). Two eigh calls, no complex arithmetic.
  """
  r = _psd_sqrt(s1)
  m = r @ s2 @ r
  w = np.linalg.eigvalsh((m + m.T) / 2)
  return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Frechet distance between N(mu1, S1) and N(mu2, S2) (Dowson & Landau 1982; Heusel et al. 2017):

  d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(
      f"frechet_distance: shapes do not match: mu {mu1.shape}, {mu2.shape}; "
      f"sigma {sigma1.shape}, {sigma2.shape}."
    )
  d2 = np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2)
  return float(max(d2 - 2.0 * trace_sqrt_product(sigma1, sigma2), 0.0))


def frechet_distance_of_features(f1: np.ndarray, f2: np.ndarray) -> float:
  return frechet_distance(*statistics(f1), *statistics(f2))


def _check_probs(probs: np.ndarray, where: str) -> np.ndarray:
  p = np.asarray(probs, np.float64)
  if p.ndim != 2:
    raise ValueError(f"{where}: expected class probabilities [N, K], got shape {p.shape}.")
  if not np.allclose(p.sum(1), 1.0, atol=1e-4) or p.min() < 0:
    raise ValueError(f"{where}: rows must be probability vectors (>= 0, summing to 1).")
  return p


def classifier_score(probs: np.ndarray) -> float:
  """exp(E_x KL(p(y|x) || p(y))), p(y) = E_x p(y|x): the Inception score (Salimans et al. 2016)
  with our classifier. 1 when every sample gets the same prediction; at most K (sharp predictions
  spread evenly over the K classes)."""
  p = _check_probs(probs, "classifier_score")
  marginal = p.mean(0)
  kl = (p * (np.log(np.clip(p, 1e-30, None)) - np.log(np.clip(marginal, 1e-30, None)))).sum(1)
  return float(np.exp(kl.mean()))


def class_histogram_entropy(probs: np.ndarray) -> float:
  """Entropy (nats) of the histogram of predicted classes argmax_y p(y|x): log K when the samples
  cover the classes evenly, 0 when all fall in one class (complete mode collapse)."""
  p = _check_probs(probs, "class_histogram_entropy")
  counts = np.bincount(p.argmax(1), minlength=p.shape[1])
  h = counts[counts > 0] / counts.sum()
  return float(-(h * np.log(h)).sum())
