"""Face-swap training throughput at 100x100x3: genjax against the same models in PyTorch, side by side.

  python scripts/bench_faceswap.py [--model a,c] [--batch 16] [--seconds 30] [--torch_device cpu]
                                   [--repeats 1] [--devices 1]

Each implementation runs in its own process (thread pools and peak memory do not mix). Both sides
train on one fixed batch of random [0, 1] faces that stands for an already augmented batch (the
augmentation of genjax.data.faces is left out of both, so the numbers compare the update steps):
  (a) shared encoder, one decoder per identity (experiments/faceswap): one Adam step on
      sum_{i in A, B} [MSE + DSSIM](sigmoid(D_i(E(x_i))), x_i), batch faces per identity;
  (c) identity-injection generator (experiments/simswap): one discriminator step (fakes under
      no-grad; hinge on two PatchGAN scales + WGAN-GP, whose input gradient is differentiated
      again) then one generator step (hinge + identity loss through the frozen identity net +
      masked L1 reconstruction + weak feature matching), each with its own Adam state.
The genjax side is the library's own loss and step code (experiments.faceswap.train.recon_loss,
experiments.simswap.train.d_step / g_step), jitted. The PyTorch models are loaded with genjax's
initial weights and the forward passes are compared before timing (the "max |torch - genjax|"
lines), so both sides compute the same function; PyTorch runs eagerly, as its training loops do.
genjax runs once per --devices entry: "genjax" on one XLA device, "genjax-Ndev" with each batch split
over N XLA CPU devices (data parallel; genjax.bench.host_devices).
Needs: pip install torch==2.13.0 (CPU wheel; a CUDA build for --torch_device cuda).
"""

import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genjax import bench  # noqa: E402

SHAPE = (100, 100, 3)


# --- genjax -----------------------------------------------------------------------------------


def _swap_config():
  from experiments.faceswap.configs import shared_encoder
  from genjax.models import faceswap

  return faceswap.SwapConfig(**shared_encoder.get_config().model.to_dict())


def _simswap_configs():
  from experiments.identity.configs import identity as id_configs
  from experiments.simswap.configs import simswap as ss_configs
  from genjax.models import identity, simswap

  id_cfg = identity.IdentityConfig(**id_configs.get_config().model.to_dict())
  return simswap.SimSwapConfig(**ss_configs.get_config().model.to_dict()), id_cfg


def _faces(batch: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).uniform(size=(batch, *SHAPE)).astype(np.float32)


def jax_swap_model():
  from flax import nnx

  from genjax import nn
  from genjax.models import faceswap

  return nn.build(lambda: faceswap.SharedEncoderSwap(_swap_config(), rngs=nnx.Rngs(0)))


def run_jax_a(batch: int, seconds: float, devices: int = 1) -> dict:
  import jax
  import optax

  from experiments.faceswap import train as swap_train
  from experiments.faceswap.configs import shared_encoder
  from genjax.train import sharding
  from genjax.train import state as tstate

  config = shared_encoder.get_config()
  cfg = swap_train.LossConfig(**config.loss.to_dict())
  tx = optax.adam(config.learning_rate, b1=0.5, b2=0.999)
  mesh = sharding.make_mesh(devices)
  graphdef, state = tstate.create(jax_swap_model, tx, mesh)

  def loss_fn(model, xs, key):
    del key
    face = jax.numpy.ones(xs[0].shape[:3])  # the whole crop counts, as on the PyTorch side
    loss = sum(swap_train.recon_loss(model, x, x, face, i, cfg)[0] for i, x in enumerate(xs))
    return loss, {"loss": loss}

  step_fn = tstate.make_train_step(graphdef, tx, loss_fn)
  xs = sharding.shard_batch((_faces(batch, 0), _faces(batch, 1)), mesh)
  key, box = jax.random.key(0), [state]

  def step():
    box[0], metrics = step_fn(box[0], xs, key)
    metrics["loss"].block_until_ready()

  return bench.timeit(step, seconds, 2 * batch) | {"backend": jax.default_backend()}


