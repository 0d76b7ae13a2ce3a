"""DCGAN on Fashion-MNIST: strictly alternating D and G updates, checkpoints, sample-quality eval.

One train state holds both networks, each with its own optax state. A step takes k discriminator
updates (fakes under stop_gradient, one slice of k real batches each), then one generator update
against the updated discriminator; the whole step is one jitted function.
"""

import dataclasses
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
from genjax.evaluate import features, sample_quality
from genjax.models import gan
from genjax.train import keys, loop, pair
from genjax.train import logging as tlog
from genjax.train import state as tstate

# PRNG roles of this experiment beside genjax.train.keys' INIT and TRAIN.
SAMPLES, GRID = 2, 3  # the samples that are scored; the figure's grid


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """L_D = mean gan_d_loss + gp_weight mean GP + (r1_gamma / 2) mean R1;  L_G = mean gan_g_loss."""

  d_kind: str = "minimax"  # "minimax", "hinge", "wasserstein"
  g_kind: str = "non_saturating"  # "saturating", "non_saturating", "hinge", "wasserstein"
  gp_weight: float = 0.0  # lambda of WGAN-GP (10 in Gulrajani et al.)
  r1_gamma: float = 0.0  # gamma of R1 (Mescheder et al.)
  d_steps: int = 1  # k discriminator updates per generator update


def create(cfg: gan.GANConfig, g_tx, d_tx, key: jax.Array, mesh):
  """(g_graphdef, d_graphdef, state: genjax.train.pair.PairState), initialized in one jit and
  replicated over the mesh."""
  kg, kd = jax.random.split(key)
  make_g = lambda: gan.Generator(cfg, rngs=nnx.Rngs(params=kg))
  make_d = lambda: gan.Discriminator(cfg, rngs=nnx.Rngs(params=kd))
  return pair.create(make_g, make_d, g_tx, d_tx, mesh)


def d_step(state: pair.PairState, x_real, key, *, g_def, d_def, d_tx, cfg: LossConfig):
  """One discriminator update; the generator's parameters and optimizer state pass through."""
  kz, kgp = jax.random.split(key)
  g = nnx.merge(g_def, state.g_params, state.g_rest)
  x_fake = jax.lax.stop_gradient(gan.sample(g, kz, x_real.shape[0]))

  def objective(d_params):
    critic = lambda x: nnx.merge(d_def, d_params, state.d_rest)(x)[0]
    real, fake = critic(x_real), critic(x_fake)
    terms = {"d_loss": losses.gan_d_loss(real, fake, kind=cfg.d_kind).mean()}
    loss = terms["d_loss"]
    if cfg.gp_weight:
      terms["gp"] = losses.gradient_penalty(critic, x_real, x_fake, kgp).mean()
      loss = loss + cfg.gp_weight * terms["gp"]
    if cfg.r1_gamma:
      terms["r1"] = losses.r1_penalty(critic, x_real).mean()
      loss = loss + 0.5 * cfg.r1_gamma * terms["r1"]
    terms.update(d_real=jnp.mean(real), d_fake=jnp.mean(fake), d_total=loss)
    return loss, terms

  return pair.update_d(state, objective, d_tx)


def g_step(state: pair.PairState, batch_size: int, key, *, g_def, d_def, g_tx, cfg: LossConfig):
  """One generator update against the current discriminator, whose state passes through."""

  def objective(g_params):
    g = nnx.merge(g_def, g_params, state.g_rest)
    fake = nnx.merge(d_def, state.d_params, state.d_rest)(gan.sample(g, key, batch_size))[0]
    loss = losses.gan_g_loss(fake, kind=cfg.g_kind).mean()
    return loss, {"g_loss": loss}

  return pair.update_g(state, objective, g_tx)


def make_train_step(g_def, d_def, g_tx, d_tx, cfg: LossConfig):
  """jit(train_step, donate_argnums=0): x_real [k * B, H, W, C] -> k D updates, then 1 G update."""

  def train_step(state: pair.PairState, x_real: jax.Array, key: jax.Array):
    step_key = jax.random.fold_in(key, state.step)
    xs = x_real.reshape(cfg.d_steps, -1, *x_real.shape[1:])
    for i in range(cfg.d_steps):  # k is small and static: unrolled
      state, d_terms = d_step(
        state, xs[i], jax.random.fold_in(step_key, i), g_def=g_def, d_def=d_def, d_tx=d_tx, cfg=cfg
      )
    state, g_terms = g_step(
      state, xs.shape[1], jax.random.fold_in(step_key, cfg.d_steps),
      g_def=g_def, d_def=d_def, g_tx=g_tx, cfg=cfg,
    )  # fmt: skip
    metrics = dict(d_terms, **g_terms)
    metrics["loss"] = metrics["d_total"] + metrics["g_loss"]  # one scalar for the NaN check
    return state.replace(step=state.step + 1), metrics

  return tstate.jit_step(train_step, donate_argnums=0)


