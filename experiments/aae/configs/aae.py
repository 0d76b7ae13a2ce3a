"""Face swap (b): adversarial autoencoder on the five people with photos, Gaussian prior, latent mixing.

Run:
  python scripts/train.py --config experiments/aae/configs/aae.py --workdir runs/faceswap/b
Variants (comma-separated): default, gp (WGAN-GP on the latent discriminator), smoke (2 steps on
generated faces).
Data: $GENJAX_DATA_DIR/faces/lfw, the faces of the original photos found and aligned
(genjax.data.faces.load_aligned; the `faces` extra); held-out photos (faces.is_held_out) never
trained on.
Writes results.json (self reconstruction L1 / PSNR / SSIM, identity accuracy of the head on h_id,
code mean / std against the prior's 0 / 1, the latent discriminator's accuracy, 0.5 = fooled) and
preview.png (faces, reconstructions, swaps by mixing [h_A,id | h_B,rest] both ways, faces from prior
samples, a slerp path). Expected (experiments/faceswap/README.md, Results): at step 1150 (16 min
on 2 CPU cores, --config.num_steps=1150) held-out self-swap L1 0.097, PSNR 17.1 dB, SSIM 0.59 over
the whole crop (the background counts 0.2 in training), identity head 98.2% of 111 held-out photos,
code std 0.99 and mean |mean| 0.32 per entry, latent discriminator accuracy 90%; under dlib
(scripts/eval_faceswap.py) 6.5% / 0.0% of held-out swaps match the source: blurred faces, little
identity moved at that point.
"""

import ml_collections

VARIANTS = ("default", "gp", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "lfw"  # aligned crops of the original photos, or "mock": generated faces for tests
  c.data_root = ""  # "" = $GENJAX_DATA_DIR/faces/lfw (or ../shared/data/faces/lfw)
  c.identity_a, c.identity_b = "George_W_Bush", "Colin_Powell"  # the pair of the previews
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  c.model = ml_collections.ConfigDict(dict(
    image_shape=(100, 100, 3), channels=(32, 64, 128), latent_dim=128, identity_dim=32,
    decoder_channels=(64, 32), disc_hidden=(256, 256),
  ))  # fmt: skip
  c.loss = ml_collections.ConfigDict(dict(
    mse=1.0, dssim=1.0, adversarial=0.01, identity=0.1, d_kind="minimax", gp_weight=0.0,
    prior_std=1.0, background=0.2,
  ))  # fmt: skip
  c.augment = ml_collections.ConfigDict(dict(
    flip=True, rotate=10.0, scale=0.05, shift=0.05, warp=0.03, warp_grid=5, brightness=0.1,
    contrast=0.1, saturation=0.1,
  ))  # fmt: skip
  c.learning_rate = 5e-4
  c.d_learning_rate = 2e-4
  c.batch_size = 32
  c.num_steps = 3000
  c.log_every = 50
  c.checkpoint_every = 500
  c.time_limit_minutes = 0.0  # > 0: stop the loop after this long (then checkpoint and evaluate)
  c.progress = True
  for name in filter(None, (arg or "default").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name == "gp":
      c.loss.d_kind, c.loss.gp_weight = "wasserstein", 10.0
    elif name == "smoke":
      c.dataset = "mock"
      c.model.image_shape = (32, 32, 3)  # small generated faces: cheap to compile and run
      c.model.channels, c.model.latent_dim, c.model.identity_dim = (8, 8), 16, 4
      c.model.decoder_channels, c.model.disc_hidden = (8, 8), (16,)
      c.num_steps, c.batch_size, c.log_every, c.checkpoint_every = 2, 8, 1, 2
      c.progress = False
  return c
