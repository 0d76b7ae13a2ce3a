"""Fashion-MNIST CNN (stages 32-64-128, 2 convs each, batch norm, ReLU) regularized by an autoencoder.

loss = cross-entropy + lambda_rec * BCE(decoder(encoder(x)), x) (+ optional L2 weight penalty).
Run (one seed; variants: ae (lambda_rec=1, default), noae (lambda_rec=0), gelu, softplus, smoke):
  python scripts/train.py --config experiments/cam/configs/classifier.py:ae --workdir runs/cam/ae-s0 --config.seed=0
  python scripts/train.py --config experiments/cam/configs/classifier.py:noae --workdir runs/cam/noae-s0
All seeds and both settings: python scripts/train_classifiers.py --workdir runs/cam --seeds 0,1,2
Length: --config.epochs (default 10 = 4680 steps of 128) or --config.num_steps, which overrides it.
Expected: test accuracy on the 10,000 test images in the README results table (the target is >= 93%;
see experiments/cam/README.md for what this CPU budget reached).
"""

import ml_collections

VARIANTS = ("ae", "noae", "gelu", "softplus", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "fashion_mnist"
  c.train_split, c.test_split = "train", "test"
  c.data_dir = ""  # folder of the official files; "" = $GENJAX_DATA_DIR/fashion_mnist or download
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  c.model = ml_collections.ConfigDict(dict(
    image_shape=(28, 28, 1), num_classes=10, channels=(32, 64, 128), depth=2, activation="relu",
    decoder=True,
  ))  # fmt: skip
  c.lambda_rec = 1.0  # weight of the reconstruction term (0 = plain classifier)
  c.weight_decay = 0.0  # lambda of an optional 1/2 ||W||^2 penalty (biases excluded)
  c.augment = True  # random horizontal flips and +-2 pixel shifts
  c.learning_rate = 3e-3  # peak of a warm-up + cosine schedule (Adam)
  c.warmup_steps = 200
  c.batch_size = 128
  c.eval_batch_size = 1000
  c.epochs = 10.0  # passes over the train split, of its full batches (468 of 128 for Fashion-MNIST)
  c.num_steps = ml_collections.config_dict.placeholder(int)  # None: from epochs; an int overrides
  c.log_every = 100
  c.checkpoint_every = 500
  c.progress = True
  for name in filter(None, (arg or "ae").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name == "noae":
      c.lambda_rec = 0.0
      c.model.decoder = False
    elif name in ("gelu", "softplus"):
      c.model.activation = name
    elif name == "smoke":
      c.dataset = "mock"
      c.model.channels, c.model.depth = (4, 8, 8), 1
      c.num_steps, c.batch_size, c.eval_batch_size, c.warmup_steps = 2, 16, 64, 1
      c.log_every, c.checkpoint_every = 1, 2
      c.progress = False
  return c
