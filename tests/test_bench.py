"""The benchmark scripts' shared helpers: genjax sides per device count, per-round ratios."""

import pytest

from genjax import bench


def test_genjax_sides_names_one_side_per_device_count():
  sides = bench.genjax_sides("1,2", ["python", "b.py", "--only", "genjax"])
  assert list(sides) == ["genjax", "genjax-2dev"]
  assert sides["genjax-2dev"][-2:] == ["--devices", "2"] and sides["genjax"][-1] == "1"
  for bad in ("0", "1,-2"):
    with pytest.raises(SystemExit, match="--devices"):
      bench.genjax_sides(bad, [])


def test_host_devices_refuses_once_jax_is_imported():
  import jax  # noqa: F401  (the test process has it already)

  bench.host_devices(1)  # one device: nothing to set
  with pytest.raises(RuntimeError, match="before jax is imported"):
    bench.host_devices(2)


def test_print_runs_gives_each_side_its_ratio_to_the_reference_of_the_same_round(capsys):
  rows = {
    "genjax": {"runs": [10.0, 30.0, 20.0]},
    "genjax-2dev": {"runs": [40.0, 40.0, 40.0]},
    "pytorch": {"runs": [20.0, 20.0, 80.0]},
  }
  bench.print_runs(rows)
  out = capsys.readouterr().out
  assert "genjax / pytorch per alternating round: [0.5, 1.5, 0.25], median 0.50x" in out
  assert "genjax-2dev / pytorch per alternating round: [2.0, 2.0, 0.5], median 2.00x" in out
  assert "pytorch / pytorch" not in out


def test_print_ratios_divides_each_side_by_the_reference(capsys):
  rows = {"genjax": {"images_per_s": 30.0}, "pytorch": {"images_per_s": 40.0}}
  bench.print_ratios(rows, " (conv)")
  assert capsys.readouterr().out == "ratio genjax / pytorch (conv): 0.75x\n"
  bench.print_ratios({"genjax": {"images_per_s": 30.0}})  # no reference side: nothing to print
  assert capsys.readouterr().out == ""


def test_arguments_and_compare_run_every_side_alternately_and_print_the_table(tmp_path, capsys):
  # A stand-in benchmark script: each side prints a RESULT line, as the real ones do.
  script = tmp_path / "fake_bench.py"
  script.write_text(
    "import json, sys\n"
    "a = sys.argv\n"
    "side, dev = a[a.index('--only') + 1], a[a.index('--devices') + 1] if '--devices' in a else '1'\n"
    "rate = {'genjax': 200.0 * int(dev), 'pytorch': 100.0}[side]\n"
    "print('RESULT ' + json.dumps({'images_per_s': rate, 'ms_per_step': 1.0, 'first_step_s': 0.1,"
    " 'peak_rss_mb': 1.0, 'threads': 2, 'side': side}))\n"
  )
  args = bench.arguments("doc", batch=8, devices="1,2").parse_args(["--repeats", "2"])
  assert (args.batch, args.devices, args.only) == (8, "1,2", None)
  rows = bench.compare(
    args, str(script), "fake step", note=lambda r: f"threads {r['pytorch']['threads']}"
  )
  assert set(rows) == {"genjax", "genjax-2dev", "pytorch"}
  assert rows["genjax-2dev"]["runs"] == [400.0, 400.0]
  out = capsys.readouterr().out
  assert "fake step" in out and "threads 2" in out
  assert "ratio genjax / pytorch: 2.00x" in out and "ratio genjax-2dev / pytorch: 4.00x" in out


def test_weights_copied_into_torch_give_the_same_outputs():
  torch = pytest.importorskip("torch")
  import jax
  import numpy as np
  from flax import nnx

  from genjax import nn

  rngs = nnx.Rngs(0)
  x = np.asarray(jax.random.normal(jax.random.key(1), (2, 6, 6, 3)))
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  conv = nnx.Conv(3, 4, kernel_size=(3, 3), padding=1, rngs=rngs)
  tconv = torch.nn.Conv2d(3, 4, 3, padding=1)
  bench.copy_conv(tconv, conv)
  np.testing.assert_allclose(tconv(xt).detach().numpy().transpose(0, 2, 3, 1), conv(x), atol=1e-5)
  up = nn.ConvTranspose2x(3, 2, rngs=rngs)
  tup = torch.nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)
  bench.copy_up(tup, up)
  np.testing.assert_allclose(tup(xt).detach().numpy().transpose(0, 2, 3, 1), up(x), atol=1e-5)
  # a linear layer reading a flattened (h, w, c) map and one writing one
  into, outof = nnx.Linear(108, 5, rngs=rngs), nnx.Linear(5, 108, rngs=rngs)
  t_into, t_outof = torch.nn.Linear(108, 5), torch.nn.Linear(5, 108)
  bench.copy_linear(t_into, into, rows=(6, 6, 3))
  bench.copy_linear(t_outof, outof, cols=(6, 6, 3))
  z = into(x.reshape(2, -1))
  np.testing.assert_allclose(t_into(xt.reshape(2, -1)).detach().numpy(), z, atol=1e-5)
  back = t_outof(torch.from_numpy(np.asarray(z))).detach().numpy().reshape(2, 3, 6, 6)
  np.testing.assert_allclose(back.transpose(0, 2, 3, 1), outof(z).reshape(2, 6, 6, 3), atol=1e-5)


