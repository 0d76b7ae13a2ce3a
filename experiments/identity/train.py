"""Face-identity encoders with a margin-softmax head on LFW3D, and their verification accuracy.

Identities are split: `num_test_ids` people (never the swap pair) are held out entirely; the net is
trained on the others' images with margin_softmax (CosFace or ArcFace) and evaluated by
verification on pairs of held-out faces: same person iff cos(v_1, v_2) > t, with t chosen on one
half of the pairs and the accuracy reported on the other half (and vice versa, averaged).
No held-out file (`faces.is_held_out`) is trained on: the LFW3D crops of the swap pair's test
photos stay out. With config.photos, the aligned crops of the original LFW photos (training files
only), seen through `genjax.faces.align.identity_view_transform`, join their people's classes, so
that the net also reads faces in the photo pipeline's framing (the swap models' domain).
"""

import dataclasses

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx

from genjax import losses
from genjax.data import batching, faces
from genjax.faces import align, augment
from genjax.models import identity
from genjax.train import keys, loop
from genjax.train import logging as tlog
from genjax.train import state as tstate


@dataclasses.dataclass(frozen=True)
class HeadConfig:
  kind: str = "cosface"
  scale: float = 30.0
  margin: float = 0.35


def loss_fn(model, batch, key, *, head: HeadConfig, aug: augment.AugmentConfig):
  x, y = batch
  _, x = augment.augment(key, x, aug)  # the unwarped view: flip, small affine, colour jitter
  v, _ = model(x)
  w = model.class_weights[...]
  ce = losses.margin_softmax(v, w, y, kind=head.kind, scale=head.scale, margin=head.margin).mean()
  cos = (v / jax.numpy.linalg.norm(v, axis=1, keepdims=True)) @ (
    w / jax.numpy.linalg.norm(w, axis=0)
  )
  acc = (cos.argmax(1) == y).mean()
  return ce, {"loss": ce, "train_acc": acc}


def split(config, ds: faces.FaceDataset):
  """(train, verification test): the test people's images; the others' images that are not held
  out (`faces.is_held_out`), with config.photos the identity views of their photos too."""
  keep = [ds.label(n) for n in config.keep_train if n in ds.names]
  tr, te = faces.split_by_identity(ds.y, num_test_ids=config.num_test_ids, seed=config.split_seed,
                                   keep_train=keep)  # fmt: skip
  tr = tr[~np.isin(tr, faces.split_held_out(ds)[1])]
  if config.get("photos"):
    ds, tr = _with_photos(config, ds, tr)
  classes = np.unique(ds.y[tr])
  remap = np.full(len(ds.names), -1, np.int32)
  remap[classes] = np.arange(len(classes))
  train = faces.FaceDataset(x=ds.x[tr], y=remap[ds.y[tr]], names=tuple(ds.names[c] for c in classes),
                            files=tuple(ds.files[i] for i in tr))  # fmt: skip
  return train, faces.subset(ds, te)


def identity_views(crops: np.ndarray, size: int) -> np.ndarray:
  """uint8 aligned crops [N, s, s, 3] -> the identity nets' framing [N, size, size, 3]."""
  m = align.identity_view_transform(crops.shape[1], size)
  return np.stack([align.warp(c, m, (size, size)) for c in crops])


def _with_photos(config, ds: faces.FaceDataset, tr: np.ndarray):
  """ds with the identity views of the aligned photos of its people appended (labels by name), and
  tr extended by those that are not held out."""
  photos = faces.load_aligned(config.photos_root or None)
  photos = faces.people(photos, [n for n in photos.names if n in ds.names])
  photos = faces.subset(photos, faces.split_held_out(photos)[0])
  x = identity_views(photos.x, ds.x.shape[1])
  y = np.asarray([ds.label(photos.names[k]) for k in photos.y], np.int32)
  joined = faces.FaceDataset(x=np.concatenate([ds.x, x]), y=np.concatenate([ds.y, y]),
                             names=ds.names, files=ds.files + photos.files)  # fmt: skip
  return joined, np.concatenate([tr, len(ds) + np.arange(len(x))])


def photo_identification(config, graphdef, state, names) -> dict:
  """Accuracy of naming the person of each held-out aligned photo (identity view) among the people
  with photos, by the nearest class weight: how well the net tells them apart in the swap models'
  domain, on photos it never trained on."""
  photos = faces.load_aligned(config.photos_root or None)
  photos = faces.subset(photos, faces.split_held_out(photos)[1])
  people = [n for n in photos.names if n in names]
  keep = np.flatnonzero(np.isin(np.asarray(photos.names)[photos.y], people))
  v = embed(graphdef, state, identity_views(photos.x[keep], config.model.image_shape[0]) / 255.0)
  w = np.asarray(state.params["class_weights"][...])[:, [names.index(n) for n in people]]
  guess = np.asarray(people)[(v / np.linalg.norm(v, axis=1, keepdims=True) @ w).argmax(1)]
  truth = np.asarray(photos.names)[photos.y[keep]]
  return {"accuracy": float((guess == truth).mean()), "num_photos": len(keep), "people": people}


