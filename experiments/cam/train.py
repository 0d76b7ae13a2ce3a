"""Trains the autoencoder-regularized Fashion-MNIST classifier that the CAM methods explain."""

from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from genjax import losses
from genjax.data import batching
from genjax.data import tfds as data
from genjax.models import classifier
from genjax.train import checkpoint, keys, loop, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate


def augment(key: jax.Array, x: jax.Array, shift: int = 2) -> jax.Array:
  """Random horizontal flip and a random shift of up to `shift` pixels (zero fill), per example."""
  k_flip, k_shift = jax.random.split(key)
  flip = jax.random.bernoulli(k_flip, 0.5, (x.shape[0], 1, 1, 1))
  x = jnp.where(flip, x[:, :, ::-1], x)
  h, w = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
  offsets = jax.random.randint(k_shift, (x.shape[0], 2), 0, 2 * shift + 1)
  crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
  return jax.vmap(crop)(padded, offsets)


def loss_fn(model, batch, key, *, lambda_rec: float, weight_decay: float, do_augment: bool):
  """Mean over the batch of CE(logits, y) + lambda_rec * BCE(x_hat, x) + weight_decay * 1/2||W||^2."""
  x, y = batch
  if do_augment:
    x = augment(key, x)
  logits, aux = model(x)
  terms = {"ce": optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()}
  loss = terms["ce"]
  if lambda_rec:
    terms["rec"] = losses.bce_with_logits(aux["x_hat"], x).mean()
    loss = loss + lambda_rec * terms["rec"]
  if weight_decay:
    terms["penalty"] = losses.weight_penalty(nnx.state(model, nnx.Param), kind="l2")
    loss = loss + weight_decay * terms["penalty"]
  terms["accuracy"] = classifier.accuracy(logits, y)
  return loss, dict(terms, loss=loss)


def build(config: ml_collections.ConfigDict, mesh):
  """Model, optimizer, initial state and the jitted step for `config`."""
  cfg = classifier.ClassifierConfig(**config.model.to_dict())
  init_key = keys.key(config.seed, keys.INIT)
  schedule = optax.warmup_cosine_decay_schedule(
    0.0, config.learning_rate, config.warmup_steps, max(config.num_steps, config.warmup_steps + 1)
  )
  tx = optax.adam(schedule)
  graphdef, state = tstate.create(
    lambda: classifier.Classifier(cfg, rngs=nnx.Rngs(params=init_key)), tx, mesh
  )
  step = tstate.make_train_step(graphdef, tx, lambda m, b, k: loss_fn(
    m, b, k, lambda_rec=config.lambda_rec, weight_decay=config.weight_decay,
    do_augment=config.augment))  # fmt: skip
  return graphdef, state, step


def eval_metrics(model, batch) -> dict:
  """Sums over the batch: correct predictions, cross-entropy, reconstruction BCE."""
  x, y = batch
  model.eval()
  logits, aux = model(x)
  out = {
    "correct": jnp.sum(jnp.argmax(logits, -1) == y),
    "ce": optax.softmax_cross_entropy_with_integer_labels(logits, y).sum(),
  }
  if aux["x_hat"] is not None:
    out["rec_bce"] = losses.bce_with_logits(aux["x_hat"], x).sum()  # of per-pixel means
  return out


def evaluate(graphdef, state, dataset: data.ArrayDataset, mesh, batch_size: int) -> dict:
  """Accuracy, cross-entropy and per-pixel reconstruction BCE over the whole split."""
  fn = tstate.make_eval_fn(graphdef, eval_metrics)
  totals, count, n = {}, 0, len(dataset)
  for i in range(0, n, batch_size):
    j = min(i + batch_size, n)
    usable = j - (j - i) % mesh.size
    if usable == i:
      continue
    batch = (dataset.x[i:usable], dataset.y[i:usable])
    out = jax.device_get(fn(state, sharding.shard_batch(batch, mesh)))
    totals = {k: totals.get(k, 0.0) + float(v) for k, v in out.items()}
    count += usable - i
  results = {"test_accuracy": totals.pop("correct") / count, "test_examples": count}
  results.update({f"test_{k}": v / count for k, v in totals.items()})
  return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.num_steps steps (resuming from workdir), evaluates on the whole test split.

  num_steps None means config.epochs passes over the loaded train split's full batches; the resolved
  count is what results.json records.
  """
  # Setup.
  workdir, mesh, train_key = loop.setup(config, workdir)

  # Data.
  kw = {"manual_dir": config.data_dir} if config.get("data_dir") else {}
  train_ds = data.get_dataset(config.dataset, config.train_split, **kw)
  test_ds = data.get_dataset(config.dataset, config.test_split, **kw)
  get_batch = batching.batches((train_ds.x, train_ds.y), mesh, seed=config.seed,
                               batch_size=config.batch_size)  # fmt: skip
  if config.num_steps is None:
    config = config.copy_and_resolve_references()
    config.num_steps = round(
      config.epochs * batching.steps_per_epoch(len(train_ds), config.batch_size)
    )

  # Model, resumed from the workdir when it holds a checkpoint, and the loop.
  graphdef, state, train_step = build(config, mesh)
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=config.batch_size,
                                 show={"loss": ".4f", "accuracy": ".3f"})  # fmt: skip

  # Evaluate on the whole test split; write results and reconstructions.
  results = evaluate(graphdef, state, test_ds, mesh, config.eval_batch_size)
  results.update(step=int(state.step), config=config.to_dict())
  writer.write_scalars(int(state.step), {k: v for k, v in results.items() if k.startswith("test_")})
  tlog.write_json(workdir / "results.json", results)
  if config.lambda_rec:
    recon = tstate.make_eval_fn(graphdef, _reconstruct)(state, test_ds.x[:16])
    tlog.save_image_grid(workdir / "reconstructions.png", np.concatenate([test_ds.x[:16], recon]),
                         ncol=16)  # fmt: skip
  writer.close()
  ckpt.close()
  return results


def _reconstruct(model, x):
  model.eval()
  return jax.nn.sigmoid(model(x)[1]["x_hat"])


def restore(workdir: str | Path, mesh=None):
  """(graphdef, state, config) of a finished run in `workdir` (for the explanation scripts)."""
  config = checkpoint.run_config(workdir, finished=True)
  graphdef, state, _ = build(config, mesh or sharding.make_mesh(1))
  return graphdef, checkpoint.restore_latest(workdir, state), config
