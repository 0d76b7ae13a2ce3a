"""The PyTorch peers of the models the training-step benchmarks time (scripts/bench_autoencoder.py,
bench_gan.py, bench_vae.py, bench_faceswap.py): the same architectures in torch.nn, loaded with
genjax's initial weights, and their eager training steps.

Each `time_*` function copies a genjax model's weights into its peer, measures the largest
difference of the two forward passes (so both sides compute the same function), and times the
PyTorch step with genjax.bench.torch_timeit. Needs torch (pip install torch==2.13.0, CPU wheel).
"""

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genjax import bench
from genjax.faces import align

# --- layers -----------------------------------------------------------------------------------


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


class ChannelNorm(nn.LayerNorm):
  """flax LayerNorm over the channels of an NHWC map, on an NCHW tensor."""

  def forward(self, h):
    return super().forward(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def up(a: int, b: int) -> nn.ConvTranspose2d:
  """genjax.nn.ConvTranspose2x: a 4x4 stride-2 transposed convolution that doubles H and W."""
  return nn.ConvTranspose2d(a, b, 4, 2, 1)


def nchw(x: np.ndarray) -> torch.Tensor:
  """An NHWC array as an NCHW float32 tensor with NCHW's own strides (a copy: a transposed view
  with one channel keeps odd strides, and torch then picks other kernels)."""
  return torch.from_numpy(np.asarray(x, np.float32).transpose(0, 3, 1, 2).copy())


def nhwc(t: torch.Tensor) -> np.ndarray:
  return t.detach().cpu().numpy().transpose(0, 2, 3, 1)


# --- conv autoencoder (genjax.models.autoencoder, kind="conv", hidden=(32, 64)) ------------------


class ConvAE(nn.Module):
  def __init__(self, latent_dim: int = 32):
    super().__init__()
    self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 2, 1), nn.Conv2d(32, 64, 3, 2, 1)
    self.to_z, self.from_z = nn.Linear(7 * 7 * 64, latent_dim), nn.Linear(latent_dim, 7 * 7 * 64)
    self.up1, self.up2 = up(64, 32), up(32, 1)

  def forward(self, x):
    h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
    h = torch.relu(self.from_z(self.to_z(h.flatten(1)))).view(-1, 64, 7, 7)
    return self.up2(torch.relu(self.up1(h)))

  def load(self, jm) -> "ConvAE":
    bench.copy_conv(self.conv1, jm.conv1), bench.copy_conv(self.conv2, jm.conv2)
    bench.copy_linear(self.to_z, jm.to_z, rows=(7, 7, 64))
    bench.copy_linear(self.from_z, jm.from_z, cols=(7, 7, 64))
    bench.copy_up(self.up1, jm.up1), bench.copy_up(self.up2, jm.up2)
    return self


def time_autoencoder(jm, x_np: np.ndarray, seconds: float, *, lr: float = 1e-3) -> dict:
  """One Adam step on BCE-with-logits reconstruction of x_np [B, 28, 28, 1] in [0, 1]."""
  torch.manual_seed(0)
  tm = ConvAE(jm.to_z.out_features).load(jm)
  x = nchw(x_np)
  with torch.no_grad():
    diff = np.abs(nhwc(tm(x)) - np.asarray(jm(x_np)[0])).max()
  opt = torch.optim.Adam(tm.parameters(), lr=lr)

  def step():
    opt.zero_grad(set_to_none=True)
    loss = F.binary_cross_entropy_with_logits(tm(x), x)
    loss.backward()
    opt.step()
    loss.item()

  return bench.torch_timeit(step, seconds, len(x_np), max_abs_diff_vs_genjax=float(diff))


# --- DCGAN (genjax.models.gan, 28x28x1, g_widths=(64, 32), d_widths=(32, 64)) ------------------


