"""Shared base config and the named variants of the autoencoder experiment.

A config argument is a comma-separated list of variants applied in order, e.g. "l2", "contractive",
"sparse,smoke". "smoke" shrinks any config to 2 steps on small generated data (used by the tests).
"""

import ml_collections

VARIANTS = ("plain", "l1", "l2", "frobenius", "sparse", "denoising", "contractive", "mse", "smoke")


def base(kind: str) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "fashion_mnist"
  c.train_split, c.test_split = "train", "test"
  c.data_dir = ""  # folder of the official files; "" = $GENJAX_DATA_DIR/fashion_mnist or download
  c.on_device = True  # Fashion-MNIST (188 MB as float32) stays on the device whole
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  c.model = ml_collections.ConfigDict(dict(
    kind=kind, image_shape=(28, 28, 1), latent_dim=32, activation="relu", code_activation="linear",
    hidden=(512, 256) if kind == "dense" else (32, 64),
    dtype="float32",  # compute dtype: float32 | bfloat16 (parameters stay float32)
  ))  # fmt: skip
  c.loss = ml_collections.ConfigDict(dict(
    reconstruction="bce", penalty="none", weight_decay=0.0, exclude_bias=True, sparsity=0.0,
    contractive=0.0, denoise="none", noise_level=0.0,
  ))  # fmt: skip
  c.learning_rate = 1e-3
  c.batch_size = 128
  c.eval_batch_size = 1000
  # 10 / 5 epochs (of 468 full batches) and 10 / 5 batches
  c.num_steps = 4690 if kind == "dense" else 2345
  c.log_every = 100
  c.checkpoint_every = 1000
  c.progress = True
  return c


def apply(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  for name in filter(None, (arg or "plain").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name in ("l1", "l2", "frobenius"):
      c.loss.penalty = name
      c.loss.weight_decay = {"l1": 1e-5, "l2": 1e-4, "frobenius": 5e-5}[name]
    elif name == "sparse":
      c.model.code_activation = "relu"
      c.loss.sparsity = 1e-3
    elif name == "denoising":
      c.loss.denoise, c.loss.noise_level = "gaussian", 0.3
    elif name == "contractive":
      c.model.code_activation = "sigmoid"
      c.loss.contractive = 0.1
    elif name == "mse":
      c.loss.reconstruction = "mse"
    elif name == "smoke":
      c.dataset = "mock"
      c.num_steps, c.batch_size, c.eval_batch_size = 2, 16, 64
      c.log_every, c.checkpoint_every = 1, 2
      c.progress = False
  return c
