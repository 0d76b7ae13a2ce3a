"""Regularized autoencoders on Fashion-MNIST: train, checkpoint, resume, evaluate on the test split."""

import dataclasses

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx

from genjax import losses
from genjax.data import batching
from genjax.data import tfds as data
from genjax.models import autoencoder
from genjax.train import distributed, keys, loop, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """J = recon(x, g(f(x~))) + lambda * Omega(W) + lambda_s ||z||_1 + lambda_c ||J_f(x~)||_F^2.

  x~ is x, or its corruption when denoise != "none" (the target stays the clean x).
  """

  reconstruction: str = "bce"  # "bce" (with logits) or "mse" (on sigmoid(logits))
  penalty: str = "none"  # "none", "l1", "l2" (1/2 ||W||^2), "frobenius" (||W||_F^2)
  weight_decay: float = 0.0  # lambda
  exclude_bias: bool = True
  sparsity: float = 0.0  # lambda_s, L1 on the code z
  contractive: float = 0.0  # lambda_c, squared Frobenius norm of the encoder Jacobian
  denoise: str = "none"  # "none", "gaussian" or "masking"
  noise_level: float = 0.0


def loss_fn(model, x: jax.Array, key: jax.Array, *, cfg: LossConfig):
  """Mean over the batch of the objective above; every term is returned for logging."""
  x_in = (
    x if cfg.denoise == "none" else losses.corrupt(key, x, kind=cfg.denoise, level=cfg.noise_level)
  )
  logits, aux = model(x_in)
  terms = {"recon": losses.reconstruction(cfg.reconstruction, logits, x).mean()}
  loss = terms["recon"]
  if cfg.penalty != "none":
    params = nnx.state(model, nnx.Param)
    terms["penalty"] = losses.weight_penalty(
      params, kind=cfg.penalty, exclude_bias=cfg.exclude_bias
    )
    loss = loss + cfg.weight_decay * terms["penalty"]
  if cfg.sparsity:
    terms["sparsity"] = losses.sparsity(aux["z"]).mean()
    loss = loss + cfg.sparsity * terms["sparsity"]
  if cfg.contractive:
    terms["contractive"] = losses.contractive(model.encode, x_in).mean()
    loss = loss + cfg.contractive * terms["contractive"]
  return loss, dict(terms, loss=loss)


def eval_metrics(model, x: jax.Array) -> dict:
  """Per-example test metrics (sums over the batch, divided by N later)."""
  logits, _ = model(x)
  return {
    "mse": losses.mse(jax.nn.sigmoid(logits), x).sum(),
    "bce": losses.bce_with_logits(logits, x).sum(),
  }


def build(config: ml_collections.ConfigDict, mesh):
  """Model, optimizer, initial state and the jitted step for `config`."""
  model_cfg = autoencoder.AutoencoderConfig(**config.model.to_dict())
  loss_cfg = LossConfig(**config.loss.to_dict())
  init_key = keys.key(config.seed, keys.INIT)
  tx = optax.adam(config.learning_rate)
  graphdef, state = tstate.create(
    lambda: autoencoder.make(model_cfg, rngs=nnx.Rngs(params=init_key)), tx, mesh
  )
  step = tstate.make_train_step(graphdef, tx, lambda m, x, k: loss_fn(m, x, k, cfg=loss_cfg))
  return graphdef, state, step


def evaluate(graphdef, state, dataset: data.ArrayDataset, mesh, batch_size: int) -> dict:
  fn = tstate.make_eval_fn(graphdef, eval_metrics)
  totals = {"mse": 0.0, "bce": 0.0}
  usable = len(dataset) - len(dataset) % mesh.size
  for i in range(0, usable, batch_size):
    x = dataset.x[i : min(i + batch_size, usable)]
    out = jax.device_get(fn(state, sharding.shard_batch(x, mesh)))
    totals = {k: totals[k] + float(out[k]) for k in totals}
  results = {f"test_{k}": v / usable for k, v in totals.items()}
  results["weight_norm"] = float(autoencoder.weight_norm(state.params))
  return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.num_steps steps (resuming from workdir), then writes results.json and figures."""
  # Setup: workdir, mesh and the training key.
  workdir, mesh, train_key = loop.setup(config, workdir)

  # Data.
  kw = {"manual_dir": config.data_dir} if config.get("data_dir") else {}
  # Each process holds the whole (small) set; process 0 prepares it first, the others read that.
  train_ds = distributed.main_first(data.get_dataset, config.dataset, config.train_split, **kw)
  test_ds = distributed.main_first(data.get_dataset, config.dataset, config.test_split, **kw)
  get_batch = batching.batches(train_ds.x, mesh, seed=config.seed, batch_size=config.batch_size,
                               on_device=config.on_device)  # fmt: skip

  # Model, resumed from the workdir when it holds a checkpoint, and the loop.
  graphdef, state, train_step = build(config, mesh)
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=config.batch_size)  # fmt: skip

  # Evaluate on the whole test split, write results and reconstructions.
  results = evaluate(graphdef, state, test_ds, mesh, config.eval_batch_size)
  results.update(step=int(state.step), config=config.to_dict())
  writer.write_scalars(
    int(state.step), {k: v for k, v in results.items() if k.startswith(("test", "weight"))}
  )
  tlog.write_json(workdir / "results.json", results)  # these writes: process 0 only
  x = test_ds.x[:16]
  x_hat = tstate.make_eval_fn(graphdef, lambda m, v: jax.nn.sigmoid(m(v)[0]))(state, x)
  tlog.save_image_grid(workdir / "reconstructions.png", np.concatenate([x, x_hat]), ncol=16)
  writer.close()
  ckpt.close()
  return results
