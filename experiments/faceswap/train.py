"""Face swap (a): shared encoder, one decoder per identity, on aligned faces of two people.

Faces: the original LFW photos of the pair, each face found and aligned by genjax.faces
(`faces.load_aligned`); the held-out photos (`faces.is_held_out`) are never trained on. Each step
draws a batch of A and a batch of B, augments them (random warp of the input against the unwarped
target, flip, small affine, colour jitter; genjax.faces.augment) and trains
    J = sum_{i in A, B} mean_x [ w_mse * MSE(y', x) + w_dssim * DSSIM(y', x) ],
    y' = x + w (D_i(E(warp(x))) - x),  w = 1 on the face (hull of its landmarks), `background` off it,
so the decoders spend their capacity on the region a swap pastes back.
Evaluation on held-out images of A and B: self-swap reconstruction (A->A, B->B) L1 / PSNR / SSIM,
and preview grids A, A->A, A->B / B, B->B, B->A, every swapped tile marked SYNTHETIC.
"""

import dataclasses
from pathlib import Path

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx

from genjax import losses
from genjax.data import batching, faces
from genjax.evaluate import reconstruction
from genjax.faces import augment, mark
from genjax.models import faceswap
from genjax.train import checkpoint, keys, loop, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate


@dataclasses.dataclass(frozen=True)
class LossConfig:
  mse: float = 1.0  # weight of the per-pixel squared error
  dssim: float = 1.0  # weight of (1 - SSIM) / 2
  background: float = 1.0  # weight of the error off the face region (1: the whole crop counts)


def recon_loss(model, x_in, target, weight, identity: int, cfg: LossConfig):
  """weight [B, H, W] in [0, 1]: the face region; the error outside it is scaled by background."""
  x_hat = jax.nn.sigmoid(model(x_in, identity)[0])
  y = losses.face_weighted(x_hat, target, weight, cfg.background)
  mse, dssim = losses.mse(y, target).mean(), losses.dssim(y, target).mean()
  return cfg.mse * mse + cfg.dssim * dssim, mse, dssim


def loss_fn(model, batch, key, *, cfg: LossConfig, aug: augment.AugmentConfig):
  """batch = ((x_A, m_A), (x_B, m_B)): faces in [0, 1] and their face regions; each is warped and
  reconstructed by its own decoder."""
  terms, loss = {}, 0.0
  for i, (name, (x, m)) in enumerate(zip("ab", batch, strict=True)):
    x_in, target, weight = augment.augment(jax.random.fold_in(key, i), x, aug, mask=m)
    l_i, mse, dssim = recon_loss(model, x_in, target, weight, i, cfg)
    terms.update({f"mse_{name}": mse, f"dssim_{name}": dssim})
    loss = loss + l_i
  return loss, dict(terms, loss=loss)


def build(config: ml_collections.ConfigDict, mesh):
  model_cfg = faceswap.SwapConfig(**config.model.to_dict())
  loss_cfg = LossConfig(**config.loss.to_dict())
  aug = augment.AugmentConfig(**config.augment.to_dict())
  init_key = keys.key(config.seed, keys.INIT)
  tx = optax.adam(config.learning_rate, b1=0.5, b2=0.999)
  graphdef, state = tstate.create(
    lambda: faceswap.SharedEncoderSwap(model_cfg, rngs=nnx.Rngs(params=init_key)), tx, mesh
  )
  step = tstate.make_train_step(
    graphdef, tx, lambda m, b, k: loss_fn(m, b, k, cfg=loss_cfg, aug=aug)
  )
  return graphdef, state, step


def load_pair(config) -> tuple[faces.FaceDataset, faces.FaceDataset, tuple[str, str]]:
  """Train and held-out (`faces.is_held_out`) aligned faces of the pair; identity 0 is A, 1 is B."""
  if config.dataset == "mock":
    size = config.model.image_shape[0]
    ds, names = faces.mock(96, num_ids=2, size=size, seed=config.seed), ("person_0", "person_1")
  else:
    ds = faces.load_aligned(config.data_root or None, size=config.model.image_shape[0])
    names = (config.identity_a, config.identity_b)
  pair = faces.people(ds, names)
  tr, te = faces.split_held_out(pair)
  return faces.subset(pair, tr), faces.subset(pair, te), names


# Identity i draws its batches in the order of seed + ORDER_STRIDE * i, so A's and B's orders differ.
ORDER_STRIDE = 7919


