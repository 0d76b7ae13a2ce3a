"""Face swap (a): shared encoder, one decoder per identity, on LFW3D faces of two people.

Each step draws a batch of A and a batch of B, augments them (random warp of the input against the
unwarped target, flip, small affine, colour jitter; genjax.data.faces.augment) and trains
    J = sum_{i in A, B} mean_x [ w_mse * MSE(D_i(E(warp(x))), x) + w_dssim * DSSIM(., x) ].
Evaluation on held-out images of A and B: self-swap reconstruction (A->A, B->B) L1 / PSNR / SSIM,
and preview grids A, A->A, A->B / B, B->B, B->A, every swapped tile marked SYNTHETIC.
"""

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from genjax import losses
from genjax.data import faces
from genjax.data import tfds as batching
from genjax.models import faceswap
from genjax.train import checkpoint, loop, sharding
from genjax.train import logging as tlog
from genjax.train import state as tstate


@dataclasses.dataclass(frozen=True)
class LossConfig:
  mse: float = 1.0  # weight of the per-pixel squared error
  dssim: float = 1.0  # weight of (1 - SSIM) / 2


def recon_loss(model, x_in, target, identity: int, cfg: LossConfig):
  x_hat = jax.nn.sigmoid(model(x_in, identity)[0])
  mse, dssim = losses.mse(x_hat, target).mean(), losses.dssim(x_hat, target).mean()
  return cfg.mse * mse + cfg.dssim * dssim, mse, dssim


def loss_fn(model, batch, key, *, cfg: LossConfig, aug: faces.AugmentConfig):
  """batch = (x_A, x_B), faces in [0, 1]; each is warped and reconstructed by its own decoder."""
  terms, loss = {}, 0.0
  for i, (name, x) in enumerate(zip("ab", batch, strict=True)):
    x_in, target = faces.augment(jax.random.fold_in(key, i), x, aug)
    l_i, mse, dssim = recon_loss(model, x_in, target, i, cfg)
    terms.update({f"mse_{name}": mse, f"dssim_{name}": dssim})
    loss = loss + l_i
  return loss, dict(terms, loss=loss)


def self_swap_metrics(x_hat: jax.Array, x: jax.Array) -> dict:
  """Per-example L1, PSNR (dB, peak 1) and SSIM of reconstructions x_hat of x, [B] each."""
  l1 = jnp.abs(x_hat - x).reshape(x.shape[0], -1).mean(1)
  psnr = -10.0 * jnp.log10(losses.mse(x_hat, x))
  return {"l1": l1, "psnr": psnr, "ssim": losses.ssim(x_hat, x)}


def build(config: ml_collections.ConfigDict, mesh):
  model_cfg = faceswap.SwapConfig(**config.model.to_dict())
  loss_cfg = LossConfig(**config.loss.to_dict())
  aug = faces.AugmentConfig(**config.augment.to_dict())
  init_key = jax.random.fold_in(jax.random.key(config.seed), 0)
  tx = optax.adam(config.learning_rate, b1=0.5, b2=0.999)
  graphdef, state = tstate.create(
    lambda: faceswap.SharedEncoderSwap(model_cfg, rngs=nnx.Rngs(params=init_key)), tx, mesh
  )
  step = tstate.make_train_step(
    graphdef, tx, lambda m, b, k: loss_fn(m, b, k, cfg=loss_cfg, aug=aug)
  )
  return graphdef, state, step


def load_pair(config) -> tuple[faces.FaceDataset, faces.FaceDataset, tuple[str, str]]:
  """Train and held-out (by image) faces of the pair; identity 0 is A, 1 is B."""
  if config.dataset == "mock":
    size = config.model.image_shape[0]
    ds, names = faces.mock(96, num_ids=2, size=size, seed=config.seed), ("person_0", "person_1")
  else:
    ds, names = faces.load(config.data_root or None), (config.identity_a, config.identity_b)
  ids = [ds.label(n) for n in names]
  keep = np.flatnonzero(np.isin(ds.y, ids))
  pair = faces.FaceDataset(x=ds.x[keep], y=(ds.y[keep] == ids[1]).astype(np.int32), names=names)
  tr, te = faces.split_by_image(
    pair.y, test_fraction=config.test_fraction, seed=config.seed, names=names
  )
  return faces.subset(pair, tr), faces.subset(pair, te), names


