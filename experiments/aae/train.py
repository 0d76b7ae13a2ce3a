"""Face swap (b): adversarial autoencoder with a Gaussian prior on the code and latent mixing.

Each step makes two updates with separate optax states (Makhzani et al. 2016, sec. 2):
  1. latent discriminator D, on codes h = E(x) of an augmented batch (held fixed) against samples
     of the prior p(h) = N(0, I):  L_D = mean gan_d_loss(D(h_prior), D(h))  [+ gp_weight GP];
  2. autoencoder (encoder, decoder, identity head), D held fixed:
     L_AE = w_mse MSE + w_dssim DSSIM  (reconstruction of the unwarped target from the warped input)
          + w_adv mean gan_g_loss(D(h))  (non-saturating: the codes should pass for prior samples)
          + w_id  CE(identity head(h_id), y)  (identity into the first identity_dim entries).
Evaluation on held-out images of the same people: self reconstruction L1 / PSNR / SSIM, identity
accuracy of the head, how well the codes match the prior (mean and std per entry, D's accuracy),
and a preview: faces, reconstructions, swaps by mixing h_c = [h_A,id | h_B,rest] both ways, faces
decoded from prior samples, and a slerp path between two codes (generated tiles marked SYNTHETIC).
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
from genjax.data import faces
from genjax.evaluate import reconstruction
from genjax.faces import augment, mark, swap
from genjax.models import aae
from genjax.train import checkpoint, keys, loop, pair, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate

# PRNG role of this experiment beside genjax.train.keys' INIT and TRAIN.
EVAL = 2  # evaluation draws and the preview
# The keys of one training step: fold_in(step_key, role).
AUGMENT, D_UPDATE = 0, 1


@dataclasses.dataclass(frozen=True)
class LossConfig:
  mse: float = 1.0
  dssim: float = 1.0
  adversarial: float = 0.01  # weight of the encoder's non-saturating loss against D
  identity: float = 0.1  # weight of the identity cross-entropy on h_id
  d_kind: str = "minimax"
  gp_weight: float = 0.0  # WGAN-GP on D between prior samples and codes (0 = off)
  prior_std: float = 1.0  # p(h) = N(0, prior_std^2 I)
  background: float = 1.0  # weight of the reconstruction error off the face region


def create(cfg: aae.AAEConfig, ae_tx, d_tx, key: jax.Array, mesh):
  """(ae_graphdef, d_graphdef, state), initialized in one jit and replicated over the mesh. The
  state is a genjax.train.pair.PairState whose G is the autoencoder (g_params, g_rest, g_opt)."""
  ka, kd = jax.random.split(key)
  make_ae = lambda: aae.AdversarialAutoencoder(cfg, rngs=nnx.Rngs(params=ka))
  make_d = lambda: aae.LatentDiscriminator(cfg, rngs=nnx.Rngs(params=kd))
  return pair.create(make_ae, make_d, ae_tx, d_tx, mesh)


def d_step(state: pair.PairState, x_in, key, *, ae_def, d_def, d_tx, cfg: LossConfig):
  """One latent-discriminator update; the autoencoder's parameters and optimizer pass through."""
  kp, kgp = jax.random.split(key)
  h = jax.lax.stop_gradient(nnx.merge(ae_def, state.g_params, state.g_rest).encode(x_in))
  h_prior = cfg.prior_std * jax.random.normal(kp, h.shape, h.dtype)

  def objective(d_params):
    critic = lambda v: nnx.merge(d_def, d_params, state.d_rest)(v)
    real, fake = critic(h_prior), critic(h)
    loss = losses.gan_d_loss(real, fake, kind=cfg.d_kind).mean()
    terms = {"d_loss": loss}
    if cfg.gp_weight:
      terms["gp"] = losses.gradient_penalty(critic, h_prior, h, kgp).mean()
      loss = loss + cfg.gp_weight * terms["gp"]
    terms.update(d_prior=real.mean(), d_codes=fake.mean(), d_total=loss)
    return loss, terms

  return pair.update_d(state, objective, d_tx)


