"""Variational autoencoders on Fashion-MNIST: train on the negative ELBO, report test -ELBO, IWAE NLL, MSE, figures."""

import time
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
from genjax.evaluate import likelihood
from genjax.models import vae
from genjax.train import keys, loop, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate

# PRNG roles of this experiment beside genjax.train.keys' INIT and TRAIN.
BINARIZE, EVAL, SAMPLES = 3, 4, 5  # test pixels binarized once; -ELBO and IWAE draws; figures


def loss_fn(model, batch: dict, key: jax.Array, *, binarize: bool):
  """Batch mean of -ELBO_beta = -log p(x_b | z) + beta * KL; every term returned for logging.

  batch: {"x": pixels in [0, 1] [B, H, W, C], "beta": the scalar beta of this step (warm-up)}.
  With binarize, x_b ~ Bernoulli(x) is drawn afresh each step (dynamic binarization).
  """
  key_bin, key_z = jax.random.split(key)
  x = batch["x"]
  x_t = jax.random.bernoulli(key_bin, x).astype(x.dtype) if binarize else x
  out, aux = model(x_t, key_z)
  loss, terms = losses.negative_elbo(out, x_t, aux["mu"], aux["logvar"], beta=batch["beta"],
                                     likelihood=model.likelihood, x_logvar=aux.get("x_logvar"))  # fmt: skip
  recon, kl = terms["recon"].mean(), terms["kl"].mean()
  return loss.mean(), {"loss": loss.mean(), "recon": recon, "kl": kl, "neg_elbo": recon + kl,
                       "beta": jnp.asarray(batch["beta"], jnp.float32)}  # fmt: skip


def eval_metrics(model, batch):
  """Per-example test terms: -ELBO (beta = 1, one z sample), its two terms, and MSE of E[x | z = mu]."""
  (x, x_t), key = batch
  mu, logvar = model.encode(x_t)
  out = model.decode(vae.reparameterize(key, mu, logvar))
  _, terms = losses.negative_elbo(out, x_t, mu, logvar, likelihood=model.likelihood,
                                  x_logvar=model.output_logvar())  # fmt: skip
  x_mean = model.mean(model.decode(mu))
  return {"recon": terms["recon"], "kl": terms["kl"], "neg_elbo": terms["recon"] + terms["kl"],
          "mse": losses.mse(x_mean, x)}  # fmt: skip


def build(config: ml_collections.ConfigDict, mesh):
  """Model, optimizer, initial state and the jitted step for `config`."""
  model_cfg = vae.VAEConfig(**config.model.to_dict())
  init_key = keys.key(config.seed, keys.INIT)
  tx = optax.adam(config.learning_rate)
  graphdef, state = tstate.create(
    lambda: vae.make(model_cfg, rngs=nnx.Rngs(params=init_key)), tx, mesh
  )
  step = tstate.make_train_step(
    graphdef, tx, lambda m, b, k: loss_fn(m, b, k, binarize=config.binarize)
  )
  return graphdef, state, step


def test_targets(config, x: np.ndarray) -> np.ndarray:
  """The test pixels the likelihood is scored on: binarized once with a fixed key, or x itself."""
  if not config.binarize:
    return x
  key = keys.key(config.seed, BINARIZE)
  return np.asarray(jax.random.bernoulli(key, x), np.float32)


def evaluate(graphdef, state, config, x: np.ndarray, x_t: np.ndarray, mesh) -> dict:
  """-ELBO, its terms and MSE on the whole test split; the IWAE bound on its first iwae_examples."""
  eval_key, iwae_key = jax.random.split(keys.key(config.seed, EVAL))
  fn = tstate.make_eval_fn(graphdef, eval_metrics)
  usable = len(x) - len(x) % mesh.size
  parts = []
  for i in range(0, usable, config.eval_batch_size):
    j = min(i + config.eval_batch_size, usable)
    batch = sharding.shard_batch((x[i:j], x_t[i:j]), mesh)
    parts.append(jax.device_get(fn(state, (batch, jax.random.fold_in(eval_key, i)))))
  per = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  results = {f"test_{k}": float(v.mean()) for k, v in per.items()}
  results["test_examples"] = usable

  k, chunk = config.iwae_k, config.iwae_chunk
  iwae = tstate.make_eval_fn(
    graphdef, lambda m, b: likelihood.model_iwae_bound(m, b[1], b[0], k=k, chunk=chunk)
  )
  n = min(config.iwae_examples or len(x), usable)
  n -= n % mesh.size
  bounds, t0 = [], time.perf_counter()
  for i in range(0, n, config.iwae_batch):
    xb = sharding.shard_batch(x_t[i : min(i + config.iwae_batch, n)], mesh)
    bounds.append(jax.device_get(iwae(state, (xb, jax.random.fold_in(iwae_key, i)))))
  bounds = np.concatenate(bounds)
  results.update(
    test_iwae_nll=float(-bounds.mean()), iwae_k=k, iwae_examples=n,
    iwae_seconds=time.perf_counter() - t0,
    test_neg_elbo_on_iwae_examples=float(per["neg_elbo"][:n].mean()),
  )  # fmt: skip
  return results