def test_map_pearson_averages_per_map_r_over_non_constant_pairs():
  import numpy as np

  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, 2, 5, 5))
  b = a.copy()
  b[0, 0] = -a[0, 0]  # r = -1 for one map
  b[1, 1] = 2.0 * a[1, 1] + 3.0  # r = 1 (an affine change)
  b[2, 0] = 7.0  # constant: left out
  r, n = bench.map_pearson(a, b)
  assert n == 5
  assert abs(r - (4 * 1.0 - 1.0) / 5) < 1e-12
  assert np.isnan(bench.map_pearson(np.ones((2, 3, 3)), np.ones((2, 3, 3)))[0])


def test_torch_peers_compute_the_genjax_models():
  """Every PyTorch peer, loaded with a genjax model's weights, gives its forward pass (the max
  differences each time_* function reports before timing), and its training step runs."""
  pytest.importorskip("torch")
  import numpy as np
  from flax import nnx

  from genjax import nn
  from genjax.bench import torch_peers
  from genjax.models import autoencoder, faceswap, gan, identity, simswap, vae

  x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
  ae = autoencoder.make(autoencoder.AutoencoderConfig(kind="conv", hidden=(32, 64), latent_dim=8),
                        rngs=nnx.Rngs(0))  # fmt: skip
  assert torch_peers.time_autoencoder(ae, x, 0.0)["max_abs_diff_vs_genjax"] < 1e-5
  cfg = gan.GANConfig(image_shape=(28, 28, 1), latent_dim=16, g_widths=(64, 32), d_widths=(32, 64))
  r = torch_peers.time_gan(gan.Generator(cfg, rngs=nnx.Rngs(0)),
                           gan.Discriminator(cfg, rngs=nnx.Rngs(1)), 3, 0.0)  # fmt: skip
  assert r["max_abs_diff_g"] < 1e-5 and r["max_abs_diff_d"] < 1e-5
  for kind, hidden in (("dense", (512,)), ("conv", (32, 64))):
    m = vae.make(vae.VAEConfig(kind=kind, hidden=hidden, latent_dim=4), rngs=nnx.Rngs(0))
    assert torch_peers.time_vae(kind, m, x, 0.0)["max_abs_diff_vs_genjax"] < 1e-5
  faces = np.random.default_rng(1).uniform(size=(2, 20, 20, 3)).astype(np.float32)
  s_cfg = faceswap.SwapConfig(image_shape=(20, 20, 3), channels=(4, 8), latent_dim=6,
                              decoder_channels=(8, 4))  # fmt: skip
  swap = nn.build(lambda: faceswap.SharedEncoderSwap(s_cfg, rngs=nnx.Rngs(0)))
  r = torch_peers.time_swap(s_cfg, swap, (faces, faces[::-1]), 0.0, lr=1e-3, mse=1.0, dssim=1.0)
  assert r["max_abs_diff_vs_genjax"] < 1e-5
  c_cfg = simswap.SimSwapConfig(image_shape=(20, 20, 3), channels=(4, 8, 8), num_blocks=1, id_dim=6,
                                disc_channels=(4, 8, 8))  # fmt: skip
  i_cfg = identity.IdentityConfig(image_shape=(20, 20, 3), channels=(4, 8), embed_dim=6)
  nets = (nn.build(lambda: simswap.Generator(c_cfg, rngs=nnx.Rngs(0))),
          nn.build(lambda: simswap.MultiScaleDiscriminator(c_cfg, rngs=nnx.Rngs(1))),
          nn.build(lambda: identity.IdentityNet(i_cfg, rngs=nnx.Rngs(2))))  # fmt: skip
  loss = dict(same_fraction=0.5, gp=1.0, adversarial=1.0, identity=1.0, reconstruction=1.0,
              feature_matching=1.0)  # fmt: skip
  r = torch_peers.time_injection(c_cfg, i_cfg, *nets, faces, 0.0, lr=1e-4, d_lr=1e-4, loss=loss)
  diffs = r["max_abs_diff_vs_genjax"]
  assert set(diffs) == {"identity embedding", "identity view", "generator logits", "critic"}
  assert max(diffs.values()) < 1e-4, diffs