def ae_step(
  state: pair.PairState, x_in, target, weight, y, *, ae_def, d_def, ae_tx, cfg: LossConfig
):
  """One autoencoder update against the current latent discriminator, whose state passes through.
  weight [B, H, W]: the face region; the error off it counts cfg.background as much (as in (a))."""

  def objective(ae_params):
    model = nnx.merge(ae_def, ae_params, state.g_rest)
    logits, aux = model(x_in)
    x_hat = losses.face_weighted(jax.nn.sigmoid(logits), target, weight, cfg.background)
    mse, dssim = losses.mse(x_hat, target).mean(), losses.dssim(x_hat, target).mean()
    adv = losses.gan_g_loss(
      nnx.merge(d_def, state.d_params, state.d_rest)(aux["h"]), kind="non_saturating"
    ).mean()
    ident = optax.softmax_cross_entropy_with_integer_labels(aux["id_logits"], y).mean()
    loss = cfg.mse * mse + cfg.dssim * dssim + cfg.adversarial * adv + cfg.identity * ident
    return loss, {"mse": mse, "dssim": dssim, "adv": adv, "id_ce": ident, "ae_loss": loss}

  return pair.update_g(state, objective, ae_tx)


def make_train_step(ae_def, d_def, ae_tx, d_tx, cfg: LossConfig, aug: augment.AugmentConfig):
  """jit(train_step, donate_argnums=0): (x [B, H, W, 3], y [B]) -> one D update, one AE update."""

  def train_step(state: pair.PairState, batch, key: jax.Array):
    x, y, region = batch
    step_key = jax.random.fold_in(key, state.step)
    x_in, target, weight = augment.augment(
      jax.random.fold_in(step_key, AUGMENT), x, aug, mask=region
    )
    state, d_terms = d_step(
      state,
      x_in,
      jax.random.fold_in(step_key, D_UPDATE),
      ae_def=ae_def,
      d_def=d_def,
      d_tx=d_tx,
      cfg=cfg,
    )
    state, ae_terms = ae_step(
      state, x_in, target, weight, y, ae_def=ae_def, d_def=d_def, ae_tx=ae_tx, cfg=cfg
    )
    metrics = dict(d_terms, **ae_terms)
    metrics["loss"] = metrics["d_total"] + metrics["ae_loss"]  # one scalar for the NaN check
    return state.replace(step=state.step + 1), metrics

  return tstate.jit_step(train_step, donate_argnums=0)


def build(config: ml_collections.ConfigDict, mesh, num_identities: int):
  model_cfg = aae.AAEConfig(**dict(config.model.to_dict(), num_identities=num_identities))
  loss_cfg = LossConfig(**config.loss.to_dict())
  aug = augment.AugmentConfig(**config.augment.to_dict())
  ae_tx = optax.adam(config.learning_rate, b1=0.5, b2=0.999)
  d_tx = optax.adam(config.d_learning_rate, b1=0.5, b2=0.999)
  key = keys.key(config.seed, keys.INIT)
  ae_def, d_def, state = create(model_cfg, ae_tx, d_tx, key, mesh)
  return ae_def, d_def, state, make_train_step(ae_def, d_def, ae_tx, d_tx, loss_cfg, aug)


def load_data(config) -> tuple[faces.FaceDataset, faces.FaceDataset]:
  """Train and held-out (`faces.is_held_out`) aligned faces of every person with photos."""
  return faces.swap_data(config.dataset, root=config.data_root, size=config.model.image_shape[0],
                         seed=config.seed)  # fmt: skip


def _model(ae_def, state: pair.PairState):
  return nnx.merge(ae_def, state.g_params, state.g_rest)


def eval_fn(ae_def, d_def):
  """jit(state, x, y) -> per-example self-reconstruction metrics, identity hit, codes, D logits."""

  @jax.jit
  def fn(state: pair.PairState, x, y):
    model = _model(ae_def, state)
    logits, aux = model(x)
    out = reconstruction.metrics(jax.nn.sigmoid(logits), x)
    out["id_correct"] = (aux["id_logits"].argmax(-1) == y).astype(jnp.float32)
    out["h"] = aux["h"]
    out["d_codes"] = nnx.merge(d_def, state.d_params, state.d_rest)(aux["h"])
    return out

  return fn


def evaluate(ae_def, d_def, state: pair.PairState, test: faces.FaceDataset, key, chunk: int = 64):
  fn = eval_fn(ae_def, d_def)
  parts = [fn(state, test.images(slice(i, i + chunk)), test.y[i : i + chunk])
           for i in range(0, len(test), chunk)]  # fmt: skip
  out = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
  h = out.pop("h")
  d_codes = out.pop("d_codes")
  prior = np.asarray(jax.random.normal(key, h.shape))
  d_prior = np.asarray(nnx.merge(d_def, state.d_params, state.d_rest)(jnp.asarray(prior)))
  results = {f"self_{k}": float(v.mean()) for k, v in out.items() if k != "id_correct"}
  results["identity_accuracy"] = float(out["id_correct"].mean())
  results.update(
    code_mean_abs=float(np.abs(h.mean(0)).mean()),  # 0 under the prior
    code_std=float(h.std(0).mean()),  # 1 under the prior
    # D's accuracy at telling prior samples (logit > 0) from codes (logit < 0); 0.5 = fooled.
    d_accuracy=float(((d_prior > 0).mean() + (d_codes < 0).mean()) / 2),
  )
  return results


