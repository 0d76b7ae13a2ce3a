"""Face swap (c): generator and discriminator shapes, identity injection, pairs, the separation of
the alternating updates, the generator loss as its weighted terms, and a smoke run."""

import dataclasses
import functools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from experiments.simswap import train as sim_train
from experiments.simswap.configs import simswap as sim_config
from genjax import losses, nn
from genjax.faces import align, augment
from genjax.models import identity, simswap
from genjax.train import sharding

SHAPE = (32, 32, 3)
CFG = simswap.SimSwapConfig(image_shape=SHAPE, channels=(4, 6, 8), num_blocks=2, id_dim=5,
                            disc_channels=(4, 4, 4), num_scales=2)  # fmt: skip


def test_generator_and_discriminator_shapes(key):
  g = nn.build(lambda: simswap.Generator(CFG, rngs=nnx.Rngs(0)))
  x = jax.random.uniform(key, (3, *SHAPE))
  v = simswap.unit(jax.random.normal(key, (3, 5)))
  y = jax.jit(g.swap)(x, v)  # one compilation instead of one per operation
  chex.assert_shape(y, (3, *SHAPE))
  assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
  with pytest.raises(ValueError, match="want v"):
    g(x, v[:, :4])
  with pytest.raises(ValueError, match="divisible by 4"):
    nnx.eval_shape(
      lambda: simswap.Generator(simswap.SimSwapConfig(image_shape=(30, 30, 3)), rngs=nnx.Rngs(0))
    )
  d = nn.build(lambda: simswap.MultiScaleDiscriminator(CFG, rngs=nnx.Rngs(1)))
  out = jax.jit(d)(x)
  # Strides 2, 2, 1, 1 with SAME padding: 32 -> 8 patches per side, 16 -> 4 at the second scale.
  chex.assert_shape([logits for logits, _ in out], [(3, 8, 8), (3, 4, 4)])
  assert [f.shape[-1] for f in out[0][1]] == [4, 4, 4]
  np.testing.assert_allclose(
    jax.jit(d.critic)(x), out[0][0].mean((1, 2)) + out[1][0].mean((1, 2)), rtol=1e-5
  )
  np.testing.assert_allclose(simswap.downsample(x)[0, 0, 0], x[0, :2, :2].mean((0, 1)), rtol=1e-6)


def test_the_bottleneck_generator_passes_the_target_only_through_its_code(key):
  cfg = simswap.SimSwapConfig(image_shape=SHAPE, channels=(4, 6, 8), num_blocks=1, id_dim=5,
                              bottleneck=7, adain_decoder=True)  # fmt: skip
  g = nn.build(lambda: simswap.Generator(cfg, rngs=nnx.Rngs(0)))
  x = jax.random.uniform(key, (2, *SHAPE))
  v = simswap.unit(jax.random.normal(key, (2, 5)))
  chex.assert_shape(jax.jit(g.swap)(x, v), (2, *SHAPE))
  # The target reaches the ID blocks through 7 numbers: d(output)/d(x) has rank <= 7 per example.
  jac = jax.jit(jax.jacobian(lambda t: g(t[None], v[:1])[0, :6, :6, 0].reshape(-1)))(x[0])
  assert np.linalg.matrix_rank(np.asarray(jac).reshape(36, -1), tol=1e-6) <= 7
  # v also sets the decoder's normalization: the outputs differ for two identities.
  out = jax.jit(g)(jnp.repeat(x[:1], 2, 0), v)
  assert float(jnp.abs(out[0] - out[1]).max()) > 1e-4


def test_the_identity_vector_is_injected(key):
  """The output depends on v (through AdaIN only) and each ID block's AdaIN sets its channel stats."""
  g = nn.build(lambda: simswap.Generator(CFG, rngs=nnx.Rngs(0)))
  forward = jax.jit(g)
  x = jnp.repeat(jax.random.uniform(key, (1, *SHAPE)), 2, axis=0)
  v = simswap.unit(jax.random.normal(jax.random.fold_in(key, 1), (2, 5)))
  out = forward(x, v)
  assert float(jnp.abs(out[0] - out[1]).max()) > 1e-4  # same target, two identities
  np.testing.assert_allclose(forward(x, jnp.stack([v[0], v[0]]))[1], out[0], atol=1e-5)
  norm = g.blocks[0].norm1
  h = jax.random.normal(key, (2, 8, 8, 8))
  gamma, beta, y = jax.jit(lambda h, v: (*jnp.split(norm.proj(v), 2, axis=-1), norm(h, v)))(h, v)
  np.testing.assert_allclose(y.mean((1, 2)), beta, atol=1e-4)
  np.testing.assert_allclose(y.std((1, 2)), jnp.abs(1.0 + gamma), rtol=1e-3, atol=1e-4)


