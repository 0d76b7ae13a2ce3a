"""Landmark regressor (genjax.models.landmarks) on the aligned LFW photos, dlib's 68 points as labels.

Each step: a batch of aligned crops and their landmarks (crop pixels), each mirrored with
probability 1/2 (points relabelled by FLIP_68), moved by a random similarity (rotation, scale,
shift about the centre; the points moved with it: without it a net learns little beyond the mean
shape of crops that the alignment has already put in place) and colour-jittered, and one AdamW
step on the mean squared point error in units of the crop side:
  L = mean_{b, i} ||p_hat_bi - p_bi||^2 / S^2.
Evaluation on the held-out crops (genjax.data.faces.is_held_out, never trained on): the mean point
distance over the inter-ocular distance (as genjax.evaluate.face_identity scores dlib's points on
swaps), for the net and for the training faces' mean landmarks (the error of a net that reads
nothing of the face).
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from genjax.data import batching, faces
from genjax.faces import augment
from genjax.models import landmarks
from genjax.train import keys, loop
from genjax.train import logging as tlog
from genjax.train import state as tstate

# The keys of one training step: fold_in(step_key, role).
FLIP, COLOUR, MOVE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """flip: mirror half the faces; rotate (degrees), scale, shift (fractions of the side): bounds of
  the uniform random similarity; brightness, contrast, saturation: colour jitter bounds."""

  flip: bool = True
  rotate: float = 0.0
  scale: float = 0.0
  shift: float = 0.0
  brightness: float = 0.1
  contrast: float = 0.1
  saturation: float = 0.1


def moved(key, x, points, rotate: float, scale: float, shift: float):
  """(x, points) under one random similarity per example about the image centre (pixel centres at
  integers): angle ~ U(+-rotate) degrees, zoom 1 + U(+-scale), shift U(+-shift) of the side; the
  image resampled bilinearly (edges repeat), the points mapped forward by the same similarity."""
  b, h, w, _ = x.shape
  k = jax.random.split(key, 4)
  u = lambda kk, m: jax.random.uniform(kk, (b,), minval=-m, maxval=m)
  ang, s = jnp.deg2rad(u(k[0], rotate)), 1.0 + u(k[1], scale)
  ty, tx = u(k[2], shift) * h, u(k[3], shift) * w
  cy, cx = (h - 1) / 2, (w - 1) / 2
  r, c = jnp.meshgrid(jnp.arange(h, dtype=x.dtype) - cy, jnp.arange(w, dtype=x.dtype) - cx,
                      indexing="ij")  # fmt: skip

  def one(img, a, z, dy, dx):  # output pixel -> source coordinates
    src_r = (jnp.cos(a) * r - jnp.sin(a) * c) / z + cy - dy
    src_c = (jnp.sin(a) * r + jnp.cos(a) * c) / z + cx - dx
    return augment.bilinear(img, src_r, src_c)

  # the inverse of that map sends a source point (x, y) to its place in the output
  rs = points[..., 1] - (cy - ty)[:, None]
  cs = points[..., 0] - (cx - tx)[:, None]
  cos, sin, z = jnp.cos(ang)[:, None], jnp.sin(ang)[:, None], s[:, None]
  out = jnp.stack([z * (-sin * rs + cos * cs) + cx, z * (cos * rs + sin * cs) + cy], -1)
  return jax.vmap(one)(x, ang, s, ty, tx), out


def augmented(key, x, points, cfg: AugmentConfig):
  """(x, points) with each example mirrored with probability 1/2 (cfg.flip), moved (`moved`) and
  colour-jittered."""
  if cfg.rotate or cfg.scale or cfg.shift:
    x, points = moved(jax.random.fold_in(key, MOVE), x, points, cfg.rotate, cfg.scale, cfg.shift)
  if cfg.flip:
    fx, fp = landmarks.flip(x, points)
    m = jax.random.bernoulli(jax.random.fold_in(key, FLIP), 0.5, (x.shape[0],))
    x = jnp.where(m[:, None, None, None], fx, x)
    points = jnp.where(m[:, None, None], fp, points)
  colour = augment.AugmentConfig(flip=False, rotate=0.0, scale=0.0, shift=0.0, warp=0.0,
                                 brightness=cfg.brightness, contrast=cfg.contrast,
                                 saturation=cfg.saturation)  # fmt: skip
  return augment.augment(jax.random.fold_in(key, COLOUR), x, colour)[1], points


def loss_fn(model, batch, key, *, aug: AugmentConfig):
  x, points = augmented(key, *batch, aug)
  pred = model(x)
  loss = (((pred - points) / x.shape[1]) ** 2).sum(-1).mean()
  return loss, {"loss": loss, "train_px": landmarks.point_error(pred, points).mean()}


def load_data(config) -> tuple[faces.FaceDataset, faces.FaceDataset]:
  """(train, held-out) aligned faces with landmarks; generated faces for the smoke variant."""
  size = config.model.image_shape[0]
  if config.dataset == "mock":
    ds = faces.mock(96, num_ids=4, size=size, seed=config.seed, landmarks=True)
  elif config.dataset == "lfw":
    ds = faces.load_aligned(config.data_root or None, size=size)
  else:
    raise ValueError(f"config.dataset must be 'lfw' or 'mock', not {config.dataset!r}.")
  tr, te = faces.split_held_out(ds)
  return faces.subset(ds, tr), faces.subset(ds, te)


def build(config, mesh):
  model_cfg = landmarks.LandmarkConfig(**config.model.to_dict())
  aug = AugmentConfig(**config.augment.to_dict())
  init_key = keys.key(config.seed, keys.INIT)
  tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
  graphdef, state = tstate.create(
    lambda: landmarks.LandmarkNet(model_cfg, rngs=nnx.Rngs(params=init_key)), tx, mesh
  )
  return graphdef, state, tstate.make_train_step(graphdef, tx,
                                                 lambda m, b, k: loss_fn(m, b, k, aug=aug))  # fmt: skip


def predict(graphdef, state, x: np.ndarray, chunk: int = 128) -> np.ndarray:
  """[N, 68, 2] landmarks of float crops x [N, S, S, 3] in [0, 1]."""
  fn = tstate.make_eval_fn(graphdef, lambda m, b: m(b))
  return np.concatenate([np.asarray(fn(state, x[i : i + chunk])) for i in range(0, len(x), chunk)])


def evaluate(graphdef, state, train: faces.FaceDataset, test: faces.FaceDataset) -> dict:
  """Held-out normalized landmark error of the net and of the training faces' mean landmarks."""
  ref = jnp.asarray(test.landmarks)
  net = np.asarray(landmarks.normalized_error(jnp.asarray(predict(graphdef, state, test.images())),
                                              ref))  # fmt: skip
  mean = jnp.broadcast_to(jnp.asarray(train.landmarks.mean(0)), ref.shape)
  base = np.asarray(landmarks.normalized_error(mean, ref))
  return {"test_error": float(net.mean()), "test_error_mean_shape": float(base.mean()),
          "test_error_median": float(np.median(net)), "num_train": len(train),
          "num_test": len(test)}  # fmt: skip


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  # Setup and data.
  workdir, mesh, train_key = loop.setup(config, workdir)
  train, test = load_data(config)
  prepare = lambda b: (b[0].astype(jnp.float32) / 255.0, b[1])
  get_batch = batching.batches((train.x, train.landmarks), mesh, seed=config.seed,
                               batch_size=config.batch_size, prepare=prepare)  # fmt: skip

  # Model, resumed from the workdir when it holds a checkpoint, and the loop.
  graphdef, state, train_step = build(config, mesh)
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=config.batch_size,
                                 show={"loss": ".5f", "train_px": ".2f"})  # fmt: skip

  # Held-out landmark error against dlib's, beside the mean-shape baseline.
  results = evaluate(graphdef, state, train, test)
  results.update(step=int(state.step), config=config.to_dict())
  writer.write_scalars(int(state.step), {k: v for k, v in results.items() if isinstance(v, float)})
  tlog.write_json(workdir / "results.json", results)
  writer.close()
  ckpt.close()
  return results
