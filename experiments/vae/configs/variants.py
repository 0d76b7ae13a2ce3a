"""Shared base config and the named variants of the VAE experiment.

A config argument is a comma-separated list of variants applied in order, e.g. "beta4",
"latent2,beta1", "gaussian,smoke". "smoke" shrinks any config to 2 steps on small generated data.
"""

import ml_collections

VARIANTS = ("beta0.5", "beta1", "beta4", "warmup", "latent2", "gaussian", "gaussian_learned",
            "smoke")  # fmt: skip


def base(kind: str) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "fashion_mnist"
  c.train_split, c.test_split = "train", "test"
  c.data_dir = ""  # folder of the official files; "" = $GENJAX_DATA_DIR/fashion_mnist or download
  c.on_device = True
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  c.model = ml_collections.ConfigDict(dict(
    kind=kind, image_shape=(28, 28, 1), latent_dim=20, activation="relu",
    hidden=(512,) if kind == "dense" else (32, 64),
    likelihood="bernoulli", x_sigma=0.1, learn_x_sigma=False, x_sigma_min=0.01,
    dtype="float32",  # compute dtype: float32 | bfloat16 (parameters stay float32)
  ))  # fmt: skip
  # Pixel model: Bernoulli decoder on dynamically binarized pixels (a fresh x_b ~ Bernoulli(x) at
  # every step; the test split binarized once with a fixed key), so log p(x) is a probability.
  c.binarize = True
  c.beta = 1.0  # weight of the KL term (the design's lambda); beta = 1 is the true ELBO
  c.warmup_steps = 0  # linear KL warm-up from 0 to beta over this many steps
  c.learning_rate = 1e-3
  c.batch_size = 128
  c.eval_batch_size = 1000
  # 10 epochs / 1 epoch (of 468 full batches) and 10 / 1 batches
  c.num_steps = 4690 if kind == "dense" else 469
  c.log_every = 100
  c.checkpoint_every = 1000
  c.progress = True
  # Importance-weighted NLL on the first iwae_examples test images (0 = the whole split).
  c.iwae_k = 1000
  c.iwae_chunk = 100
  c.iwae_examples = 1000
  c.iwae_batch = 25
  return c


def apply(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  for name in filter(None, (arg or "beta1").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name.startswith("beta"):
      c.beta = float(name[4:])
    elif name == "warmup":
      c.warmup_steps = 1000
    elif name == "latent2":
      c.model.latent_dim = 2
    elif name in ("gaussian", "gaussian_learned"):
      c.model.likelihood, c.binarize = "gaussian", False
      c.model.learn_x_sigma = name == "gaussian_learned"
    elif name == "smoke":
      c.dataset = "mock"
      c.num_steps, c.batch_size, c.eval_batch_size = 2, 16, 64
      c.log_every, c.checkpoint_every = 1, 2
      c.progress = False
      c.iwae_k, c.iwae_chunk, c.iwae_examples, c.iwae_batch = 20, 10, 16, 8
  return c