def _batches(train: faces.FaceDataset, mesh, *, seed: int, batch_size: int):
  """get(step) -> ((x_A, m_A), (x_B, m_B)) sharded batches of faces and face regions; the order is
  a function of (seed, step) only."""
  regions = faces.face_regions(train).astype(np.float32)
  gets = [batching.batches((train.images(train.y == i), regions[train.y == i]), mesh,
                           seed=seed + ORDER_STRIDE * i, batch_size=batch_size)
          for i in (0, 1)]  # fmt: skip
  return lambda s: tuple(get(s) for get in gets)


def _swap_metrics(graphdef, state, x, identity: int, mesh, chunk: int = 64):
  """Per-image metrics of all of x; each chunk is padded (last image repeated) to split evenly."""
  fn = _metrics_fn(graphdef, identity)
  parts = []
  for i in range(0, len(x), chunk):
    part = x[i : i + chunk]
    pad = -len(part) % mesh.size
    out = fn(state, sharding.shard_batch(np.concatenate([part, part[-1:].repeat(pad, 0)]), mesh))
    parts.append({k: np.asarray(v)[: len(part)] for k, v in out.items()})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _metrics_fn(graphdef, identity: int):
  return tstate.make_eval_fn(graphdef, lambda m, x: reconstruction.metrics(m.swap(x, identity), x))


def swap_fn(graphdef, identity: int):
  """jit(state, x) -> the faces x redrawn by decoder `identity`, pixels in [0, 1]."""
  return tstate.make_eval_fn(graphdef, lambda m, x: m.swap(x, identity))


def preview(path: Path, graphdef, state, test: faces.FaceDataset, n: int = 8) -> Path:
  """Rows: A, A->A, A->B, B, B->B, B->A (n faces each); generated tiles are marked SYNTHETIC."""
  rows, fns = [], [swap_fn(graphdef, j) for j in (0, 1)]
  for i in (0, 1):
    x = test.images(test.y == i)[:n]
    own, other = (np.asarray(fns[j](state, x)) for j in (i, 1 - i))
    rows += [x, np.stack([mark.mark_synthetic(v) for v in own]),
             np.stack([mark.mark_synthetic(v) for v in other])]  # fmt: skip
  grid = tlog.image_grid(np.concatenate(rows), ncol=len(rows[0]))
  return mark.save_synthetic_png(path, grid)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.num_steps steps (resuming from workdir), then writes results.json and previews."""
  # Setup.
  workdir, mesh, train_key = loop.setup(config, workdir)

  # Data.
  train, test, names = load_pair(config)
  get_batch = _batches(train, mesh, seed=config.seed, batch_size=config.batch_size)

  # Model, resumed from the workdir when it holds a checkpoint, and the loop.
  graphdef, state, train_step = build(config, mesh)
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=2 * config.batch_size)  # fmt: skip

  # Evaluate on the held-out images, write results and previews.
  results = {}
  for i, name in enumerate("ab"):
    x = test.images(test.y == i)
    out = _swap_metrics(graphdef, state, x, i, mesh)
    results.update({f"self_{name}_{k}": float(np.mean(v)) for k, v in out.items()})
  results.update(step=int(state.step), identities=list(names), num_train=len(train),
                 num_test=len(test), config=config.to_dict())  # fmt: skip
  writer.write_scalars(int(state.step), {k: v for k, v in results.items() if k.startswith("self")})
  tlog.write_json(workdir / "results.json", results)
  preview(workdir / "preview.png", graphdef, state, test)
  writer.close()
  ckpt.close()
  return results


def restore(workdir: str | Path):
  """(graphdef, state, config) of a run, from its config.json and latest checkpoint."""
  config = checkpoint.run_config(workdir)
  graphdef, state, _ = build(config, sharding.make_mesh(1))
  return graphdef, checkpoint.restore_latest(workdir, state), config


def face_swapper(workdir: str | Path, source: str):
  """(swap_faces, crop size) for genjax.faces.swap: aligned crops [B, s, s, 3] in [0, 1] -> the same
  faces redrawn by the decoder of `source` (one of the pair's names, or "0" / "1")."""
  graphdef, state, config = restore(workdir)
  names = (config.identity_a, config.identity_b)
  if source not in names and source not in ("0", "1"):
    raise ValueError(f"model (a) draws {names[0]} (0) or {names[1]} (1), not {source!r}.")
  fn = swap_fn(graphdef, names.index(source) if source in names else int(source))
  return (
    lambda crops: np.asarray(fn(state, np.asarray(crops, np.float32)))
  ), config.model.image_shape[0]