def _batches(train: faces.FaceDataset, mesh, *, seed: int, batch_size: int):
  """get(step) -> (x_A, x_B) sharded batches; the order is a function of (seed, step) only."""
  xs = [sharding.replicate(train.images(train.y == i), mesh) for i in (0, 1)]
  take = jax.jit(lambda a, i: a[i], out_shardings=sharding.data_sharding(mesh))
  sizes = [int((train.y == i).sum()) for i in (0, 1)]
  return lambda s: tuple(
    take(x, batching.batch_indices(seed + 7919 * i, s, n, batch_size))
    for i, (x, n) in enumerate(zip(xs, sizes, strict=True))
  )


def _swap_metrics(graphdef, state, x, identity: int, mesh, chunk: int = 64):
  fn = _metrics_fn(graphdef, identity)
  parts = [fn(state, sharding.shard_batch(x[i : i + chunk], mesh)) for i in range(0, len(x), chunk)]
  return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def _metrics_fn(graphdef, identity: int):
  return tstate.make_eval_fn(graphdef, lambda m, x: self_swap_metrics(m.swap(x, identity), x))


def swap_fn(graphdef, identity: int):
  """jit(state, x) -> the faces x redrawn by decoder `identity`, pixels in [0, 1]."""
  return tstate.make_eval_fn(graphdef, lambda m, x: m.swap(x, identity))


def preview(path: Path, graphdef, state, test: faces.FaceDataset, n: int = 8) -> Path:
  """Rows: A, A->A, A->B, B, B->B, B->A (n faces each); generated tiles are marked SYNTHETIC."""
  rows, fns = [], [swap_fn(graphdef, j) for j in (0, 1)]
  for i in (0, 1):
    x = test.images(test.y == i)[:n]
    own, other = (np.asarray(fns[j](state, x)) for j in (i, 1 - i))
    rows += [x, np.stack([faces.mark_synthetic(v) for v in own]),
             np.stack([faces.mark_synthetic(v) for v in other])]  # fmt: skip
  grid = tlog.image_grid(np.concatenate(rows), ncol=len(rows[0]))
  return faces.save_synthetic_png(path, grid)


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
    out = _swap_metrics(graphdef, state, x[: len(x) - len(x) % mesh.size], i, mesh)
    results.update({f"self_{name}_{k}": float(np.mean(v)) for k, v in out.items()})
  results.update(step=int(state.step), identities=list(names), num_train=len(train),
                 num_test=len(test), config=config.to_dict())  # fmt: skip
  writer.write_scalars(int(state.step), {k: v for k, v in results.items() if k.startswith("self")})
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  preview(workdir / "preview.png", graphdef, state, test)
  writer.close()
  ckpt.close()
  return results


def restore(workdir: str | Path):
  """(graphdef, state, config) of a finished run, from its results.json and latest checkpoint."""
  workdir = Path(workdir)
  config = ml_collections.ConfigDict(json.loads((workdir / "results.json").read_text())["config"])
  config.model.image_shape = tuple(config.model.image_shape)
  for k in ("channels", "decoder_channels"):
    config.model[k] = tuple(config.model[k])
  mesh = sharding.make_mesh(1)
  graphdef, state, _ = build(config, mesh)
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=0)
  state = ckpt.restore(state)
  ckpt.close()
  return graphdef, state, config


def swap_photos(workdir, photos: list[Path], out_dir: Path, *, identity: int,
                box: faces.FaceBox = faces.LFW_FACE_BOX) -> list[Path]:  # fmt: skip
  """Whole photos or video frames, one by one: crop the face box, redraw it as `identity`, paste it
  back (feathered mask, LAB colour match) and save it as a marked PNG (visible mark + metadata)."""
  from PIL import Image

  graphdef, state, _ = restore(workdir)
  fn = swap_fn(graphdef, identity)
  out_dir.mkdir(parents=True, exist_ok=True)
  written = []
  for path in photos:
    with Image.open(path) as im:
      photo = np.asarray(im.convert("RGB"), np.float32) / 255.0
    face = np.asarray(fn(state, faces.crop_face(photo, box)[None]))[0]
    result = faces.paste_back(photo, face, box)
    written.append(faces.save_synthetic_png(out_dir / f"{Path(path).stem}_swapped.png", result))
  return written