def jax_simswap_models():
  from flax import nnx

  from genjax import nn
  from genjax.models import identity, simswap

  cfg, id_cfg = _simswap_configs()
  g = nn.build(lambda: simswap.Generator(cfg, rngs=nnx.Rngs(0)))
  d = nn.build(lambda: simswap.MultiScaleDiscriminator(cfg, rngs=nnx.Rngs(1)))
  f = nn.build(lambda: identity.IdentityNet(id_cfg, rngs=nnx.Rngs(2)))
  return g, d, f


def run_jax_c(batch: int, seconds: float, devices: int = 1) -> dict:
  import jax
  import optax
  from flax import nnx

  from experiments.simswap import train as ss_train
  from experiments.simswap.configs import simswap as ss_configs
  from genjax.train import sharding
  from genjax.train import state as tstate

  config = ss_configs.get_config()
  cfg = ss_train.LossConfig(**config.loss.to_dict())
  g_tx = optax.adam(config.learning_rate, b1=0.0, b2=0.99)
  d_tx = optax.adam(config.d_learning_rate, b1=0.0, b2=0.99)
  mesh = sharding.make_mesh(devices)
  _, _, f = jax_simswap_models()
  f_def, f_params, f_rest = nnx.split(f, nnx.Param, ...)
  model_cfg, _ = _simswap_configs()
  defs, state = ss_train.create(model_cfg, g_tx, d_tx, jax.random.key(0), mesh, f_def,
                                (f_params, f_rest))  # fmt: skip

  @tstate.jit_step
  def step_fn(state, x_t, key):  # experiments.simswap.train.make_train_step minus augmentation
    x_s, same = ss_train.make_pairs(x_t, cfg.same_fraction)
    v_s = jax.lax.stop_gradient(ss_train.identity_vector(defs, state, x_s))
    fake = jax.lax.stop_gradient(jax.nn.sigmoid(ss_train.generator(defs, state)(x_t, v_s)))
    key = jax.random.fold_in(key, state.step)
    state, d_terms = ss_train.d_step(state, x_t, fake, key, defs=defs, d_tx=d_tx, cfg=cfg)
    state, g_terms = ss_train.g_step(state, x_t, v_s, same, key, defs=defs, g_tx=g_tx, cfg=cfg)
    return state.replace(step=state.step + 1), d_terms["d_loss"] + g_terms["g_loss"]

  x = sharding.shard_batch(_faces(batch), mesh)
  key, box = jax.random.key(1), [state]

  def step():
    box[0], loss = step_fn(box[0], x, key)
    loss.block_until_ready()

  return bench.timeit(step, seconds, batch) | {"backend": jax.default_backend()}


# --- PyTorch ----------------------------------------------------------------------------------