def preview(
  path: Path, ae_def, state: pair.PairState, test: faces.FaceDataset, names, key, n: int = 8
):
  """Rows: A, A reconstructed, B, B reconstructed, [A_id | B_rest], [B_id | A_rest], faces from
  prior samples, slerp from A[0] to B[0]. Generated tiles are marked SYNTHETIC."""
  model = _model(ae_def, state)
  xa, xb = (test.images(test.y == test.label(nm))[:n] for nm in names)
  n = min(len(xa), len(xb))
  xa, xb = xa[:n], xb[:n]
  ha, hb = model.encode(jnp.asarray(xa)), model.encode(jnp.asarray(xb))
  gen = [model.decode(ha), model.decode(hb), model.decode(model.mix(ha, hb)),
         model.decode(model.mix(hb, ha)),
         model.decode(jax.random.normal(key, ha.shape)),
         model.decode(aae.slerp(ha[0], hb[0], jnp.linspace(0, 1, n)))]  # fmt: skip
  marked = lambda v: np.stack([mark.mark_synthetic(t) for t in np.asarray(v)])
  rows = [xa, marked(gen[0]), xb, marked(gen[1]), marked(gen[2]), marked(gen[3]), marked(gen[4]),
          marked(gen[5])]  # fmt: skip
  return mark.save_synthetic_png(path, tlog.image_grid(np.concatenate(rows), ncol=n))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.num_steps steps (resuming from workdir), then writes results.json and previews."""
  # Setup.
  workdir, mesh, train_key = loop.setup(config, workdir)

  # Data.
  train, test = load_data(config)
  get_batch = faces.batches(train, mesh, seed=config.seed, batch_size=config.batch_size)

  # Model, resumed from the workdir when it holds a checkpoint, and the loop.
  ae_def, d_def, state, train_step = build(config, mesh, len(train.names))
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=config.batch_size)  # fmt: skip

  # Evaluate on the held-out images, write results and previews.
  eval_key = keys.key(config.seed, EVAL)
  results = evaluate(ae_def, d_def, state, test, eval_key)
  results.update(step=int(state.step), num_train=len(train), num_test=len(test),
                 config=config.to_dict())  # fmt: skip
  writer.write_scalars(int(state.step), {k: v for k, v in results.items()
                                         if isinstance(v, float)})  # fmt: skip
  tlog.write_json(workdir / "results.json", results)
  pair = (config.identity_a, config.identity_b) if config.dataset != "mock" else test.names[:2]
  preview(workdir / "preview.png", ae_def, state, test, pair, jax.random.fold_in(eval_key, 1))
  writer.close()
  ckpt.close()
  return results


def restore(workdir: str | Path):
  """(ae_graphdef, d_graphdef, state, config) of a run, from its config.json and latest checkpoint."""
  config = checkpoint.run_config(workdir)
  train, _ = load_data(config)
  ae_def, d_def, state, _ = build(config, sharding.make_mesh(1), len(train.names))
  return ae_def, d_def, checkpoint.restore_latest(workdir, state), config


def swap_fn(ae_def):
  """jit(state, x_source, x_target) -> pixels: the sources' identity on the targets."""
  return jax.jit(lambda state, xs, xt: _model(ae_def, state).swap(xs, xt))


def face_swapper(workdir: str | Path, source):
  """(swap_faces, crop size) for genjax.faces.swap: aligned crops [B, s, s, 3] -> decoded from
  [h_id of the source | h_rest of the crop], h_id the mean over the source's aligned crops
  (`source`: crops, photos or a person's name; genjax.faces.swap.source_crops)."""
  ae_def, _, state, config = restore(workdir)
  model = _model(ae_def, state)
  source_crops = swap.source_crops(source, config.model.image_shape[0])
  h_source = jnp.mean(jax.jit(model.encode)(jnp.asarray(source_crops, jnp.float32)), 0)

  @jax.jit
  def fn(state, xt):
    m = _model(ae_def, state)
    h_t = m.encode(xt)
    return jax.nn.sigmoid(m.decode(m.mix(jnp.broadcast_to(h_source, h_t.shape), h_t)))

  return (
    lambda crops: np.asarray(fn(state, np.asarray(crops, np.float32)))
  ), config.model.image_shape[0]