def test_make_pairs():
  x = jnp.arange(6.0).reshape(6, 1, 1, 1)
  src, same = sim_train.make_pairs(x, 0.5)
  np.testing.assert_array_equal(same, [True, True, True, False, False, False])
  np.testing.assert_array_equal(src.ravel(), [0, 1, 2, 4, 5, 0])
  y = jnp.array([3, 3, 1, 1, 2, 1])  # sources' people: 3 3 1 2 1 3 (example 3 pairs with 4)
  np.testing.assert_array_equal(sim_train.two_people(y, same),
                                [False, False, False, True, True, True])  # fmt: skip


def _setup(key, cfg=CFG):
  mesh = sharding.make_mesh(1)
  f = identity.IdentityNet(identity.IdentityConfig(image_shape=SHAPE, channels=(4,), embed_dim=5,
                                                   num_classes=3), rngs=nnx.Rngs(7))  # fmt: skip
  f_def, fp, fr = nnx.split(f, nnx.Param, ...)
  g_tx, d_tx = optax.adam(1e-2), optax.adam(1e-2)
  defs, state = sim_train.create(cfg, g_tx, d_tx, key, mesh, f_def, (fp, fr))
  x = jax.random.uniform(jax.random.fold_in(key, 1), (4, *SHAPE))
  src, same = sim_train.make_pairs(x, 0.5)
  v = jax.jit(functools.partial(sim_train.identity_vector, defs))(state, src)
  return defs, state, g_tx, d_tx, x, v, same


def _changed(a, b):
  return [bool(jnp.any(p != q)) for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                strict=True)]  # fmt: skip


def test_discriminator_step_leaves_generator_and_identity_net_untouched(key):
  defs, state, g_tx, d_tx, x, v, same = _setup(key)
  fake = jax.jit(lambda s: jax.nn.sigmoid(sim_train.generator(defs, s)(x, v)))(state)
  step = functools.partial(sim_train.d_step, defs=defs, d_tx=d_tx, cfg=sim_train.LossConfig())
  new, terms = jax.jit(step)(state, x, fake, key)
  assert not any(_changed(state.g_params, new.g_params))
  assert not any(_changed(state.g_opt, new.g_opt))
  assert not any(_changed(state.frozen, new.frozen))
  # Every kernel moves. The output-layer biases do not: their hinge gradient is
  # -mean 1[l_real < 1] + mean 1[l_fake > -1] = -1 + 1 = 0 while every patch is inside the margin.
  kernels = lambda p: [a for path, a in jax.tree_util.tree_leaves_with_path(p)
                       if "kernel" in jax.tree_util.keystr(path)]  # fmt: skip
  assert all(_changed(kernels(state.d_params), kernels(new.d_params)))
  np.testing.assert_allclose(terms["d_loss"], terms["d_hinge"] + 1e-5 * terms["gp"], rtol=1e-6)


def test_generator_step_leaves_discriminator_and_identity_net_untouched(key):
  defs, state, g_tx, d_tx, x, v, same = _setup(key)
  step = functools.partial(sim_train.g_step, defs=defs, g_tx=g_tx, cfg=sim_train.LossConfig())
  new, _ = jax.jit(step)(state, x, v, same, key)
  assert not any(_changed(state.d_params, new.d_params))
  assert not any(_changed(state.d_opt, new.d_opt))
  assert not any(_changed(state.frozen, new.frozen))
  assert any(_changed(state.g_params, new.g_params))