def _torch_modules():
  """The PyTorch building blocks, defined after the import (torch is only needed here)."""
  import torch
  import torch.nn.functional as F
  from torch import nn

  class SameConv(nn.Conv2d):
    """Conv2d with XLA's SAME padding (asymmetric when the total is odd, low side first)."""

    def forward(self, x):
      pads = []
      for n, k, s in zip(x.shape[2:], self.kernel_size, self.stride, strict=True):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
      (ht, hb), (wl, wr) = pads
      if ht == hb and wl == wr:
        return F.conv2d(x, self.weight, self.bias, self.stride, (ht, wl))
      return F.conv2d(F.pad(x, (wl, wr, ht, hb)), self.weight, self.bias, self.stride)

  def up(a, b):
    return nn.ConvTranspose2d(a, b, 4, 2, 1)

  class SwapModel(nn.Module):  # genjax.models.faceswap.SharedEncoderSwap
    def __init__(self, cfg):
      super().__init__()
      h, w, c = cfg.image_shape
      widths = (c, *cfg.channels)
      self.convs = nn.ModuleList(
        [SameConv(a, b, 3, 2) for a, b in zip(widths[:-1], widths[1:], strict=True)]
      )
      for _ in cfg.channels:
        h, w = math.ceil(h / 2), math.ceil(w / 2)
      self.code_shape = (h, w, widths[-1])  # the encoder's last map, flattened into to_z
      self.to_z = nn.Linear(h * w * widths[-1], cfg.latent_dim)
      c0, c1 = cfg.decoder_channels
      self.bottom = (c0, cfg.image_shape[0] // 4, cfg.image_shape[1] // 4)
      self.decoders = nn.ModuleList([nn.ModuleDict(dict(
        from_z=nn.Linear(cfg.latent_dim, math.prod(self.bottom)), refine=SameConv(c0, c0, 3, 1),
        up1=up(c0, c1), up2=up(c1, c1), to_rgb=SameConv(c1, c, 3, 1),
      )) for _ in range(cfg.num_identities)])  # fmt: skip

    def forward(self, x, i):  # x [B, 3, H, W] -> logits of decoder i
      act = lambda t: F.leaky_relu(t, 0.1)
      h = x
      for conv in self.convs:
        h = act(conv(h))
      d = self.decoders[i]
      h = act(d["from_z"](self.to_z(h.flatten(1)))).view(-1, *self.bottom)
      h = act(d["refine"](h))
      return d["to_rgb"](act(d["up2"](act(d["up1"](h)))))

  class AdaIN(nn.Module):  # genjax.nn.AdaIN
    def __init__(self, features, style_dim):
      super().__init__()
      self.proj = nn.Linear(style_dim, 2 * features)

    def forward(self, x, v):
      gamma, beta = self.proj(v).chunk(2, dim=1)
      return (1 + gamma)[:, :, None, None] * F.instance_norm(x, eps=1e-5) + beta[:, :, None, None]

  class IDBlock(nn.Module):
    def __init__(self, c, id_dim):
      super().__init__()
      self.conv1, self.conv2 = SameConv(c, c, 3, 1), SameConv(c, c, 3, 1)
      self.norm1, self.norm2 = AdaIN(c, id_dim), AdaIN(c, id_dim)

    def forward(self, x, v):
      return x + self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x), v))), v)

  act2 = lambda t: F.leaky_relu(t, 0.2)

  class Generator(nn.Module):  # genjax.models.simswap.Generator
    def __init__(self, cfg):
      super().__init__()
      c = cfg.image_shape[-1]
      c0, c1, c2 = cfg.channels
      self.stem, self.down1, self.down2 = SameConv(c, c0, 3, 1), SameConv(c0, c1, 3, 2), SameConv(c1, c2, 3, 2)  # fmt: skip
      self.blocks = nn.ModuleList([IDBlock(c2, cfg.id_dim) for _ in range(cfg.num_blocks)])
      self.up1, self.up2, self.to_rgb = up(c2, c1), up(c1, c0), SameConv(c0, c, 3, 1)

    def forward(self, x, v):
      h = act2(self.down2(act2(self.down1(act2(self.stem(2 * x - 1))))))
      for block in self.blocks:
        h = block(h, v)
      return self.to_rgb(act2(self.up2(act2(self.up1(h)))))

  class PatchGAN(nn.Module):
    def __init__(self, channels, c_in):
      super().__init__()
      widths = (c_in, *channels)
      self.convs = nn.ModuleList([SameConv(a, b, 4, s)
                                  for a, b, s in zip(widths[:-1], widths[1:], (2, 2, 1), strict=True)])  # fmt: skip
      self.out = SameConv(widths[-1], 1, 4, 1)

    def forward(self, x):
      h, feats = 2 * x - 1, []
      for conv in self.convs:
        h = act2(conv(h))
        feats.append(h)
      return self.out(h)[:, 0], feats

  class MultiScaleDiscriminator(nn.Module):
    def __init__(self, cfg):
      super().__init__()
      self.nets = nn.ModuleList([PatchGAN(cfg.disc_channels, cfg.image_shape[-1])
                                 for _ in range(cfg.num_scales)])  # fmt: skip

    def forward(self, x):
      out = []
      for i, net in enumerate(self.nets):
        out.append(net(x))
        if i + 1 < len(self.nets):
          x = F.avg_pool2d(x, 2)
      return out

    def critic(self, x):
      return sum(logits.mean((1, 2)) for logits, _ in self(x))

  class IdentityNet(nn.Module):  # genjax.models.identity.IdentityNet (embedding only)
    def __init__(self, cfg):
      super().__init__()
      widths = (cfg.image_shape[-1], *cfg.channels)
      self.down = nn.ModuleList(
        [SameConv(a, b, 3, 2) for a, b in zip(widths[:-1], widths[1:], strict=True)]
      )
      self.same = nn.ModuleList([SameConv(b, b, 3, 1) for b in widths[1:]])
      self.norms = nn.ModuleList([nn.LayerNorm(b, eps=1e-6) for b in widths[1:]])
      self.embed = nn.Linear(widths[-1], cfg.embed_dim)

    def forward(self, x):
      h = 2 * x - 1
      for down, same, norm in zip(self.down, self.same, self.norms, strict=True):
        h = torch.relu(down(h))
        h = h + torch.relu(norm(same(h).permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
      return self.embed(h.mean((2, 3)))

  return SwapModel, Generator, MultiScaleDiscriminator, IdentityNet


def load_swap_weights(tm, jm) -> None:
  """genjax SharedEncoderSwap -> the PyTorch SwapModel (NHWC flatten order -> NCHW)."""
  for dst, src in zip(tm.convs, jm.encoder.convs, strict=True):
    bench.copy_conv(dst, src)
  bench.copy_linear(tm.to_z, jm.encoder.to_z, rows=tuple(tm.code_shape))
  for d, jd in zip(tm.decoders, jm.decoders, strict=True):
    bench.copy_linear(d["from_z"], jd.from_z, cols=tuple(jd.bottom))
    bench.copy_conv(d["refine"], jd.refine), bench.copy_conv(d["to_rgb"], jd.to_rgb)
    bench.copy_up(d["up1"], jd.up1), bench.copy_up(d["up2"], jd.up2)


def load_simswap_weights(tg, td, tf, jg, jd, jf) -> None:
  for name in ("stem", "down1", "down2", "to_rgb"):
    bench.copy_conv(getattr(tg, name), getattr(jg, name))
  bench.copy_up(tg.up1, jg.up1), bench.copy_up(tg.up2, jg.up2)
  for b, jb in zip(tg.blocks, jg.blocks, strict=True):
    bench.copy_conv(b.conv1, jb.conv1), bench.copy_conv(b.conv2, jb.conv2)
    bench.copy_linear(b.norm1.proj, jb.norm1.proj), bench.copy_linear(b.norm2.proj, jb.norm2.proj)
  for net, jnet in zip(td.nets, jd.nets, strict=True):
    for dst, src in zip(net.convs, jnet.convs, strict=True):
      bench.copy_conv(dst, src)
    bench.copy_conv(net.out, jnet.out)
  for i in range(len(tf.down)):
    bench.copy_conv(tf.down[i], jf.down[i]), bench.copy_conv(tf.same[i], jf.same[i])
    bench.copy_norm(tf.norms[i], jf.norms[i])
  bench.copy_linear(tf.embed, jf.embed)


def _nchw(x: np.ndarray):
  return bench.to_torch(x.transpose(0, 3, 1, 2))


def run_torch_a(batch: int, seconds: float, device: str) -> dict:
  import torch
  import torch.nn.functional as F
  from flax import nnx

  from experiments.faceswap.configs import shared_encoder

  torch.manual_seed(0)
  SwapModel = _torch_modules()[0]
  tm, jm = SwapModel(_swap_config()), jax_swap_model()
  load_swap_weights(tm, jm)
  xs_np = (_faces(batch, 0), _faces(batch, 1))
  forward = nnx.jit(lambda m, x, i: m(x, i)[0], static_argnums=2)
  with torch.no_grad():
    diff = max(float(np.abs(tm(_nchw(xs_np[i]), i).numpy().transpose(0, 2, 3, 1)
                            - np.asarray(forward(jm, xs_np[i], i))).max()) for i in (0, 1))  # fmt: skip
  config = shared_encoder.get_config()
  tm = tm.to(device)
  opt = torch.optim.Adam(tm.parameters(), lr=config.learning_rate, betas=(0.5, 0.999))
  xs = [_nchw(x).to(device) for x in xs_np]
  g = np.exp(-0.5 * np.square((np.arange(11) - 5.0) / 1.5))
  g = bench.to_torch(np.outer(g, g) / g.sum() ** 2)[None, None].repeat(3, 1, 1, 1).to(device)

  def ssim(x, y):  # genjax.losses.ssim: 11x11 Gaussian (sigma 1.5), valid, per example
    blur = lambda v: F.conv2d(v, g, groups=3)
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.mean((1, 2, 3))

  def step():
    opt.zero_grad(set_to_none=True)
    loss = 0.0
    for i, x in enumerate(xs):
      x_hat = torch.sigmoid(tm(x, i))
      loss = loss + config.loss.mse * (x_hat - x).square().mean()
      loss = loss + config.loss.dssim * ((1 - ssim(x_hat, x)) / 2).mean()
    loss.backward()
    opt.step()
    loss.item()

  return bench.torch_timeit(step, seconds, 2 * batch, max_abs_diff_vs_genjax=diff)


def run_torch_c(batch: int, seconds: float, device: str) -> dict:
  import torch
  from flax import nnx

  from experiments.simswap.configs import simswap as ss_configs
  from genjax.faces import align
  from genjax.models import simswap

  torch.manual_seed(0)
  _, Generator, Disc, IdentityNet = _torch_modules()
  cfg, id_cfg = _simswap_configs()
  tg, td, tf = Generator(cfg), Disc(cfg), IdentityNet(id_cfg)
  jg, jd, jf = jax_simswap_models()
  load_simswap_weights(tg, td, tf, jg, jd, jf)
  x_np = _faces(batch)
  # The identity net reads the aligned crop through a fixed similarity (experiments.simswap's
  # identity_vector): the same bilinear, edge-clamped warp as grid_sample's.
  size = x_np.shape[1]
  m_view = align.identity_view_transform(size, size)
  rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
  src = align.apply(align.invert(m_view), np.stack([cols, rows], -1)) * 2 / (size - 1) - 1
  grid = torch.tensor(src[None], dtype=torch.float32)

  def view(x):
    g = grid.to(x.device).expand(x.shape[0], -1, -1, -1)
    return torch.nn.functional.grid_sample(x, g, mode="bilinear", padding_mode="border",
                                           align_corners=True)  # fmt: skip

  v_j = np.asarray(nnx.jit(lambda m, x: m(x)[0])(jf, x_np))
  v_np = np.asarray(simswap.unit(v_j))
  with torch.no_grad():
    diffs = {
      "identity embedding": np.abs(tf(_nchw(x_np)).numpy() - v_j).max(),
      "identity view": np.abs(view(_nchw(x_np)).numpy().transpose(0, 2, 3, 1)
                              - np.asarray(align.warp_batch(x_np, m_view, (size, size)))).max(),
      "generator logits": np.abs(tg(_nchw(x_np), bench.to_torch(v_np)).numpy().transpose(0, 2, 3, 1)
                                 - np.asarray(nnx.jit(lambda m, x, v: m(x, v))(jg, x_np, v_np))).max(),
      "critic": np.abs(td.critic(_nchw(x_np)).numpy()
                       - np.asarray(nnx.jit(lambda m, x: m.critic(x))(jd, x_np))).max(),
    }  # fmt: skip
  config = ss_configs.get_config()
  w = config.loss
  tg, td, tf = tg.to(device), td.to(device), tf.to(device)
  tf.requires_grad_(False)
  g_opt = torch.optim.Adam(tg.parameters(), lr=config.learning_rate, betas=(0.0, 0.99))
  d_opt = torch.optim.Adam(td.parameters(), lr=config.d_learning_rate, betas=(0.0, 0.99))
  x_t = _nchw(x_np).to(device)
  n_same = round(batch * w.same_fraction)
  same = (torch.arange(batch, device=device) < n_same).float()
  x_s = torch.where(same[:, None, None, None] > 0, x_t, torch.roll(x_t, -1, 0))
  unit = lambda v: v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)

  def step():
    with torch.no_grad():
      v_s = unit(tf(view(x_s)))
      fake = torch.sigmoid(tg(x_t, v_s))
    # Discriminator: hinge on every scale + WGAN-GP (double backward).
    td.requires_grad_(True)
    d_opt.zero_grad(set_to_none=True)
    hinge = sum(torch.relu(1 - r).mean() + torch.relu(1 + f).mean()
                for (r, _), (f, _) in zip(td(x_t), td(fake), strict=True))  # fmt: skip
    a = torch.rand(batch, 1, 1, 1, device=device)
    x_hat = (a * x_t + (1 - a) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(td.critic(x_hat).sum(), x_hat, create_graph=True)
    gp = ((grad.square().sum((1, 2, 3)) + 1e-12).sqrt() - 1).square().mean()
    (hinge + w.gp * gp).backward()
    d_opt.step()
    # Generator: D and the identity net held fixed.
    td.requires_grad_(False)
    g_opt.zero_grad(set_to_none=True)
    fake = torch.sigmoid(tg(x_t, v_s))
    fake_out = td(fake)
    with torch.no_grad():
      real_out = td(x_t)
    adv = sum(-f.mean() for f, _ in fake_out)
    fm = sum(
      (ff[-1] - rf[-1]).abs().mean() for (_, ff), (_, rf) in zip(fake_out, real_out, strict=True)
    )
    v_f = tf(view(fake))
    ident = (1 - (v_f * v_s).sum(1) / (v_f.norm(dim=1) * v_s.norm(dim=1)).clamp_min(1e-8)).mean()
    rec = (same * (fake - x_t).abs().mean((1, 2, 3))).sum() / same.sum().clamp_min(1)
    loss = (w.adversarial * adv + w.identity * ident + w.reconstruction * rec
            + w.feature_matching * fm)  # fmt: skip
    loss.backward()
    g_opt.step()
    loss.item()

  return bench.torch_timeit(
    step, seconds, batch, max_abs_diff_vs_genjax={k: float(v) for k, v in diffs.items()}
  )


# --- driver -----------------------------------------------------------------------------------


def main():
  p = bench.arguments(__doc__, batch=16, seconds=30.0, models="a,c",
                      models_help="a (shared encoder), c (identity injection)")  # fmt: skip
  p.add_argument("--torch_device", default="cpu")
  a = p.parse_args()
  if a.only:
    if a.only == "genjax":
      return bench.side(a, lambda: {"a": run_jax_a, "c": run_jax_c}[a.model](
        a.batch, a.seconds, int(a.devices)))  # fmt: skip
    return bench.side(a, lambda: {"a": run_torch_a, "c": run_torch_c}[a.model](
      a.batch, a.seconds, a.torch_device))  # fmt: skip
  what = {"a": "(a) shared encoder, 2 decoders: one Adam step on both identities",
          "c": "(c) identity injection: one D step (hinge + WGAN-GP) + one G step"}  # fmt: skip
  for model in a.model.split(","):
    if model not in what:
      raise SystemExit(f"--model: unknown model {model!r}; choose from a, c")
    per = " per identity" if model == "a" else ""
    note = lambda rows: (
      f"genjax backend: {next((r['backend'] for n, r in rows.items() if n != 'pytorch'), '-')}; "
      f"pytorch device: {a.torch_device}, threads: {rows['pytorch']['threads']}; "
      f"max |torch - genjax| before training: {rows['pytorch']['max_abs_diff_vs_genjax']}")  # fmt: skip
    bench.compare(a, __file__, f"{what[model]}; 100x100x3, batch {a.batch}{per}, float32",
                  extra=("--model", model, "--torch_device", a.torch_device), label=model,
                  note=note)  # fmt: skip


if __name__ == "__main__":
  main()
