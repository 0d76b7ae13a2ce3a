"""DCGAN on Fashion-MNIST (28x28x1), four objectives: ns, saturating, wgan_gp, ns_r1 (+ smoke).

Run (train the frozen evaluator classifier once first):
  python scripts/train_gan_evaluator.py --workdir runs/gan/evaluator
  python scripts/train.py --config experiments/gan/configs/dcgan.py:ns --workdir runs/gan/ns-s0 \
    --config.seed=0 --config.evaluator_dir=runs/gan/evaluator
Variants: ns (non-saturating), saturating (original min-max), wgan_gp, ns_r1, smoke (combinable:
"wgan_gp,smoke"). Expected (CPU, 2 cores, 3 seeds): see the table in experiments/gan/README.md;
numbers come from our own classifier and are not comparable with Inception FIDs.
"""

import ml_collections

VARIANTS = ("ns", "saturating", "wgan_gp", "ns_r1", "smoke")


def base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = "fashion_mnist"
  c.train_split, c.test_split = "train", "test"
  c.data_dir = ""  # folder of the official files; "" = $GENJAX_DATA_DIR/fashion_mnist or download
  c.num_devices = ml_collections.config_dict.placeholder(int)  # None: every visible device
  # genjax.kernels' form: auto | cpu | xla; None: $GENJAX_KERNELS, else auto
  c.kernels = ml_collections.config_dict.placeholder(str)
  c.model = ml_collections.ConfigDict(
    dict(image_shape=(28, 28, 1), latent_dim=64, g_widths=(64, 32), d_widths=(32, 64))
  )
  c.loss = ml_collections.ConfigDict(
    dict(d_kind="minimax", g_kind="non_saturating", gp_weight=0.0, r1_gamma=0.0, d_steps=1)
  )
  # DCGAN's Adam (Radford et al. 2016).
  c.optimizer = ml_collections.ConfigDict(
    dict(g_learning_rate=2e-4, d_learning_rate=2e-4, b1=0.5, b2=0.999)
  )
  c.batch_size = 64
  c.num_steps = 2000
  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 1000
  c.eval_samples = 5000
  c.evaluator_dir = ""  # "" = train one into <workdir>/evaluator
  c.evaluator_steps = 1500
  c.progress = True
  return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = base()
  for name in filter(None, (arg or "ns").split(",")):
    if name not in VARIANTS:
      raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    if name == "saturating":
      c.loss.g_kind = "saturating"
    elif name == "wgan_gp":
      # Gulrajani et al. 2017: lambda = 10, Adam(1e-4, 0, 0.9); k = 2 critic steps here (5 in the
      # paper) to fit the CPU budget.
      c.loss.d_kind, c.loss.g_kind, c.loss.gp_weight, c.loss.d_steps = (
        "wasserstein",
        "wasserstein",
        10.0,
        2,
      )
      c.optimizer.update(dict(g_learning_rate=1e-4, d_learning_rate=1e-4, b1=0.0, b2=0.9))
    elif name == "ns_r1":
      c.loss.r1_gamma = 1.0
    elif name == "smoke":
      c.dataset = "mock"
      c.num_steps, c.batch_size, c.eval_samples = 2, 16, 64
      c.log_every, c.sample_every, c.checkpoint_every, c.evaluator_steps = 1, 2, 2, 2
      c.model.update(dict(g_widths=(8, 4), d_widths=(4, 8), latent_dim=8))
      c.progress = False
  return c
