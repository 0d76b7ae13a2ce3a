"""The frozen Fashion-MNIST feature classifier behind the sample-quality metrics.

A small CNN trained by this project (train(), run by scripts/train_gan_evaluator.py), saved as an
Orbax checkpoint in a workdir with its test accuracy, then loaded frozen (load()). Its 128-d
penultimate activations are the features of the Frechet distance; its softmax gives the
classifier score and the class histogram. Not Inception-v3: see genjax.evaluate.sample_quality.
"""

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import optax
from flax import nnx

from genjax import nn
from genjax.data import batching
from genjax.data import tfds as data
from genjax.train import checkpoint, keys, sharding
from genjax.train import state as tstate


@dataclasses.dataclass(frozen=True)
class FeatureNetConfig:
  image_shape: tuple[int, int, int] = (28, 28, 1)
  widths: tuple[int, int] = (32, 64)
  feature_dim: int = 128
  num_classes: int = 10


class FeatureNet(nnx.Module):
  """x [B, 28, 28, 1] -> conv(3x3, s2) -> conv(3x3, s2) -> dense(128) = features -> dense(10)."""

  def __init__(self, cfg: FeatureNetConfig, *, rngs: nnx.Rngs):
    h, w, c = self.image_shape = tuple(cfg.image_shape)
    c1, c2 = cfg.widths
    conv = lambda a, b: nnx.Conv(a, b, kernel_size=(3, 3), strides=(2, 2), padding=1, rngs=rngs)
    self.conv1, self.conv2 = conv(c, c1), conv(c1, c2)
    self.fc = nnx.Linear(-(-h // 4) * -(-w // 4) * c2, cfg.feature_dim, rngs=rngs)
    self.head = nnx.Linear(cfg.feature_dim, cfg.num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
    """Returns (logits [B, K], {"features": [B, feature_dim]})."""
    nn.check_images(x, self.image_shape, "FeatureNet")
    h = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(2.0 * x - 1.0))))
    f = jax.nn.relu(self.fc(h.reshape(x.shape[0], -1)))
    return self.head(f), {"features": f}


def _xent(model, batch, key):
  del key
  logits, _ = model(batch["x"])
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
  return loss, {"loss": loss, "accuracy": (logits.argmax(-1) == batch["y"]).mean()}


def _build(cfg: FeatureNetConfig, seed: int, tx, mesh):
  key = keys.key(seed, keys.INIT)
  return tstate.create(lambda: FeatureNet(cfg, rngs=nnx.Rngs(params=key)), tx, mesh)


def train(
  workdir: str | Path,
  *,
  dataset: str = "fashion_mnist",
  num_steps: int = 1500,
  batch_size: int = 128,
  learning_rate: float = 1e-3,
  seed: int = 0,
  cfg: FeatureNetConfig = FeatureNetConfig(),
  data_dir: str = "",
) -> dict:
  """Trains the classifier with Adam on the train split, checkpoints it and reports test accuracy.

  Writes <workdir>/checkpoints (Orbax) and <workdir>/results.json {"test_accuracy", ...}.
  data_dir: the folder of the official Fashion-MNIST files ("" = $GENJAX_DATA_DIR or download).
  """
  workdir = Path(workdir)
  mesh = sharding.make_mesh(1)
  tx = optax.adam(learning_rate)
  graphdef, state = _build(cfg, seed, tx, mesh)
  step_fn = tstate.make_train_step(graphdef, tx, _xent)
  kw = {"manual_dir": data_dir} if data_dir else {}
  train_ds, test_ds = (data.get_dataset(dataset, split, **kw) for split in ("train", "test"))
  get_batch = batching.batches((train_ds.x, train_ds.y), mesh, seed=seed, batch_size=batch_size)
  key = jax.random.key(seed)
  for step in range(num_steps):
    x, y = get_batch(step)
    state, metrics = step_fn(state, {"x": x, "y": y}, key)
    if step % 100 == 0 or step == num_steps - 1:
      tstate.check_finite(metrics, step)
      print(f"step {step}: loss {float(metrics['loss']):.4f}", flush=True)
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=0, max_to_keep=1)
  ckpt.maybe_save(int(state.step), state, force=True)
  ckpt.close()
  logits = predict(graphdef, state.params, state.rest, test_ds.x)[0]
  results = {
    "test_accuracy": float((logits.argmax(-1) == test_ds.y).mean()),
    "num_steps": num_steps, "batch_size": batch_size, "seed": seed, "dataset": dataset,
  }  # fmt: skip
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  return results


@dataclasses.dataclass
class FrozenClassifier:
  """A trained FeatureNet, for evaluation only (parameters never change)."""

  graphdef: nnx.GraphDef
  params: object
  rest: object
  test_accuracy: float

  def __call__(self, x: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 28, 28, 1] in [0, 1] -> (softmax probabilities [N, K], features [N, D])."""
    logits, f = predict(self.graphdef, self.params, self.rest, x, batch_size)
    return np.asarray(jax.nn.softmax(logits, -1)), f


def load(workdir: str | Path, cfg: FeatureNetConfig = FeatureNetConfig()) -> FrozenClassifier:
  """Restores the classifier saved by train() in `workdir`; raises if there is none."""
  workdir = Path(workdir)
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=0)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(
      f"no feature classifier in {workdir}; train one with scripts/train_gan_evaluator.py"
    )
  graphdef, template = _build(cfg, 0, optax.adam(1e-3), sharding.make_mesh(1))
  state = ckpt.restore(template)
  ckpt.close()
  acc = json.loads((workdir / "results.json").read_text())["test_accuracy"]
  return FrozenClassifier(graphdef, state.params, state.rest, acc)


@jax.jit
def _forward(graphdef, params, rest, x):
  logits, aux = nnx.merge(graphdef, params, rest)(x)
  return logits, aux["features"]


def predict(graphdef, params, rest, x: np.ndarray, batch_size: int = 1000):
  """(logits [N, K], features [N, D]) as NumPy, in batches (the last one padded to the size)."""
  outs = []
  for i in range(0, len(x), batch_size):
    xb = np.asarray(x[i : i + batch_size])
    n = len(xb)
    if n < batch_size and len(x) > batch_size:
      xb = np.concatenate([xb, np.zeros((batch_size - n, *xb.shape[1:]), xb.dtype)])
    logits, f = jax.device_get(_forward(graphdef, params, rest, xb))
    outs.append((logits[:n], f[:n]))
  return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