def verification_pairs(y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """n same-identity and n different-identity index pairs [2n, 2] and labels [2n] (1 = same)."""
  rng = np.random.default_rng(seed)
  same, diff = [], []
  while len(same) < n:
    i, j = rng.integers(0, len(y), 2)
    if i != j and y[i] == y[j]:
      same.append((i, j))
  while len(diff) < n:
    i, j = rng.integers(0, len(y), 2)
    if y[i] != y[j]:
      diff.append((i, j))
  return np.asarray(same + diff), np.r_[np.ones(n), np.zeros(n)].astype(np.int32)


def verification_accuracy(sim: np.ndarray, same: np.ndarray, seed: int = 0) -> dict:
  """Threshold fitted on one half of the pairs (the best of the midpoints between its sorted
  scores), accuracy on the other (2-fold, averaged)."""
  perm = np.random.default_rng(seed).permutation(len(sim))
  folds, accs, ts = np.array_split(perm, 2), [], []
  for k in range(2):
    fit, test = folds[k], folds[1 - k]
    v = np.unique(sim[fit])
    cands = np.r_[v[0] - 1.0, (v[:-1] + v[1:]) / 2, v[-1] + 1.0]  # midpoints between scores
    t = cands[np.argmax([((sim[fit] > c) == same[fit]).mean() for c in cands])]
    accs.append(float(((sim[test] > t) == same[test]).mean()))
    ts.append(float(t))
  return {"verification_acc": float(np.mean(accs)), "threshold": float(np.mean(ts))}


def embed_fn(graphdef):
  return tstate.make_eval_fn(graphdef, lambda m, x: m(x)[0])


def embed(graphdef, state, x: np.ndarray, chunk: int = 128) -> np.ndarray:
  fn = embed_fn(graphdef)
  return np.concatenate([np.asarray(fn(state, x[i : i + chunk])) for i in range(0, len(x), chunk)])


def build(config, mesh, num_classes: int):
  model_cfg = identity.IdentityConfig(**config.model.to_dict(), num_classes=num_classes)
  head = HeadConfig(**config.head.to_dict())
  aug = augment.AugmentConfig(**config.augment.to_dict())
  init_key = keys.key(config.seed, keys.INIT)
  tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
  graphdef, state = tstate.create(
    lambda: identity.IdentityNet(model_cfg, rngs=nnx.Rngs(params=init_key)), tx, mesh
  )
  step = tstate.make_train_step(graphdef, tx, lambda m, b, k: loss_fn(m, b, k, head=head, aug=aug))
  return graphdef, state, step


def load_data(config) -> faces.FaceDataset:
  if config.dataset == "mock":
    return faces.mock(160, num_ids=8, size=config.model.image_shape[0], seed=config.seed)
  return faces.load(config.data_root or None)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  # Setup and data.
  workdir, mesh, train_key = loop.setup(config, workdir)
  train, test = split(config, load_data(config))
  get_batch = batching.batches((train.images(), train.y), mesh, seed=config.seed,
                               batch_size=config.batch_size)  # fmt: skip

  # Model, resumed from the workdir when it holds a checkpoint, and the loop.
  graphdef, state, train_step = build(config, mesh, len(train.names))
  state, writer, ckpt = loop.run(config, workdir, state, train_step, get_batch, train_key,
                                 images_per_step=config.batch_size, show={"loss": ".3f"})  # fmt: skip

  # Verification on pairs of held-out identities.
  v = embed(graphdef, state, test.images())
  pairs, same = verification_pairs(test.y, config.num_pairs, config.split_seed)
  sim = np.asarray(identity.cosine(v[pairs[:, 0]], v[pairs[:, 1]]))
  results = verification_accuracy(sim, same)
  results.update(step=int(state.step), num_train_ids=len(train.names),
                 num_test_ids=int(len(np.unique(test.y))), num_pairs=2 * config.num_pairs,
                 config=config.to_dict())  # fmt: skip
  if config.get("photos"):
    results["photo_identification"] = photo_identification(config, graphdef, state, train.names)
  writer.write_scalars(int(state.step), {"verification_acc": results["verification_acc"]})
  tlog.write_json(workdir / "results.json", results)
  writer.close()
  ckpt.close()
  return results