def test_generator_loss_is_the_weighted_sum_of_independently_computed_terms(key):
  defs, state, g_tx, d_tx, x, v, same = _setup(key)
  cfg = sim_train.LossConfig(identity=2.0, reconstruction=3.0, feature_matching=5.0,
                             adversarial=0.5, dssim=4.0)  # fmt: skip
  loss, t = jax.jit(lambda s: sim_train.g_terms(defs, s, s.g_params, x, v, same, key, cfg))(state)
  np.testing.assert_allclose(
    loss,
    0.5 * t["g_adv"] + 2 * t["id_loss"] + 3 * t["rec_l1"] + 4 * t["rec_dssim"] + 5 * t["fm"],
    rtol=1e-5,
  )
  # Reference computations in NumPy from the raw network outputs.
  raw = jax.jit(lambda s: (jax.nn.sigmoid(sim_train.generator(defs, s)(x, v)),))(state)
  y = np.asarray(raw[0], np.float64)
  rec = np.abs(y - np.asarray(x))[:2].mean()  # examples 0, 1 are their own source
  np.testing.assert_allclose(t["rec_l1"], rec, rtol=1e-4)
  dssim = np.asarray(losses.dssim(raw[0], x))[:2].mean()
  np.testing.assert_allclose(t["rec_dssim"], dssim, rtol=1e-4)
  f = nnx.merge(defs.f, *state.frozen)
  view = np.stack(
    [
      align.warp(np.asarray(im), align.identity_view_transform(SHAPE[0], SHAPE[0]), SHAPE[:2])
      for im in raw[0]
    ]
  )  # F reads the LFW3D framing (OpenCV)
  vy, vs = np.asarray(jax.jit(f)(view)[0], np.float64), np.asarray(v, np.float64)
  cos = (vy * vs).sum(1) / np.linalg.norm(vy, axis=1) / np.linalg.norm(vs, axis=1)
  np.testing.assert_allclose(t["id_loss"], (1 - cos).mean(), rtol=1e-4, atol=1e-6)
  assert 0.0 <= float(t["id_loss"]) <= 2.0
  d = jax.jit(sim_train.discriminator(defs, state))
  out_f, out_r = d(raw[0]), d(x)
  np.testing.assert_allclose(t["g_adv"], sum(-np.asarray(lf).mean() for lf, _ in out_f), rtol=1e-4)
  fm = sum(np.abs(np.asarray(ff[-1]) - np.asarray(rf[-1])).mean() for (_, ff), (_, rf)
           in zip(out_f, out_r, strict=True))  # fmt: skip
  np.testing.assert_allclose(t["fm"], fm, rtol=1e-4)


def test_smoke_run_writes_results_and_swap_matrix(tmp_path):
  config = sim_config.get_config("smoke")
  results = sim_train.train_and_evaluate(config, str(tmp_path))
  assert results["step"] == 2
  for k in ("self_l1", "self_psnr", "self_ssim", "swap_cos_to_source", "swap_cos_to_target"):
    assert np.isfinite(results[k]), k
  assert json.loads((tmp_path / "results.json").read_text())["step"] == 2
  assert (tmp_path / "preview.png").stat().st_size > 0
  with pytest.raises(ValueError, match="identity_workdir"):
    config.dataset = "lfw"
    sim_train.build(config, sharding.make_mesh(1))


def test_identity_loss_over_random_views_averages_the_views(key):
  defs, state, g_tx, d_tx, x, v, same = _setup(key)
  y = jax.random.uniform(jax.random.fold_in(key, 5), x.shape)
  term = jax.jit(lambda s, y, k: sim_train.identity_term(defs, s, y, v, k, 3))(state, y, key)
  views = [augment.augment(k, y, sim_train.ID_VIEWS)[1] for k in jax.random.split(key, 3)]
  per_view = [
    losses.identity_loss(sim_train.identity_vector(defs, state, w), v).mean() for w in views
  ]
  # 1 - cos in float32: an absolute error of a few float32 steps of cos.
  np.testing.assert_allclose(term, np.mean(per_view), rtol=1e-5, atol=1e-6)
  assert all(float(jnp.abs(w - y).mean()) > 1e-3 for w in views)  # each view moves the pixels
  plain = sim_train.identity_term(defs, state, y, v, key, 0)
  np.testing.assert_allclose(plain, losses.identity_loss(sim_train.identity_vector(defs, state, y),
                                                         v).mean(), rtol=1e-6)  # fmt: skip


