"""Face swap (c): identity-injection generator against a multi-scale PatchGAN (SimSwap-like).

Data: the aligned faces of the original LFW photos of the five people with photos (as (b));
held-out photos (faces.is_held_out) never trained on. A batch of targets x_t is augmented (flip,
small affine, colour jitter; no warp). The first `same_fraction` of the batch is its own source
(x_s = x_t: a reconstruction pair); for the rest the source is the next face of the batch
(x_s = roll(x_t), often another person). The source identity is v_s = unit(F(view(x_s))) for the
frozen identity net F trained by experiments/identity, which reads faces in the LFW3D framing:
view = genjax.faces.align.identity_view_transform, a fixed similarity of the aligned crop. With
loss.id_views > 0, F scores the swap through that many randomly shifted, scaled, rotated and
flipped copies (expectation over transformations, Athalye et al. 2018): a change that moves F's
embedding under all of them is a change of the face, not a pattern that fools one fixed view.

Each step makes two updates with separate optax states:
  1. D (generator held fixed, fakes y = G(x_t, v_s) under stop_gradient), real images x_t:
       L_D = sum_scales mean_patches hinge(D(x_t), D(y)) + w_gp * WGAN-GP(x_t, y);
  2. G (D and F held fixed):
       L_G = w_adv sum_scales mean_patches(-D(y))                   (hinge generator loss)
           + w_id  mean(1 - cos(F(y), v_s))                          (identity)
           + w_rec mean over reconstruction pairs of |y - x_t|       (L1, same person and image)
           + w_fm  sum_scales FM(last fm_layers of D on y, on x_t)   (weak feature matching).
The paper's weights are w_id = 10, w_rec = 10, w_fm = 10, w_gp = 1e-5 (Chen et al. 2020, sec. 4).
Options beyond the paper: a projection D that judges (face, identity vector) pairs, with a
matching-aware term that calls real faces under another person's vector fake (model.disc_projection,
loss.mismatch); a latent adversary, D's classifier of the person from G's bottleneck code against
an encoder penalized by w_code * KL(uniform || classifier(code)) (model.code_classes,
loss.code_adversary).
Evaluation on the held-out images: self-swap (source = target) L1 / PSNR / SSIM, and for swaps to
another person the cosine under F to the source and to the target; preview: a swap matrix.
"""

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from genjax import losses, nn
from genjax.data import faces
from genjax.evaluate import reconstruction
from genjax.faces import align, augment, mark, swap
from genjax.models import identity, landmarks, simswap
from genjax.train import checkpoint, keys, loop, pair, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate

# Generated-face runs only: the stand-in identity net F is initialized from seed + MOCK_F_SEED.
MOCK_F_SEED = 99
# The keys of one training step: fold_in(step_key, role).
AUGMENT, D_UPDATE, G_UPDATE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class LossConfig:
  identity: float = 10.0
  reconstruction: float = 10.0
  feature_matching: float = 10.0
  gp: float = 1e-5
  adversarial: float = 1.0
  fm_layers: int = 1  # feature maps of each PatchGAN matched, counted from its last hidden layer
  same_fraction: float = 0.5  # share of each batch that is its own source
  id_views: int = 0  # > 0: the identity loss averaged over this many random views of the swap
  # > 0: F scores the swap and the source low-passed by a Gaussian of this many pixels (sigma) in
  # the identity loss, so that only coarse face structure lowers it, not fine patterns that move
  # a weak F's embedding (the generator's own input v_s stays F of the sharp source)
  id_blur: float = 0.0
  dssim: float = 0.0  # weight of DSSIM in the reconstruction (0 in SimSwap)
  background: float = 1.0  # weight of the reconstruction error off the face region
  # Where v_s, the generator's identity input and the identity loss's target, comes from: "image",
  # F of the source face itself; "person", the unit mean of F over every training face of the
  # source's person (what a swap uses: face_swapper), so both are one fixed vector per person
  # instead of one that moves with each photo's pose, light and F's errors.
  source_identity: str = "image"
  # Weight of the matching-aware term (with model.disc_projection): D also learns to call a real
  # face judged with another person's identity vector fake, hinge max(0, 1 + D(x_t, v_s)) over the
  # batch's pairs of two people (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis").
  mismatch: float = 0.0
  # Weight of the latent adversary (with model.code_classes): D's code classifier learns the
  # person of each target from G's code (cross-entropy, weight 1 in L_D), and G's encoder is
  # penalized by code_adversary * KL(uniform || classifier(code)) for letting it tell.
  code_adversary: float = 0.0
  # Weight of the landmark term: the mean distance (crop pixels) between the 68 landmarks of each
  # swap and of its target under a frozen landmark regressor (experiments/landmarks, trained on
  # dlib's points of the training photos), over the batch's swaps (not the reconstruction pairs):
  # the target's pose and expression kept through a differentiable stand-in for dlib.
  landmarks: float = 0.0

  def __post_init__(self):
    if self.source_identity not in ("image", "person"):
      raise ValueError(f"loss.source_identity = {self.source_identity!r}: expected 'image' or "
                       "'person'.")  # fmt: skip
    if self.source_identity == "person" and self.id_blur > 0:
      raise ValueError("loss.id_blur > 0 scores the swap against F of the low-passed source "
                       "photo; it cannot be combined with loss.source_identity = 'person'.")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Defs:
  """The static graph definitions of G, D and the identity net F."""

  g: Any
  d: Any
  f: Any