def optimizers(config: ml_collections.ConfigDict):
  o = config.optimizer
  return (
    optax.adam(o.g_learning_rate, b1=o.b1, b2=o.b2),
    optax.adam(o.d_learning_rate, b1=o.b1, b2=o.b2),
  )


@jax.jit
def _sample(g_def, g_params, g_rest, z):
  return nnx.merge(g_def, g_params, g_rest)(z)[1]["x"]


def generate(g_def, state: pair.PairState, key: jax.Array, n: int, latent_dim: int) -> np.ndarray:
  """n samples as NumPy [n, H, W, C]; z drawn per batch of 500 from fold_in(key, batch index)."""
  batch_size, out = min(n, 500), []
  for i in range(-(-n // batch_size)):
    z = jax.random.normal(jax.random.fold_in(key, i), (batch_size, latent_dim))
    out.append(np.asarray(_sample(g_def, state.g_params, state.g_rest, z)))
  return np.concatenate(out)[:n]


def evaluate(x_fake, clf: features.FrozenClassifier, real_test, real_train) -> dict:
  """Frechet distance to the test split, classifier score, class-histogram entropy, and floors."""
  p_fake, f_fake = clf(x_fake)
  p_test, f_test = clf(real_test)
  p_train, f_train = clf(real_train)
  test_stats = sample_quality.statistics(f_test)
  return {
    "fd": sample_quality.frechet_distance(*sample_quality.statistics(f_fake), *test_stats),
    "fd_floor_train_vs_test": sample_quality.frechet_distance(
      *sample_quality.statistics(f_train), *test_stats
    ),
    "classifier_score": sample_quality.classifier_score(p_fake),
    "classifier_score_real": sample_quality.classifier_score(p_test),
    "class_entropy": sample_quality.class_histogram_entropy(p_fake),
    "class_entropy_real": sample_quality.class_histogram_entropy(p_test),
    "evaluator_test_accuracy": clf.test_accuracy,
  }


def _evaluator(config, workdir: Path) -> features.FrozenClassifier:
  """The frozen classifier of config.evaluator_dir, trained there first if it holds none."""
  path = Path(config.evaluator_dir or workdir / "evaluator")
  if not (path / "results.json").exists():
    features.train(path, dataset=config.dataset, num_steps=config.evaluator_steps, seed=0,
                   data_dir=config.get("data_dir", ""))  # fmt: skip
  return features.load(path)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.num_steps GAN steps (resuming from workdir), then evaluates and saves figures."""
  # Setup: mesh and one key per role (genjax.train.keys).
  workdir, mesh, train_key = loop.setup(config, workdir)
  loss_cfg = LossConfig(**config.loss.to_dict())
  per_step = config.batch_size * loss_cfg.d_steps  # real images per step
  init_key = keys.key(config.seed, keys.INIT)
  sample_key, grid_key = keys.key(config.seed, SAMPLES), keys.key(config.seed, GRID)

  # Data: real images only (labels are not used by the GAN).
  kw = {"manual_dir": config.data_dir} if config.get("data_dir") else {}
  train_ds = data.get_dataset(config.dataset, config.train_split, **kw)
  test_ds = data.get_dataset(config.dataset, config.test_split, **kw)
  get_batch = batching.batches(train_ds.x, mesh, seed=config.seed, batch_size=per_step)

  # Model and optimizers; restore from the workdir if a checkpoint exists.
  g_tx, d_tx = optimizers(config)
  g_def, d_def, state = create(gan.GANConfig(**config.model.to_dict()), g_tx, d_tx, init_key, mesh)
  train_step = make_train_step(g_def, d_def, g_tx, d_tx, loss_cfg)
  z_grid = jax.random.normal(grid_key, (64, config.model.latent_dim))

  def sample_grid(n, state):  # a fixed z's samples over training
    if n % config.sample_every == 0 or n == config.num_steps:
      x = _sample(g_def, state.g_params, state.g_rest, z_grid)
      tlog.save_image_grid(workdir / "samples" / f"step_{n:06d}.png", np.asarray(x), ncol=8)

  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=per_step, show={"d_loss": ".3f", "g_loss": ".3f"},
                                 after_step=sample_grid)  # fmt: skip

  # Evaluate: eval_samples fakes against as many real test (and train) images.
  n = min(config.eval_samples, len(test_ds))
  clf = _evaluator(config, workdir)
  x_fake = generate(g_def, state, sample_key, n, config.model.latent_dim)
  results = evaluate(x_fake, clf, test_ds.x[:n], train_ds.x[:n])
  results.update(step=int(state.step), eval_samples=n, config=config.to_dict())
  writer.write_scalars(int(state.step), {k: v for k, v in results.items() if k not in ("config",)})
  tlog.write_json(workdir / "results.json", results)
  writer.close()
  ckpt.close()
  return results
