"""Face swap (a): shared encoder, one decoder per identity, George_W_Bush <-> Colin_Powell.

Run:
  python scripts/train.py --config experiments/faceswap/configs/shared_encoder.py --workdir runs/faceswap/a
Variants (comma-separated): default, smoke (2 steps on small generated faces).
Data: $GENJAX_DATA_DIR/faces/lfw (the original LFW photos), each face found by dlib and aligned to
100x100x3 (genjax.data.faces.load_aligned; needs the `faces` extra); the held-out photos
(faces.is_held_out: 47 of George_W_Bush, 25 of Colin_Powell) are never trained on.
Writes results.json (held-out self-swap L1 / PSNR / SSIM over the whole crop) and preview.png.
Then, judged by dlib: python scripts/eval_faceswap.py --a runs/faceswap/a; on a photo or video:
  python scripts/swap.py --model a --workdir runs/faceswap/a --input IN --out OUT --source Colin_Powell
Expected (experiments/faceswap/README.md, Results): about 1.46 s per step on 2 CPU cores; at step
2475 (--config.num_steps=2475) 67.4% (Bush -> Powell) and 68.0% (Powell -> Bush) of held-out swaps
match the source under dlib, landmark error 0.041 (copy target 0, paste source 0.091).
"""

import ml_collections

VARIANTS = ("default", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "lfw"  # aligned crops of the original photos, or "mock": generated faces for tests
  c.data_root = ""  # "" = $GENJAX_DATA_DIR/faces/lfw (or ../shared/data/faces/lfw)
  c.identity_a, c.identity_b = "George_W_Bush", "Colin_Powell"
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  c.model = ml_collections.ConfigDict(dict(
    image_shape=(100, 100, 3), channels=(32, 64, 128), latent_dim=256, decoder_channels=(128, 64),
    num_identities=2,
  ))  # fmt: skip
  c.loss = ml_collections.ConfigDict(dict(mse=1.0, dssim=1.0, background=0.2))
  c.augment = ml_collections.ConfigDict(dict(
    flip=True, rotate=10.0, scale=0.05, shift=0.05, warp=0.03, warp_grid=5, brightness=0.1,
    contrast=0.1, saturation=0.1,
  ))  # fmt: skip
  c.learning_rate = 5e-4
  c.batch_size = 16  # per identity
  c.num_steps = 4000
  c.log_every = 50
  c.checkpoint_every = 1000
  c.time_limit_minutes = 0.0  # > 0: stop the loop after this long (then checkpoint and evaluate)
  c.progress = True
  for name in filter(None, (arg or "default").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name == "smoke":
      c.dataset = "mock"
      c.model.image_shape = (32, 32, 3)  # small generated faces: cheap to compile and run
      c.model.channels, c.model.latent_dim, c.model.decoder_channels = (8, 8), 16, (8, 8)
      c.num_steps, c.batch_size, c.log_every, c.checkpoint_every = 2, 8, 1, 2
      c.progress = False
  return c