class Generator(nn.Module):
  def __init__(self, latent_dim: int = 64):
    super().__init__()
    self.fc = nn.Linear(latent_dim, 7 * 7 * 64)
    self.n1, self.n2 = ChannelNorm(64, eps=1e-6), ChannelNorm(32, eps=1e-6)
    self.up1, self.up2 = up(64, 32), up(32, 1)

  def forward(self, z):
    h = self.fc(z).view(-1, 64, 7, 7)
    return torch.sigmoid(self.up2(torch.relu(self.n2(self.up1(torch.relu(self.n1(h)))))))

  def load(self, jg) -> "Generator":
    bench.copy_linear(self.fc, jg.fc, cols=(7, 7, 64))
    bench.copy_norm(self.n1, jg.norms[0]), bench.copy_norm(self.n2, jg.norms[1])
    bench.copy_up(self.up1, jg.ups[0]), bench.copy_up(self.up2, jg.ups[1])
    return self


class Discriminator(nn.Module):
  def __init__(self):
    super().__init__()
    self.c1, self.c2 = nn.Conv2d(1, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1)
    self.fc = nn.Linear(7 * 7 * 64, 1)

  def forward(self, x):
    h = F.leaky_relu(self.c1(2 * x - 1), 0.2)
    return self.fc(F.leaky_relu(self.c2(h), 0.2).flatten(1))[:, 0]

  def load(self, jd) -> "Discriminator":
    bench.copy_conv(self.c1, jd.convs[0]), bench.copy_conv(self.c2, jd.convs[1])
    bench.copy_linear(self.fc, jd.fc, rows=(7, 7, 64))
    return self


def time_gan(jg, jd, batch: int, seconds: float, *, lr: float = 2e-4) -> dict:
  """One non-saturating DCGAN update (a D step with G under no-grad, then a G step), Adam(0.5,
  0.999) each, on `batch` random [0, 1] images as the real ones."""
  torch.manual_seed(0)
  latent = jg.fc.in_features
  tg, td = Generator(latent).load(jg), Discriminator().load(jd)
  rng = np.random.default_rng(0)
  z_np = rng.standard_normal((batch, latent)).astype(np.float32)
  x_np = rng.uniform(size=(batch, 28, 28, 1)).astype(np.float32)
  x = nchw(x_np)
  with torch.no_grad():
    g_diff = np.abs(nhwc(tg(torch.from_numpy(z_np))) - jg(z_np)[1]["x"]).max()
    d_diff = np.abs(td(x).numpy() - np.asarray(jd(x_np)[0])).max()
  g_opt = torch.optim.Adam(tg.parameters(), lr=lr, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(td.parameters(), lr=lr, betas=(0.5, 0.999))

  def step():
    with torch.no_grad():
      fake = tg(torch.randn(batch, latent))
    d_opt.zero_grad(set_to_none=True)
    d_loss = F.softplus(-td(x)).mean() + F.softplus(td(fake)).mean()
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    g_loss = F.softplus(-td(tg(torch.randn(batch, latent)))).mean()
    g_loss.backward()  # also fills D's grads; they are cleared before the next D step
    g_opt.step()
    g_loss.item()

  return bench.torch_timeit(step, seconds, batch, max_abs_diff_g=float(g_diff),
                            max_abs_diff_d=float(d_diff))  # fmt: skip


# --- VAE (genjax.models.vae: dense hidden=(512,) or conv hidden=(32, 64)) ----------------------


class VAE(nn.Module):
  def __init__(self, kind: str, latent: int):
    super().__init__()
    self.kind = kind
    if kind == "dense":
      self.enc, self.to_stats = nn.Linear(784, 512), nn.Linear(512, 2 * latent)
      self.dec1, self.dec2 = nn.Linear(latent, 512), nn.Linear(512, 784)
    else:
      self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 2, 1), nn.Conv2d(32, 64, 3, 2, 1)
      self.to_stats, self.from_z = nn.Linear(7 * 7 * 64, 2 * latent), nn.Linear(latent, 3136)
      self.up1, self.up2 = up(64, 32), up(32, 1)

  def encode(self, x):  # x [B, 1, 28, 28] -> mu, logvar
    if self.kind == "dense":
      h = torch.relu(self.enc(x.flatten(1)))
    else:
      h = torch.relu(self.conv2(torch.relu(self.conv1(x)))).flatten(1)
    return self.to_stats(h).chunk(2, dim=1)

  def decode(self, z):
    if self.kind == "dense":
      return self.dec2(torch.relu(self.dec1(z))).view(-1, 1, 28, 28)
    h = torch.relu(self.from_z(z)).view(-1, 64, 7, 7)
    return self.up2(torch.relu(self.up1(h)))

  def load(self, jm) -> "VAE":
    if self.kind == "dense":
      bench.copy_linear(self.enc, jm.enc[0]), bench.copy_linear(self.to_stats, jm.to_stats)
      bench.copy_linear(self.dec1, jm.dec[0]), bench.copy_linear(self.dec2, jm.dec[1])
      return self
    bench.copy_conv(self.conv1, jm.conv1), bench.copy_conv(self.conv2, jm.conv2)
    bench.copy_linear(self.to_stats, jm.to_stats, rows=(7, 7, 64))
    bench.copy_linear(self.from_z, jm.from_z, cols=(7, 7, 64))
    bench.copy_up(self.up1, jm.up1), bench.copy_up(self.up2, jm.up2)
    return self