def test_identity_loss_on_low_passed_swaps_and_sources(key):
  defs, state, g_tx, d_tx, x, v, same = _setup(key)
  y = jax.random.uniform(jax.random.fold_in(key, 5), x.shape)
  term = jax.jit(lambda s, y, k: sim_train.identity_term(defs, s, y, v, k, 0, 1.5))(state, y, key)
  blurred = sim_train.identity_vector(defs, state, augment.blur(y, 1.5))
  np.testing.assert_allclose(term, losses.identity_loss(blurred, v).mean(), rtol=1e-5, atol=1e-6)
  assert abs(float(term) - float(sim_train.identity_term(defs, state, y, v, key, 0))) > 1e-4
  # In a train step the loss's target is F of the low-passed source; blur 0 is the plain step.
  cfg = sim_train.LossConfig(id_blur=1.5)
  step = sim_train.make_train_step(defs, g_tx, d_tx, cfg, augment.AugmentConfig(warp=0.0))
  batch = (x, jnp.zeros(x.shape[0], jnp.int32), jnp.ones(x.shape[:3]))
  _, m = step(jax.tree.map(jnp.copy, state), batch, key)  # the step donates its state
  assert np.isfinite(float(m["id_loss"])) and 0.0 <= float(m["id_loss"]) <= 2.0
  _, m0 = sim_train.make_train_step(defs, g_tx, d_tx, sim_train.LossConfig(),
                                    augment.AugmentConfig(warp=0.0))(state, batch, key)  # fmt: skip
  assert float(m["id_loss"]) != float(m0["id_loss"])


def test_the_generator_sees_the_targets_face_interior_low_passed(key):
  """interior_blur: outside the face-interior ellipse the pixels are the target's, deep inside
  scipy's Gaussian filter of them; G with target_blur is G without it on interior_blur(x)."""
  from scipy import ndimage

  x = jax.random.uniform(key, (2, *SHAPE))
  m = align.interior_mask(SHAPE[0])
  assert m.max() == 1.0 and m.min() == 0.0 and m[0, 0] == 0.0 and m[16, 16] == 1.0
  out = np.asarray(simswap.interior_blur(x, 2.0))
  outside, inside = m == 0.0, m == 1.0
  np.testing.assert_array_equal(out[:, outside], np.asarray(x)[:, outside])
  ref = ndimage.gaussian_filter(np.asarray(x, np.float64), (0, 2.0, 2.0, 0), mode="nearest")
  np.testing.assert_allclose(out[:, inside], ref[:, inside], atol=1e-5)
  assert simswap.interior_blur(x, 0.0) is x
  v = simswap.unit(jax.random.normal(key, (2, 5)))
  blurred_cfg = simswap.SimSwapConfig(**{**dataclasses.asdict(CFG), "target_blur": 2.0})
  g_blur = nn.build(lambda: simswap.Generator(blurred_cfg, rngs=nnx.Rngs(0)))
  g = nn.build(lambda: simswap.Generator(CFG, rngs=nnx.Rngs(0)))
  np.testing.assert_allclose(jax.jit(g_blur)(x, v), jax.jit(g)(simswap.interior_blur(x, 2.0), v),
                             atol=1e-5)  # fmt: skip
  assert float(jnp.abs(jax.jit(g_blur)(x, v) - jax.jit(g)(x, v)).max()) > 1e-4


def _faces(x, y, names=("p0", "p1", "p2", "absent")):
  """A FaceDataset of float images x [N, H, W, 3] in [0, 1] (stored as uint8)."""
  from genjax.data import faces

  return faces.FaceDataset(x=np.round(np.asarray(x) * 255).astype(np.uint8),
                           y=np.asarray(y, np.int32), names=names)  # fmt: skip