def create(cfg: simswap.SimSwapConfig, g_tx, d_tx, key, mesh, f_def, f_vars) -> tuple[Defs, Any]:
  """(Defs, state), G and D initialized in one jit, everything replicated over the mesh. The state
  is a genjax.train.pair.PairState whose `frozen` holds F's (params, rest)."""
  kg, kd = jax.random.split(key)
  make_g = lambda: simswap.Generator(cfg, rngs=nnx.Rngs(params=kg))
  make_d = lambda: simswap.MultiScaleDiscriminator(cfg, rngs=nnx.Rngs(params=kd))
  g_def, d_def, state = pair.create(make_g, make_d, g_tx, d_tx, mesh, frozen=f_vars)
  return Defs(g_def, d_def, f_def), state


def generator(defs: Defs, state: pair.PairState, params=None) -> simswap.Generator:
  return nnx.merge(defs.g, state.g_params if params is None else params, state.g_rest)


def discriminator(defs: Defs, state: pair.PairState, params=None):
  return nnx.merge(defs.d, state.d_params if params is None else params, state.d_rest)


def identity_vector(defs: Defs, state: pair.PairState, x: jax.Array) -> jax.Array:
  """Unit identity embedding of aligned faces x under the frozen net F (through its view), [B, D]."""
  m = align.identity_view_transform(x.shape[1], x.shape[1])
  return simswap.unit(nnx.merge(defs.f, *state.frozen)(align.warp_batch(x, m, x.shape[1:3]))[0])


# The random views of the identity loss: the geometry of the training augmentation, no colour change.
ID_VIEWS = augment.AugmentConfig(flip=True, rotate=6.0, scale=0.06, shift=0.04, warp=0.0,
                                 brightness=0.0, contrast=0.0, saturation=0.0)  # fmt: skip


def identity_term(defs: Defs, state: pair.PairState, fake, v_s, key, views: int,
                  blur: float = 0.0) -> jax.Array:  # fmt: skip
  """mean (1 - cos(F(fake), v_s)), over `views` random views of fake when views > 0; fake
  low-passed first (augment.blur) when blur > 0."""
  fake = augment.blur(fake, blur)
  if views <= 0:
    return losses.identity_loss(identity_vector(defs, state, fake), v_s).mean()
  keys = jax.random.split(key, views)
  per_view = [losses.identity_loss(
                identity_vector(defs, state, augment.augment(k, fake, ID_VIEWS)[1]), v_s).mean()
              for k in keys]  # fmt: skip
  return sum(per_view) / views


def mean_identity(defs: Defs, state: pair.PairState, x: np.ndarray, chunk: int = 64) -> jax.Array:
  """[D]: the unit mean of the identity vectors of aligned faces x [N, H, W, 3] (a person's
  training faces: the source vector of a swap, face_swapper, and a row of person_identities)."""
  fn = functools.partial(_identity_vector_jit, defs)
  v = jnp.concatenate([fn(state, jnp.asarray(x[i : i + chunk])) for i in range(0, len(x), chunk)])
  return simswap.unit(v.mean(0))


# One compilation per (defs, shape) for every caller of mean_identity (defs are hashable and static).
_identity_vector_jit = jax.jit(identity_vector, static_argnums=0)