def time_vae(kind: str, jm, x_np: np.ndarray, seconds: float, *, lr: float = 1e-3) -> dict:
  """One Adam step on the negative ELBO (Bernoulli likelihood of a fresh binarization of x_np,
  closed-form KL, beta 1)."""
  torch.manual_seed(0)
  latent = jm.to_stats.out_features // 2
  tm = VAE(kind, latent).load(jm)
  x = nchw(x_np)
  eps = np.random.default_rng(1).standard_normal((len(x_np), latent)).astype(np.float32)
  with torch.no_grad():
    mu, logvar = tm.encode(x)
    t_out = tm.decode(mu + torch.exp(0.5 * logvar) * torch.from_numpy(eps))
  j_mu, j_logvar = jm.encode(x_np)
  j_out = jm.decode(j_mu + np.exp(0.5 * np.asarray(j_logvar)) * eps)
  diff = np.abs(nhwc(t_out) - np.asarray(j_out)).max()
  opt = torch.optim.Adam(tm.parameters(), lr=lr)

  def step():
    opt.zero_grad(set_to_none=True)
    xb = torch.bernoulli(x)
    mu, logvar = tm.encode(xb)
    logits = tm.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
    recon = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum((1, 2, 3))
    kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)
    loss = (recon + kl).mean()
    loss.backward()
    opt.step()
    loss.item()

  return bench.torch_timeit(step, seconds, len(x_np), max_abs_diff_vs_genjax=float(diff))


# --- face swap (a): genjax.models.faceswap.SharedEncoderSwap -----------------------------------


class SwapModel(nn.Module):
  def __init__(self, cfg):  # cfg: genjax.models.faceswap.SwapConfig
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

  def load(self, jm) -> "SwapModel":
    """genjax SharedEncoderSwap -> this model (NHWC flatten order -> NCHW)."""
    for dst, src in zip(self.convs, jm.encoder.convs, strict=True):
      bench.copy_conv(dst, src)
    bench.copy_linear(self.to_z, jm.encoder.to_z, rows=tuple(self.code_shape))
    for d, jd in zip(self.decoders, jm.decoders, strict=True):
      bench.copy_linear(d["from_z"], jd.from_z, cols=tuple(jd.bottom))
      bench.copy_conv(d["refine"], jd.refine), bench.copy_conv(d["to_rgb"], jd.to_rgb)
      bench.copy_up(d["up1"], jd.up1), bench.copy_up(d["up2"], jd.up2)
    return self


def ssim(x, y, g):
  """genjax.losses.ssim: 11x11 Gaussian window g [3, 1, 11, 11] (sigma 1.5), valid, per example."""
  blur = lambda v: F.conv2d(v, g, groups=3)
  mx, my = blur(x), blur(y)
  sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
  c1, c2 = 0.01**2, 0.03**2
  s = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
  return s.mean((1, 2, 3))