def test_person_identities_are_the_unit_mean_of_each_persons_identity_vectors(key):
  defs, state, *_ = _setup(key)
  x = np.asarray(jax.random.uniform(jax.random.fold_in(key, 2), (7, *SHAPE)))
  ds = _faces(x, [0, 1, 0, 2, 2, 0, 1])
  table = np.asarray(sim_train.person_identities(defs, state, ds, chunk=3))
  v = np.asarray(sim_train.identity_vector(defs, state, jnp.asarray(ds.images())), np.float64)
  for p in range(3):
    mean = v[ds.y == p].mean(0)
    np.testing.assert_allclose(table[p], mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(table[3], 0.0)  # no faces of that person


def _step_metrics(defs, state, cfg, table, x, y, key):
  still = augment.AugmentConfig(flip=False, rotate=0.0, scale=0.0, shift=0.0, warp=0.0,
                                brightness=0.0, contrast=0.0, saturation=0.0)  # fmt: skip
  step = sim_train.make_train_step(defs, optax.adam(1e-2), optax.adam(1e-2), cfg, still, table)
  region = jnp.ones(x.shape[:3])
  state = jax.tree.map(jnp.copy, state)  # the step donates its state
  return step(state, (x, jnp.asarray(y), region), key)[1]


def test_person_sources_pair_each_target_with_the_identity_of_its_sources_person(key):
  defs, state, *_ = _setup(key)
  people = np.asarray(jax.random.uniform(jax.random.fold_in(key, 3), (3, *SHAPE)))
  y = np.array([0, 1, 0, 2, 1, 2])  # a person's faces are copies of one face: F(x_s) is their row
  x = jnp.asarray(_faces(people[y], y).images())
  table = sim_train.person_identities(defs, state, _faces(people[[0, 1, 2, 2]], [0, 1, 2, 2]))
  base = sim_train.LossConfig()
  by_image = _step_metrics(defs, state, base, None, x, y, key)
  by_person = _step_metrics(defs, state, dataclasses.replace(base, source_identity="person"),
                            table, x, y, key)  # fmt: skip
  for k in ("d_loss", "id_loss", "g_loss", "rec_l1"):
    np.testing.assert_allclose(by_person[k], by_image[k], rtol=1e-4, err_msg=k)
  # The rows in another order (a source paired with the wrong person): the identity loss moves by
  # far more than the 1e-4 above (a random F puts these faces close together: 1 - cos ~ 0.01).
  wrong = _step_metrics(defs, state, dataclasses.replace(base, source_identity="person"),
                        table[jnp.array([1, 2, 0])], x, y, key)  # fmt: skip
  assert abs(float(wrong["id_loss"]) / float(by_image["id_loss"]) - 1) > 0.02
  with pytest.raises(ValueError, match="table"):
    _step_metrics(defs, state, dataclasses.replace(base, source_identity="person"), None, x, y, key)
  with pytest.raises(ValueError, match="id_blur"):
    sim_train.LossConfig(source_identity="person", id_blur=1.5)
  with pytest.raises(ValueError, match="source_identity"):
    sim_train.LossConfig(source_identity="photo")


def test_smoke_run_with_person_identities_a_projection_discriminator_and_a_code_adversary(tmp_path):
  config = sim_config.get_config("smoke,bottleneck,person,cond_d,code_adv")
  assert config.loss.source_identity == "person"
  assert config.model.disc_projection and config.loss.mismatch == 1.0
  assert config.model.code_classes == 4 and config.loss.code_adversary == 1.0  # 4 generated people
  results = sim_train.train_and_evaluate(config, str(tmp_path))
  assert results["step"] == 2 and np.isfinite(results["self_l1"])
  metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  for k in ("d_mismatch", "code_ce", "code_confusion"):
    assert all(np.isfinite(m[k]) for m in metrics if "d_loss" in m), k
  config.model.code_classes = 3  # not one class per generated person
  with pytest.raises(ValueError, match="code_classes = 3"):
    sim_train.build(config, sharding.make_mesh(1), sim_train.load_data(config)[0])
  defs, state, restored = sim_train.restore(tmp_path)  # to swap: no training faces needed
  assert int(state.step) == 2 and restored.loss.source_identity == "person"
  assert restored.model.disc_projection


PROJ = dataclasses.replace(CFG, disc_projection=True)


def test_projection_discriminator_adds_the_identity_projection_to_each_patch(key):
  d = nn.build(lambda: simswap.MultiScaleDiscriminator(PROJ, rngs=nnx.Rngs(1)))
  x = jax.random.uniform(key, (3, *SHAPE))
  v = simswap.unit(jax.random.normal(jax.random.fold_in(key, 1), (3, 5)))
  out = jax.jit(d)(x, v)
  for (logits, feats), net in zip(out, d.nets, strict=True):
    h = np.asarray(feats[-1], np.float64)  # the last hidden features, [B, h, w, C]
    plain = np.asarray(jax.jit(net.out)(feats[-1])[..., 0], np.float64)
    w = np.asarray(net.embed.kernel[...], np.float64)  # [id_dim, C]
    ref = plain + (h * (np.asarray(v, np.float64) @ w)[:, None, None, :]).sum(-1)
    np.testing.assert_allclose(logits, ref, rtol=1e-4, atol=1e-5)
  # Another identity changes the logits, not the features (feature matching is unchanged).
  other = jax.jit(d)(x, v[::-1])
  assert float(jnp.abs(other[0][0][0] - out[0][0][0]).max()) > 1e-4
  np.testing.assert_array_equal(other[0][1][-1], out[0][1][-1])
  np.testing.assert_allclose(jax.jit(d.critic)(x, v), sum(lg.mean((1, 2)) for lg, _ in out),
                             rtol=1e-5)  # fmt: skip
  # Linear in v: judging with v[::-1] is out's logits moved by the projection of the change.
  moved = jax.jit(d.reproject)(out, v[::-1] - v)
  for m, (lg, _) in zip(moved, other, strict=True):
    np.testing.assert_allclose(m, lg, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="projection"):
    d(x)
  plain = nn.build(lambda: simswap.MultiScaleDiscriminator(CFG, rngs=nnx.Rngs(1)))
  np.testing.assert_array_equal(jax.jit(plain)(x, v)[0][0], jax.jit(plain)(x)[0][0])  # v ignored
  assert not hasattr(plain.nets[0], "embed")
  with pytest.raises(ValueError, match="disc_projection"):
    plain.reproject(plain(x), v)


def test_matching_aware_discriminator_loss_against_its_terms(key):
  """d_step with a projection D: reals judged with their own vectors, fakes with theirs, and real
  faces judged with another person's vector as fakes where the mismatch mask says so."""
  defs, state, g_tx, d_tx, x, v, same = _setup(key, PROJ)
  v_real = simswap.unit(jax.random.normal(jax.random.fold_in(key, 5), v.shape))
  fake = jax.jit(lambda s: jax.nn.sigmoid(sim_train.generator(defs, s)(x, v)))(state)
  mismatch = jnp.array([False, True, False, True])
  cfg = sim_train.LossConfig(mismatch=0.7)
  step = functools.partial(sim_train.d_step, defs=defs, d_tx=d_tx, cfg=cfg)
  _, terms = jax.jit(step)(state, x, fake, key, v_real=v_real, v_fake=v, mismatch=mismatch)
  d = jax.jit(sim_train.discriminator(defs, state))  # the parameters before the update
  real, fake_out, wrong = d(x, v_real), d(fake, v), d(x, v)
  hinge = sum(np.maximum(0, 1 - np.asarray(r)).mean() + np.maximum(0, 1 + np.asarray(f)).mean()
              for (r, _), (f, _) in zip(real, fake_out, strict=True))  # fmt: skip
  np.testing.assert_allclose(terms["d_hinge"], hinge, rtol=1e-5)
  per_example = sum(np.maximum(0, 1 + np.asarray(r)).mean((1, 2)) for r, _ in wrong)
  np.testing.assert_allclose(terms["d_mismatch"], per_example[[1, 3]].mean(), rtol=1e-5)
  np.testing.assert_allclose(terms["d_loss"], terms["d_hinge"] + 1e-5 * terms["gp"]
                             + 0.7 * terms["d_mismatch"], rtol=1e-6)  # fmt: skip
  with pytest.raises(ValueError, match="disc_projection"):
    sim_train.make_train_step(defs, g_tx, d_tx, cfg, augment.AugmentConfig())


CODE = dataclasses.replace(CFG, bottleneck=7, code_classes=3)


def test_code_adversary_terms_against_an_independent_cross_entropy_and_kl(key):
  """D's code classifier learns the targets' people from G's codes (cross-entropy in L_D); G pays
  code_adversary * KL(uniform || classifier(code)) for codes that tell them."""
  defs, state, g_tx, d_tx, x, v, same = _setup(key, CODE)
  g = jax.jit(lambda s, x, v: (lambda g: (g(x, v), g.decode(g.encode(x), v), g.encode(x)))(
    sim_train.generator(defs, s)))  # fmt: skip
  out, again, code = g(state, x, v)
  np.testing.assert_array_equal(out, again)  # __call__ is decode(encode(x))
  chex.assert_shape(code, (4, 7))
  y = jnp.array([0, 2, 1, 2])
  logits = np.asarray(jax.jit(sim_train.discriminator(defs, state).classify_code)(code), np.float64)
  logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  # D: the classifier's cross-entropy is added to the hinge and penalty terms.
  fake = jax.nn.sigmoid(out)
  step = functools.partial(sim_train.d_step, defs=defs, d_tx=d_tx, cfg=sim_train.LossConfig())
  _, terms = jax.jit(step)(state, x, fake, key, codes=code, y=y)
  np.testing.assert_allclose(terms["code_ce"], -logp[np.arange(4), y].mean(), rtol=1e-5)
  np.testing.assert_allclose(terms["code_acc"], (logits.argmax(1) == np.asarray(y)).mean())
  np.testing.assert_allclose(terms["d_loss"], terms["d_hinge"] + 1e-5 * terms["gp"]
                             + terms["code_ce"], rtol=1e-6)  # fmt: skip
  # G: the confusion term is KL(uniform || p) of the classifier on G's own code.
  cfg = sim_train.LossConfig(code_adversary=0.3)
  loss, t = jax.jit(lambda s: sim_train.g_terms(defs, s, s.g_params, x, v, same, key, cfg))(state)
  np.testing.assert_allclose(t["code_confusion"], (-np.log(3) - logp.mean(1)).mean(), rtol=1e-4)
  rest = 10 * (t["id_loss"] + t["rec_l1"] + t["fm"]) + t["g_adv"]
  np.testing.assert_allclose(loss, rest + 0.3 * t["code_confusion"], rtol=1e-5)
  # The confusion term reaches the encoder: its gradient moves the encoder's parameters.
  grad = jax.jit(jax.grad(lambda p: sim_train.g_terms(defs, state, p, x, v, same, key, cfg)[1][
    "code_confusion"]))(state.g_params)  # fmt: skip
  assert float(jnp.abs(grad["to_code"]["kernel"][...]).max()) > 0
  assert float(jnp.abs(grad["from_code"]["kernel"][...]).max()) == 0  # the decoder: untouched
  with pytest.raises(ValueError, match="code_classes"):
    sim_train.make_train_step(defs, g_tx, d_tx, cfg, augment.AugmentConfig())
  with pytest.raises(ValueError, match="bottleneck"):
    nnx.eval_shape(lambda: simswap.MultiScaleDiscriminator(
      dataclasses.replace(CFG, code_classes=3), rngs=nnx.Rngs(0)))  # fmt: skip


def test_pair_variant_trains_on_the_evaluated_pair_with_one_code_class_each():
  config = sim_config.get_config("bottleneck,person,code_adv,pair")
  assert tuple(config.people) == ("George_W_Bush", "Colin_Powell")
  assert config.model.code_classes == 2 and config.loss.code_adversary == 1.0
  assert sim_config.get_config("bottleneck,code_adv").model.code_classes == 5
  smoke = sim_config.get_config("smoke")
  smoke.people = ("person_3", "person_1")
  train, test = sim_train.load_data(smoke)
  all_train, _ = sim_train.load_data(sim_config.get_config("smoke"))
  assert train.names == ("person_3", "person_1") and set(np.unique(train.y)) == {0, 1}
  np.testing.assert_array_equal(train.x, all_train.x[np.isin(all_train.y, [3, 1])])
  assert len(test) > 0 and set(np.unique(test.y)) <= {0, 1}