def person_identities(defs: Defs, state: pair.PairState, ds: faces.FaceDataset,
                      chunk: int = 64) -> jax.Array:  # fmt: skip
  """[len(ds.names), D]: row p the mean_identity of person p's faces in ds; zeros for a person
  without faces in ds."""
  rows = {int(p): mean_identity(defs, state, ds.images(ds.y == p), chunk) for p in np.unique(ds.y)}
  zero = jnp.zeros_like(next(iter(rows.values())))
  return jnp.stack([rows.get(p, zero) for p in range(len(ds.names))])


def make_pairs(x: jax.Array, same_fraction: float) -> tuple[jax.Array, jax.Array]:
  """(sources [B, ...], same [B] bool): the first round(B * same_fraction) examples are their own
  source, the others take the next example of the batch."""
  n_same = round(x.shape[0] * same_fraction)
  same = jnp.arange(x.shape[0]) < n_same
  sources = jnp.where(same[:, None, None, None], x, jnp.roll(x, -1, axis=0))
  return sources, same


def two_people(y: jax.Array, same: jax.Array) -> jax.Array:
  """[B] bool: the pairs of make_pairs whose target (label y) and source are two people."""
  return jnp.logical_and(~same, y != jnp.roll(y, -1))


def d_step(state: pair.PairState, x_t, fake, key, *, defs: Defs, d_tx, cfg: LossConfig,
           v_real=None, v_fake=None, mismatch=None, codes=None, y=None):  # fmt: skip
  """One discriminator update (hinge + WGAN-GP); the generator and its optimizer pass through.

  With a projection discriminator (model.disc_projection) the real faces x_t are judged with
  their own identity vectors v_real, the fakes with the v_fake they were drawn with, and, with
  cfg.mismatch > 0, the real faces x_t judged with v_fake count as fakes where `mismatch` [B]
  (the pair's two faces are of two people). With codes [B, bottleneck] (G's codes of the targets,
  held fixed) and their people y [B], D's code classifier is trained by cross-entropy too."""

  def objective(d_params):
    disc = discriminator(defs, state, d_params)
    real_out, fake_out = disc(x_t, v_real), disc(fake, v_fake)
    hinge = sum(losses.gan_d_loss(r.reshape(-1), f.reshape(-1), kind="hinge").mean()
                for (r, _), (f, _) in zip(real_out, fake_out, strict=True))  # fmt: skip
    critic = lambda x: disc.critic(x, v_fake)
    gp = losses.gradient_penalty(critic, x_t, fake, key).mean()
    loss = hinge + cfg.gp * gp
    terms = {"d_hinge": hinge, "gp": gp, "d_real": sum(r.mean() for r, _ in real_out),
             "d_fake": sum(f.mean() for f, _ in fake_out)}  # fmt: skip
    if cfg.mismatch > 0:
      w = mismatch.astype(x_t.dtype)
      # the real faces judged with v_fake: real_out's logits moved by the projection of the change
      per_example = sum(jax.nn.relu(1.0 + r).mean(axis=(1, 2))
                        for r in disc.reproject(real_out, v_fake - v_real))  # fmt: skip
      terms["d_mismatch"] = (w * per_example).sum() / jnp.maximum(w.sum(), 1.0)
      loss = loss + cfg.mismatch * terms["d_mismatch"]
    if codes is not None:
      logits = disc.classify_code(codes)
      terms["code_ce"] = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      terms["code_acc"] = (logits.argmax(-1) == y).mean()
      loss = loss + terms["code_ce"]
    terms["d_loss"] = loss
    return loss, terms

  return pair.update_d(state, objective, d_tx)