def time_swap(cfg, jm, xs_np, seconds: float, *, lr: float, mse: float, dssim: float,
              device: str = "cpu") -> dict:  # fmt: skip
  """One Adam(0.5, 0.999) step on sum_i [mse * MSE + dssim * DSSIM](sigmoid(D_i(E(x_i))), x_i)
  over the identities' batches xs_np (each [B, H, W, 3]); cfg the SwapConfig jm was built from."""
  from flax import nnx

  torch.manual_seed(0)
  tm = SwapModel(cfg).load(jm)
  forward = nnx.jit(lambda m, x, i: m(x, i)[0], static_argnums=2)
  with torch.no_grad():
    diff = max(float(np.abs(nhwc(tm(nchw(x), i)) - np.asarray(forward(jm, x, i))).max())
               for i, x in enumerate(xs_np))  # fmt: skip
  tm = tm.to(device)
  opt = torch.optim.Adam(tm.parameters(), lr=lr, betas=(0.5, 0.999))
  xs = [nchw(x).to(device) for x in xs_np]
  g = np.exp(-0.5 * np.square((np.arange(11) - 5.0) / 1.5))
  g = bench.to_torch(np.outer(g, g) / g.sum() ** 2)[None, None].repeat(3, 1, 1, 1).to(device)

  def step():
    opt.zero_grad(set_to_none=True)
    loss = 0.0
    for i, x in enumerate(xs):
      x_hat = torch.sigmoid(tm(x, i))
      loss = loss + mse * (x_hat - x).square().mean()
      loss = loss + dssim * ((1 - ssim(x_hat, x, g)) / 2).mean()
    loss.backward()
    opt.step()
    loss.item()

  return bench.torch_timeit(step, seconds, sum(len(x) for x in xs_np), max_abs_diff_vs_genjax=diff)


# --- face swap (c): genjax.models.simswap and the identity net ----------------------------------


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


def _act(t):
  return F.leaky_relu(t, 0.2)


class InjectionGenerator(nn.Module):  # genjax.models.simswap.Generator
  def __init__(self, cfg):  # cfg: genjax.models.simswap.SimSwapConfig
    super().__init__()
    c = cfg.image_shape[-1]
    c0, c1, c2 = cfg.channels
    self.stem, self.down1, self.down2 = SameConv(c, c0, 3, 1), SameConv(c0, c1, 3, 2), SameConv(c1, c2, 3, 2)  # fmt: skip
    self.blocks = nn.ModuleList([IDBlock(c2, cfg.id_dim) for _ in range(cfg.num_blocks)])
    self.up1, self.up2, self.to_rgb = up(c2, c1), up(c1, c0), SameConv(c0, c, 3, 1)

  def forward(self, x, v):
    h = _act(self.down2(_act(self.down1(_act(self.stem(2 * x - 1))))))
    for block in self.blocks:
      h = block(h, v)
    return self.to_rgb(_act(self.up2(_act(self.up1(h)))))

  def load(self, jg) -> "InjectionGenerator":
    for name in ("stem", "down1", "down2", "to_rgb"):
      bench.copy_conv(getattr(self, name), getattr(jg, name))
    bench.copy_up(self.up1, jg.up1), bench.copy_up(self.up2, jg.up2)
    for b, jb in zip(self.blocks, jg.blocks, strict=True):
      bench.copy_conv(b.conv1, jb.conv1), bench.copy_conv(b.conv2, jb.conv2)
      bench.copy_linear(b.norm1.proj, jb.norm1.proj), bench.copy_linear(b.norm2.proj, jb.norm2.proj)
    return self


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
      h = _act(conv(h))
      feats.append(h)
    return self.out(h)[:, 0], feats


class MultiScaleDiscriminator(nn.Module):  # genjax.models.simswap.MultiScaleDiscriminator
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

  def load(self, jd) -> "MultiScaleDiscriminator":
    for net, jnet in zip(self.nets, jd.nets, strict=True):
      for dst, src in zip(net.convs, jnet.convs, strict=True):
        bench.copy_conv(dst, src)
      bench.copy_conv(net.out, jnet.out)
    return self


