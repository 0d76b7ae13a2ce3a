"""Face-identity encoder with a CosFace head on LFW3D identities (used by the swap models' losses).

Run:
  python scripts/train.py --config experiments/identity/configs/identity.py --workdir runs/identity/loss_net
  python scripts/train.py --config experiments/identity/configs/identity.py:evaluator --workdir runs/identity/evaluator
Variants: default (the identity-loss net of model (c)), evaluator (a second net: other seed,
ArcFace head, other widths; kept for comparison, no longer used to judge swaps: swaps are judged by
dlib, scripts/eval_faceswap.py), smoke (2 steps on small generated faces).
Held-out files (genjax.data.faces.is_held_out) are never trained on; with photos=True the aligned
training photos of the five people of faces/lfw are added to the LFW3D crops.
Writes results.json: verification accuracy on 1000 same and 1000 different pairs of the 30
held-out people (2-fold threshold), and photo identification of their held-out aligned photos
(the nearest class weight of the head among the five people). Expected
(experiments/faceswap/README.md): default, 1500 steps (40 min on 2 CPU cores shared with another
run): verification 64.7%, photo identification 93.7% of 111 held-out photos.
"""

import ml_collections

VARIANTS = ("default", "evaluator", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "lfw3d"
  c.data_root = ""
  c.photos = True  # also the aligned LFW photos of the five people (training files only)
  c.photos_root = ""  # "" = $GENJAX_DATA_DIR/faces/lfw
  c.num_test_ids = 30  # held-out people for verification
  c.split_seed = 0  # the same split for both nets
  c.keep_train = ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld",
                  "Gerhard_Schroeder")  # fmt: skip
  c.num_pairs = 1000  # same and different pairs each
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  c.model = ml_collections.ConfigDict(dict(image_shape=(100, 100, 3), channels=(32, 64, 96, 128),
                                           embed_dim=128))  # fmt: skip
  c.head = ml_collections.ConfigDict(dict(kind="cosface", scale=30.0, margin=0.35))
  c.augment = ml_collections.ConfigDict(dict(
    flip=True, rotate=8.0, scale=0.05, shift=0.04, warp=0.0, warp_grid=5, brightness=0.1,
    contrast=0.1, saturation=0.1,
  ))  # fmt: skip
  c.learning_rate = 2e-3
  c.weight_decay = 5e-4
  c.batch_size = 64
  c.num_steps = 1500
  c.log_every = 25
  c.checkpoint_every = 250
  c.time_limit_minutes = 0.0  # > 0: stop the loop after this long (then checkpoint and evaluate)
  c.progress = True
  for name in filter(None, (arg or "default").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name == "evaluator":
      c.seed = 1
      c.model.channels, c.model.embed_dim = (24, 48, 96, 160), 96
      c.head = ml_collections.ConfigDict(dict(kind="arcface", scale=30.0, margin=0.3))
    elif name == "smoke":
      c.dataset, c.num_test_ids, c.keep_train, c.num_pairs = "mock", 3, (), 20
      c.photos = False
      c.model.image_shape = (32, 32, 3)  # small generated faces: cheap to compile and run
      c.model.channels, c.model.embed_dim = (8, 8), 16
      c.num_steps, c.batch_size, c.log_every, c.checkpoint_every = 2, 16, 1, 2
      c.progress = False
  return c