def g_terms(defs: Defs, state: pair.PairState, g_params, x_t, v_s, same, key, cfg: LossConfig, *,
            x_in=None, weight=None, v_id=None, landmark_fn=None):  # fmt: skip
  """(L_G, its terms) of the generator with parameters g_params; D and F are held fixed.

  x_in: the generator's input (default x_t; the randomly warped x_t when the augmentation warps);
  weight [B, H, W]: the face region (default all ones); the reconstruction error off it counts
  cfg.background as much; v_id: the identity loss's target (default v_s; with cfg.id_blur, F of
  the low-passed source); landmark_fn: x [B, H, W, 3] -> [B, 68, 2], the frozen landmark net
  (needed by cfg.landmarks).
  """
  x_in = x_t if x_in is None else x_in
  g = generator(defs, state, g_params)
  code = g.encode(x_in)
  fake = jax.nn.sigmoid(g.decode(code, v_s))
  disc = discriminator(defs, state)
  # judged with the identity it was drawn with (a projection D); real_out gives only features
  fake_out, real_out = disc(fake, v_s), disc(x_t, v_s)
  adv = sum(losses.gan_g_loss(f.reshape(-1), kind="hinge").mean() for f, _ in fake_out)
  fm = sum(losses.feature_matching(
             ff[-cfg.fm_layers :], [jax.lax.stop_gradient(r) for r in rf[-cfg.fm_layers :]]
           ).mean() for (_, ff), (_, rf) in zip(fake_out, real_out, strict=True))  # fmt: skip
  ident = identity_term(defs, state, fake, v_s if v_id is None else v_id, key, cfg.id_views,
                        cfg.id_blur)  # fmt: skip
  w = same.astype(fake.dtype)
  y = fake if weight is None else losses.face_weighted(fake, x_t, weight, cfg.background)
  l1 = jnp.abs(y - x_t).reshape(x_t.shape[0], -1).mean(1)
  rec = (w * l1).sum() / jnp.maximum(w.sum(), 1.0)
  dssim = (w * losses.dssim(y, x_t)).sum() / jnp.maximum(w.sum(), 1.0)
  loss = (cfg.adversarial * adv + cfg.identity * ident + cfg.reconstruction * rec
          + cfg.dssim * dssim + cfg.feature_matching * fm)  # fmt: skip
  terms = {"g_adv": adv, "fm": fm, "id_loss": ident, "rec_l1": rec, "rec_dssim": dssim}
  if cfg.code_adversary > 0:
    terms["code_confusion"] = losses.uniform_confusion(disc.classify_code(code)).mean()
    loss = loss + cfg.code_adversary * terms["code_confusion"]
  if cfg.landmarks > 0:
    per = landmarks.point_error(landmark_fn(fake), jax.lax.stop_gradient(landmark_fn(x_t)))
    swaps = (~same).astype(fake.dtype)
    terms["landmark_px"] = (swaps * per).sum() / jnp.maximum(swaps.sum(), 1.0)
    loss = loss + cfg.landmarks * terms["landmark_px"]
  terms["g_loss"] = loss
  return loss, terms


def g_step(state: pair.PairState, x_t, v_s, same, key, *, defs: Defs, g_tx, cfg: LossConfig,
           x_in=None, weight=None, v_id=None, landmark_fn=None):  # fmt: skip
  objective = lambda p: g_terms(defs, state, p, x_t, v_s, same, key, cfg, x_in=x_in, weight=weight,
                                v_id=v_id, landmark_fn=landmark_fn)  # fmt: skip
  return pair.update_g(state, objective, g_tx)