def save_figures(graphdef, state, config, workdir: Path, x: np.ndarray, x_t: np.ndarray) -> None:
  """Reconstructions, prior samples, latent interpolations and (for a 2-D latent) the manifold."""
  encode = tstate.make_eval_fn(graphdef, lambda m, v: m.encode(v)[0])
  decode = tstate.make_eval_fn(graphdef, lambda m, z: m.mean(m.decode(z)))
  d = config.model.latent_dim
  rows = [x[:16], x_t[:16]] if config.binarize else [x[:16]]
  rows.append(decode(state, encode(state, x_t[:16])))
  tlog.save_image_grid(workdir / "reconstructions.png", np.concatenate(rows), ncol=16)
  z = jax.random.normal(keys.key(config.seed, SAMPLES), (64, d))
  tlog.save_image_grid(workdir / "samples.png", decode(state, z), ncol=8)
  # Linear paths between the codes mu(x_a) and mu(x_b) of 8 pairs of test images, 10 steps each.
  mu = np.asarray(encode(state, x_t[:16]))
  t = np.linspace(0.0, 1.0, 10)[None, :, None]
  path = (1 - t) * mu[0::2, None] + t * mu[1::2, None]
  tlog.save_image_grid(workdir / "interpolations.png", decode(state, path.reshape(-1, d)), ncol=10)
  if d == 2:  # decoded means on a grid of prior quantiles (Kingma & Welling 2014, figure 4)
    q = jax.scipy.special.ndtri(jnp.linspace(0.05, 0.95, 20))
    grid = jnp.stack(jnp.meshgrid(q, q[::-1], indexing="xy"), -1).reshape(-1, 2)
    tlog.save_image_grid(workdir / "manifold.png", decode(state, grid), ncol=20)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.num_steps steps (resuming from workdir), then writes results.json and figures."""
  # Setup: workdir, mesh and the training key.
  workdir, mesh, train_key = loop.setup(config, workdir)

  # Data.
  kw = {"manual_dir": config.data_dir} if config.get("data_dir") else {}
  train_ds = data.get_dataset(config.dataset, config.train_split, **kw)
  test_ds = data.get_dataset(config.dataset, config.test_split, **kw)
  get_x = batching.batches(train_ds.x, mesh, seed=config.seed, batch_size=config.batch_size,
                           on_device=config.on_device)  # fmt: skip

  # Model, resumed from the workdir when it holds a checkpoint, and the loop (beta warms up by step).
  graphdef, state, train_step = build(config, mesh)
  get_batch = lambda s: {
    "x": get_x(s), "beta": losses.beta_schedule(s, beta=config.beta, warmup_steps=config.warmup_steps)
  }  # fmt: skip
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=config.batch_size,
                                 show={"loss": ".2f", "kl": ".1f"})  # fmt: skip

  # Evaluate on the test split, write results and figures.
  x = np.asarray(test_ds.x)
  x_t = test_targets(config, x)
  results = evaluate(graphdef, state, config, x, x_t, mesh)
  results.update(step=int(state.step), config=config.to_dict())
  writer.write_scalars(int(state.step), {k: v for k, v in results.items() if k.startswith("test")})
  tlog.write_json(workdir / "results.json", results)
  save_figures(graphdef, state, config, workdir, x, x_t)
  writer.close()
  ckpt.close()
  return results