class IdentityNet(nn.Module):  # genjax.models.identity.IdentityNet (embedding only)
  def __init__(self, cfg):  # cfg: genjax.models.identity.IdentityConfig
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

  def load(self, jf) -> "IdentityNet":
    for i in range(len(self.down)):
      bench.copy_conv(self.down[i], jf.down[i]), bench.copy_conv(self.same[i], jf.same[i])
      bench.copy_norm(self.norms[i], jf.norms[i])
    bench.copy_linear(self.embed, jf.embed)
    return self


def identity_view(size: int):
  """The identity net's view of an aligned crop (experiments.simswap's identity_vector: a fixed
  similarity, bilinear, edge-clamped) as a grid_sample call on [B, 3, size, size] tensors."""
  m_view = align.identity_view_transform(size, size)
  rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
  src = align.apply(align.invert(m_view), np.stack([cols, rows], -1)) * 2 / (size - 1) - 1
  grid = torch.tensor(src[None], dtype=torch.float32)

  def view(x):
    g = grid.to(x.device).expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(x, g, mode="bilinear", padding_mode="border", align_corners=True)

  return view


def time_injection(cfg, id_cfg, jg, jd, jf, x_np: np.ndarray, seconds: float, *, lr: float,
                   d_lr: float, loss: Mapping[str, float], device: str = "cpu") -> dict:  # fmt: skip
  """One identity-injection update on targets x_np [B, H, W, 3]: a D step (hinge on every scale +
  WGAN-GP, whose input gradient is differentiated again) with the fakes under no-grad, then a G step
  (hinge + identity loss through the frozen identity net + masked L1 reconstruction + feature
  matching), Adam(0, 0.99) each. `loss` holds the weights same_fraction, gp, adversarial, identity,
  reconstruction, feature_matching; cfg / id_cfg the configs jg, jd / jf were built from."""
  from flax import nnx

  from genjax.models import simswap

  torch.manual_seed(0)
  tg, td = InjectionGenerator(cfg).load(jg), MultiScaleDiscriminator(cfg).load(jd)
  tf = IdentityNet(id_cfg).load(jf)
  size = x_np.shape[1]
  view = identity_view(size)
  v_j = np.asarray(nnx.jit(lambda m, x: m(x)[0])(jf, x_np))
  v_np = np.asarray(simswap.unit(v_j))
  with torch.no_grad():
    diffs = {
      "identity embedding": np.abs(tf(nchw(x_np)).numpy() - v_j).max(),
      "identity view": np.abs(nhwc(view(nchw(x_np))) - np.asarray(
        align.warp_batch(x_np, align.identity_view_transform(size, size), (size, size)))).max(),
      "generator logits": np.abs(nhwc(tg(nchw(x_np), bench.to_torch(v_np)))
                                 - np.asarray(nnx.jit(lambda m, x, v: m(x, v))(jg, x_np, v_np))).max(),
      "critic": np.abs(td.critic(nchw(x_np)).numpy()
                       - np.asarray(nnx.jit(lambda m, x: m.critic(x))(jd, x_np))).max(),
    }  # fmt: skip
  tg, td, tf = tg.to(device), td.to(device), tf.to(device)
  tf.requires_grad_(False)
  g_opt = torch.optim.Adam(tg.parameters(), lr=lr, betas=(0.0, 0.99))
  d_opt = torch.optim.Adam(td.parameters(), lr=d_lr, betas=(0.0, 0.99))
  batch = len(x_np)
  x_t = nchw(x_np).to(device)
  same = (torch.arange(batch, device=device) < round(batch * loss["same_fraction"])).float()
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
    (hinge + loss["gp"] * gp).backward()
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
    total = (loss["adversarial"] * adv + loss["identity"] * ident
             + loss["reconstruction"] * rec + loss["feature_matching"] * fm)  # fmt: skip
    total.backward()
    g_opt.step()
    total.item()

  return bench.torch_timeit(
    step, seconds, batch, max_abs_diff_vs_genjax={k: float(v) for k, v in diffs.items()}
  )