def make_train_step(defs: Defs, g_tx, d_tx, cfg: LossConfig, aug: augment.AugmentConfig,
                    id_table=None, projection: bool = False, code_classes: int = 0,
                    landmark_net=None):  # fmt: skip
  """jit(train_step, donate_argnums=0): (x [B, H, W, 3], y [B], region) -> one D update, one G
  update. id_table [people, D] (person_identities of the training faces) is needed when
  cfg.source_identity == "person": v_s is then the row of the source's person. projection: the
  discriminator judges (face, identity) pairs (model.disc_projection), needed by cfg.mismatch;
  code_classes: people its code classifier tells apart (model.code_classes), needed by
  cfg.code_adversary; landmark_net: (graphdef, (params, rest)) of the frozen landmark regressor,
  needed by cfg.landmarks (its weights enter the step as constants: they never change)."""
  if cfg.source_identity == "person" and id_table is None:
    raise ValueError("loss.source_identity = 'person' needs the table of person identities.")
  if cfg.mismatch > 0 and not projection:
    raise ValueError("loss.mismatch > 0 needs a discriminator that reads the identity vector: "
                     "set model.disc_projection = True.")  # fmt: skip
  if cfg.code_adversary > 0 and not code_classes:
    raise ValueError("loss.code_adversary > 0 needs the discriminator's code classifier: set "
                     "model.code_classes to the number of people (and model.bottleneck).")  # fmt: skip
  if cfg.landmarks > 0 and landmark_net is None:
    raise ValueError("loss.landmarks > 0 needs the landmark net: set config.landmark_workdir to a "
                     "finished run of experiments/landmarks.")  # fmt: skip
  table = None if id_table is None else jnp.asarray(id_table)
  landmark_fn = None if landmark_net is None else (lambda x: nnx.merge(landmark_net[0],
                                                                       *landmark_net[1])(x))  # fmt: skip

  def train_step(state: pair.PairState, batch, key: jax.Array):
    x, y, region = batch
    step_key = jax.random.fold_in(key, state.step)
    x_in, x_t, weight = augment.augment(jax.random.fold_in(step_key, AUGMENT), x, aug, mask=region)
    x_s, same = make_pairs(x_t, cfg.same_fraction)
    if cfg.source_identity == "person":  # the source's person, paired as make_pairs pairs faces
      v_s = table[jnp.where(same, y, jnp.roll(y, -1))]
    else:
      v_s = jax.lax.stop_gradient(identity_vector(defs, state, x_s))
    v_id = None
    if cfg.id_blur > 0:
      v_id = jax.lax.stop_gradient(identity_vector(defs, state, augment.blur(x_s, cfg.id_blur)))
    g = generator(defs, state)
    codes = jax.lax.stop_gradient(g.encode(x_in))
    fake = jax.lax.stop_gradient(jax.nn.sigmoid(g.decode(codes, v_s)))
    # the targets' own identity vectors and the pairs of two people, for a projection D
    if cfg.source_identity == "person":
      v_t = table[y]
    else:
      v_t = jax.lax.stop_gradient(identity_vector(defs, state, x_t)) if projection else None
    mismatch = two_people(y, same)
    state, d_terms = d_step(state, x_t, fake, jax.random.fold_in(step_key, D_UPDATE), defs=defs,
                            d_tx=d_tx, cfg=cfg, v_real=v_t, v_fake=v_s, mismatch=mismatch,
                            codes=codes if code_classes else None, y=y)  # fmt: skip
    state, g_terms_ = g_step(state, x_t, v_s, same, jax.random.fold_in(step_key, G_UPDATE), defs=defs,
                             g_tx=g_tx, cfg=cfg, x_in=x_in, weight=weight, v_id=v_id,
                             landmark_fn=landmark_fn)  # fmt: skip
    metrics = dict(d_terms, **g_terms_)
    metrics["loss"] = metrics["d_loss"] + metrics["g_loss"]  # one scalar for the NaN check
    return state.replace(step=state.step + 1), metrics

  return tstate.jit_step(train_step, donate_argnums=0)


def identity_net(config, mesh):
  """(graphdef, (params, rest)) of the frozen identity net: restored from config.identity_workdir,
  or, only for generated test faces, a randomly initialized one."""
  if config.identity_workdir:  # a finished run of experiments/identity: its net, without its head
    run = checkpoint.run_config(config.identity_workdir, finished=True)
    results = json.loads((Path(config.identity_workdir) / "results.json").read_text())
    cfg = identity.IdentityConfig(**run.model.to_dict(), num_classes=results["num_train_ids"])
    make = lambda: identity.IdentityNet(cfg, rngs=nnx.Rngs(0))  # shapes only: the weights are read
    return checkpoint.restore_model(config.identity_workdir, make, mesh)
  if config.dataset != "mock":
    raise ValueError("config.identity_workdir is empty: train the identity net first "
                     "(experiments/identity/configs/identity.py) and point at its workdir.")  # fmt: skip
  cfg = identity.IdentityConfig(image_shape=tuple(config.model.image_shape), channels=(8, 8),
                                embed_dim=config.model.id_dim, num_classes=4)  # fmt: skip
  make = lambda: identity.IdentityNet(
    cfg, rngs=nnx.Rngs(params=jax.random.key(config.seed + MOCK_F_SEED))
  )
  f_def, params, rest = nnx.split(nn.build(make), nnx.Param, ...)
  return f_def, sharding.replicate((params, rest), mesh)


