"""Landmark regressor on the aligned LFW photos: dlib's 68 landmarks as labels, for loss.landmarks
of the face swap (c) (experiments/simswap, variant `landmarks`).

Run:
  python scripts/train.py --config experiments/landmarks/configs/landmarks.py --workdir runs/landmarks/heat
Trained on the aligned crops of the LFW photos that are not held out (genjax.faces.is_held_out:
the held-out photos the swaps are judged on stay out), mirrored at random (the points relabelled
by genjax.models.landmarks.FLIP_68), moved by a random similarity (the points with it) and
colour-jittered. Writes results.json: the mean point error
over the inter-ocular distance against dlib on the held-out crops, beside the error of always
answering the training faces' mean landmarks (a net that reads no pose or expression).
Expected (experiments/landmarks/README.md): about 17 min on 2 CPU cores; held-out error 0.036 of
the eye distance (median 0.031) against 0.087 for the mean shape; with --config.model.head=linear
and 1500 steps 0.086.
Variants: default, smoke (a few steps on generated faces with drawn landmarks).
"""

import ml_collections

VARIANTS = ("default", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "lfw"  # aligned crops of the original photos, or "mock": generated faces for tests
  c.data_root = ""  # "" = $GENJAX_DATA_DIR/faces/lfw (or ../shared/data/faces/lfw)
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  # head: "heatmap" (integral regression over S/4 logit maps) or "linear" (the first net's head)
  c.model = ml_collections.ConfigDict(dict(image_shape=(100, 100, 3), channels=(16, 32, 64, 96),
                                           head="heatmap"))  # fmt: skip
  c.augment = ml_collections.ConfigDict(dict(flip=True, rotate=10.0, scale=0.08, shift=0.06,
                                             brightness=0.1, contrast=0.1, saturation=0.1))  # fmt: skip
  c.learning_rate = 1e-3
  c.weight_decay = 1e-4
  c.batch_size = 32
  c.num_steps = 3000
  c.log_every = 50
  c.checkpoint_every = 500
  c.time_limit_minutes = 0.0  # > 0: stop the loop after this long (then checkpoint and evaluate)
  c.progress = True
  for name in filter(None, (arg or "default").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name == "smoke":
      c.dataset = "mock"
      c.model.image_shape, c.model.channels = (32, 32, 3), (8, 8, 8)
      c.num_steps, c.batch_size, c.log_every, c.checkpoint_every = 4, 8, 1, 2
      c.progress = False
  return c