def landmark_net(config, mesh):
  """(graphdef, (params, rest)) of the frozen landmark regressor of loss.landmarks: restored from
  config.landmark_workdir, or, only for generated test faces, a randomly initialized one."""
  workdir = config.get("landmark_workdir")
  if workdir:
    run = checkpoint.run_config(workdir, finished=True)
    cfg = landmarks.LandmarkConfig(**run.model.to_dict())
    if tuple(cfg.image_shape) != tuple(config.model.image_shape):
      raise ValueError(f"config.landmark_workdir reads {cfg.image_shape} faces, the generator makes "
                       f"{tuple(config.model.image_shape)}.")  # fmt: skip
    return checkpoint.restore_model(workdir, lambda: landmarks.LandmarkNet(cfg, rngs=nnx.Rngs(0)),
                                    mesh)  # fmt: skip
  if config.dataset != "mock":
    raise ValueError("loss.landmarks > 0 needs config.landmark_workdir: train the landmark net "
                     "first (experiments/landmarks/configs/landmarks.py).")  # fmt: skip
  cfg = landmarks.LandmarkConfig(image_shape=tuple(config.model.image_shape), channels=(8, 8))
  make = lambda: landmarks.LandmarkNet(cfg, rngs=nnx.Rngs(params=jax.random.key(config.seed)))
  l_def, params, rest = nnx.split(nn.build(make), nnx.Param, ...)
  return l_def, sharding.replicate((params, rest), mesh)


def load_data(config) -> tuple[faces.FaceDataset, faces.FaceDataset]:
  """Train and held-out (`faces.is_held_out`) aligned faces of config.people (() or absent: every
  person with photos)."""
  return faces.swap_data(config.dataset, root=config.data_root, size=config.model.image_shape[0],
                         names=tuple(config.get("people", ())) or None, seed=config.seed)  # fmt: skip


def build(config: ml_collections.ConfigDict, mesh, train: faces.FaceDataset | None = None):
  """(defs, state, train_step). With config.loss.source_identity = "person" the step needs the
  table of person identities of the training faces `train`; without them (a run restored to
  swap or evaluate) train_step is None."""
  f_def, f_vars = identity_net(config, mesh)
  id_dim = jax.tree.leaves(f_vars[0]["embed"])[0].shape[-1]
  if id_dim != config.model.id_dim:
    raise ValueError(f"config.model.id_dim = {config.model.id_dim}, but the identity net embeds "
                     f"into {id_dim} dims.")  # fmt: skip
  model_cfg = simswap.SimSwapConfig(**config.model.to_dict())
  loss_cfg = LossConfig(**config.loss.to_dict())
  aug = augment.AugmentConfig(**config.augment.to_dict())
  g_tx = optax.adam(config.learning_rate, b1=0.0, b2=0.99)
  d_tx = optax.adam(config.d_learning_rate, b1=0.0, b2=0.99)
  key = keys.key(config.seed, keys.INIT)
  defs, state = create(model_cfg, g_tx, d_tx, key, mesh, f_def, f_vars)
  id_table = None
  if loss_cfg.source_identity == "person":
    if train is None:
      return defs, state, None
    id_table = person_identities(defs, state, train)
  if model_cfg.code_classes and train is not None and len(train.names) != model_cfg.code_classes:
    raise ValueError(f"config.model.code_classes = {model_cfg.code_classes}, but the training "
                     f"faces hold {len(train.names)} people (one class each).")  # fmt: skip
  lm_net = landmark_net(config, mesh) if loss_cfg.landmarks > 0 else None
  return defs, state, make_train_step(defs, g_tx, d_tx, loss_cfg, aug, id_table,
                                      model_cfg.disc_projection, model_cfg.code_classes, lm_net)  # fmt: skip


def eval_fn(defs: Defs):
  """jit(state, x) -> per-example self-swap metrics, and cosines under F of the swap
  G(x, v(roll x)) to its source roll(x) and to its target x."""

  @jax.jit
  def fn(state: pair.PairState, x):
    g = generator(defs, state)
    v = identity_vector(defs, state, x)
    out = reconstruction.metrics(g.swap(x, v), x)
    v_src = jnp.roll(v, -1, axis=0)
    v_swap = identity_vector(defs, state, g.swap(x, v_src))
    out["cos_to_source"] = identity.cosine(v_swap, v_src)
    out["cos_to_target"] = identity.cosine(v_swap, v)
    out["cos_target_source"] = identity.cosine(v, v_src)  # the copy-target baseline
    return out

  return fn


def evaluate(defs: Defs, state: pair.PairState, test: faces.FaceDataset, chunk: int = 64) -> dict:
  """Held-out metrics. The test order is shuffled once (seed 0) so that roll(x) is mostly another
  person; pairs of the same person are excluded from the cosine averages."""
  order = np.random.default_rng(0).permutation(len(test))
  fn = eval_fn(defs)
  parts, other = [], []
  for i in range(0, len(order), chunk):
    idx = order[i : i + chunk]
    if len(idx) < 2:
      continue
    parts.append(fn(state, test.images(idx)))
    other.append(test.y[idx] != np.roll(test.y[idx], -1))
  out = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
  other = np.concatenate(other)
  results = {f"self_{k}": float(out[k].mean()) for k in ("l1", "psnr", "ssim")}
  for k in ("cos_to_source", "cos_to_target", "cos_target_source"):
    results[f"swap_{k}"] = float(out[k][other].mean())
  results["num_swap_pairs"] = int(other.sum())
  return results


def preview(path: Path, defs: Defs, state: pair.PairState, test: faces.FaceDataset, n: int = 6):
  """Swap matrix: top row the sources (one face of each of n people), left column the targets;
  cell (i, j) = target i with the identity of source j (diagonal: self-swap). Marked SYNTHETIC."""
  people = np.unique(test.y)[:n]
  x = np.stack([test.images(np.flatnonzero(test.y == p)[:1])[0] for p in people])
  n = len(x)

  @jax.jit
  def matrix(state, x):  # [targets, sources, H, W, 3]
    g, v = generator(defs, state), identity_vector(defs, state, x)
    return jax.vmap(lambda xt: g.swap(jnp.broadcast_to(xt, x.shape), v))(x)

  out = np.asarray(matrix(state, jnp.asarray(x)))
  tiles = [np.ones_like(x[0])] + list(x)
  for i in range(n):
    tiles += [x[i]] + [mark.mark_synthetic(t) for t in out[i]]
  return mark.save_synthetic_png(path, tlog.image_grid(np.stack(tiles), ncol=n + 1))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.num_steps steps (resuming from workdir), then writes results.json and previews."""
  # Setup and data.
  workdir, mesh, train_key = loop.setup(config, workdir)
  train, test = load_data(config)
  get_batch = faces.batches(train, mesh, seed=config.seed, batch_size=config.batch_size)

  # Model, resumed from the workdir when it holds a checkpoint, and the loop.
  defs, state, train_step = build(config, mesh, train)
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=config.batch_size)  # fmt: skip

  # Evaluate on the held-out images, write results and the swap matrix.
  results = evaluate(defs, state, test)
  results.update(step=int(state.step), num_train=len(train), num_test=len(test),
                 config=config.to_dict())  # fmt: skip
  writer.write_scalars(int(state.step), {k: v for k, v in results.items()
                                         if isinstance(v, float)})  # fmt: skip
  tlog.write_json(workdir / "results.json", results)
  preview(workdir / "preview.png", defs, state, test)
  writer.close()
  ckpt.close()
  return results


def restore(workdir: str | Path):
  """(defs, state, config) of a run, from its config.json and latest checkpoint."""
  config = checkpoint.run_config(workdir)
  defs, state, _ = build(config, sharding.make_mesh(1))
  return defs, checkpoint.restore_latest(workdir, state), config


def swap_fn(defs: Defs):
  """jit(state, x_source, x_target) -> pixels: the sources' identity on the targets."""
  return jax.jit(lambda state, xs, xt: generator(defs, state).swap(
    xt, identity_vector(defs, state, xs)))  # fmt: skip


def face_swapper(workdir: str | Path, source):
  """(swap_faces, crop size) for genjax.faces.swap: aligned crops [B, s, s, 3] -> G(crop, v_s), v_s
  the unit mean of the identity vectors of the source's aligned crops
  (`source`: crops, photos or a person's name; genjax.faces.swap.source_crops)."""
  defs, state, config = restore(workdir)
  source_crops = swap.source_crops(source, config.model.image_shape[0])
  v_source = mean_identity(defs, state, np.asarray(source_crops, np.float32))

  @jax.jit
  def fn(state, xt):
    return generator(defs, state).swap(
      xt, jnp.broadcast_to(v_source, (xt.shape[0], *v_source.shape))
    )

  return (
    lambda crops: np.asarray(fn(state, np.asarray(crops, np.float32)))
  ), config.model.image_shape[0]
