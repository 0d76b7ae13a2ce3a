"""Face data: the held-out split, augmentation, LAB colour, synthetic marks, face losses, AdaIN."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import losses, nn
from genjax.data import faces
from genjax.faces import augment, blend, mark


def test_mock_faces_have_shapes_labels_and_identities():
  ds = faces.mock(12, num_ids=3)
  assert ds.x.shape == (12, 100, 100, 3) and ds.x.dtype == np.uint8
  assert ds.names == ("person_0", "person_1", "person_2")
  assert len(ds.of("person_1")) == 4 and np.all(ds.of("person_1").y == 1)
  x = ds.images()
  assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0


def test_held_out_split_is_a_function_of_the_file_name_alone():
  names = [f"Person_{k}_{i:04d}.jpg" for k in range(3) for i in range(1, 400)]
  held = np.array([faces.is_held_out(n) for n in names])
  assert 0.07 < held.mean() < 0.13  # about one in ten
  # The same file is held out whichever folder it sits in (an LFW photo and its LFW3D crop).
  assert [faces.is_held_out(f"/lfw/x/{n}") for n in names[:50]] == list(held[:50])
  ds = faces.mock(60, num_ids=3)
  tr, te = faces.split_held_out(ds)
  assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(ds)
  assert all(faces.is_held_out(ds.files[i]) for i in te)
  assert not any(faces.is_held_out(ds.files[i]) for i in tr)
  sub = faces.people(ds, ("person_2", "person_0"))  # a subset holds out the same files
  assert sub.names == ("person_2", "person_0") and set(sub.y) == {0, 1}
  assert {sub.files[i] for i in faces.split_held_out(sub)[1]} == {
    ds.files[i] for i in te if ds.y[i] in (0, 2)
  }


def test_split_by_identity_separates_identities():
  y = np.repeat(np.arange(6), [10, 3, 2, 1, 20, 5])
  tr, te = faces.split_by_identity(y, num_test_ids=2, seed=1, keep_train=[4])
  assert len(np.intersect1d(y[tr], y[te])) == 0 and len(set(y[te])) == 2 and 4 in set(y[tr])
  assert len(tr) + len(te) == len(y)


def test_augment_keeps_shapes_and_range_and_is_identity_without_jitter(key):
  x = jnp.asarray(faces.mock(4).images())
  cfg = augment.AugmentConfig()
  x_in, x_target = jax.jit(augment.augment, static_argnums=2)(key, x, cfg)
  chex.assert_shape([x_in, x_target], x.shape)
  for v in (x_in, x_target):
    assert v.dtype == x.dtype and float(v.min()) >= 0.0 and float(v.max()) <= 1.0
  assert float(jnp.abs(x_in - x_target).mean()) > 1e-3  # the warp touches the input only
  none = augment.AugmentConfig(flip=False, rotate=0, scale=0, shift=0, warp=0, brightness=0,
                             contrast=0, saturation=0)  # fmt: skip
  x_in, x_target = jax.jit(augment.augment, static_argnums=2)(key, x, none)
  np.testing.assert_allclose(x_in, x, atol=1e-6)
  np.testing.assert_allclose(x_target, x, atol=1e-6)


def test_flip_mirrors_the_target_exactly(key):
  x = jnp.asarray(faces.mock(1).images())
  flip = augment.AugmentConfig(rotate=0, scale=0, shift=0, warp=0, brightness=0, contrast=0,
                             saturation=0)  # fmt: skip
  aug = jax.jit(augment.augment, static_argnums=2)
  outs = [aug(jax.random.fold_in(key, i), x, flip)[1][0] for i in range(8)]
  flipped = [bool(jnp.allclose(o, x[0, :, ::-1], atol=1e-6)) for o in outs]
  same = [bool(jnp.allclose(o, x[0], atol=1e-6)) for o in outs]
  assert all(f or s for f, s in zip(flipped, same, strict=True)) and any(flipped) and any(same)


def test_lab_round_trip_and_known_values():
  rgb = np.random.default_rng(0).uniform(size=(50, 3))
  np.testing.assert_allclose(blend.lab_to_rgb(blend.rgb_to_lab(rgb)), rgb, atol=1e-9)
  np.testing.assert_allclose(blend.rgb_to_lab(np.ones(3)), [100, 0, 0], atol=1e-9)
  np.testing.assert_allclose(blend.rgb_to_lab(np.zeros(3)), [0, 0, 0], atol=1e-9)
  # sRGB red in CIELAB (D65): L* 53.24, a* 80.09, b* 67.20.
  np.testing.assert_allclose(blend.rgb_to_lab(np.array([1.0, 0, 0])), [53.24, 80.09, 67.20],
                             atol=0.02)  # fmt: skip


def test_match_color_moves_lab_statistics_to_the_reference():
  rng = np.random.default_rng(1)
  src = rng.uniform(0.2, 0.6, (20, 20, 3))
  ref = rng.uniform(0.3, 0.8, (20, 20, 3)) * np.array([1.0, 0.8, 0.6])
  out = blend.match_color(src, ref, np.ones((20, 20)))
  lab_out, lab_ref = blend.rgb_to_lab(out), blend.rgb_to_lab(ref)
  np.testing.assert_allclose(lab_out.mean((0, 1)), lab_ref.mean((0, 1)), atol=0.05)
  np.testing.assert_allclose(lab_out.std((0, 1)), lab_ref.std((0, 1)), rtol=0.02)


def test_augment_moves_a_mask_with_the_target_geometry(key):
  x = jnp.asarray(faces.mock(4).images())
  m = jnp.asarray(faces.mock(4).images()[..., 0] > 0.5, jnp.float32)
  no_colour = augment.AugmentConfig(brightness=0, contrast=0, saturation=0, warp=0.0)
  _, target, m_t = jax.jit(augment.augment, static_argnums=2)(key, x, no_colour, m)
  chex.assert_shape(m_t, m.shape)
  # With no colour jitter the target's first channel is the image's, moved as the mask is.
  xm = jnp.concatenate([x, m[..., None]], -1)
  _, both = jax.jit(augment.augment, static_argnums=2)(key, xm, no_colour)
  np.testing.assert_allclose(both[..., 3], m_t, atol=1e-6)
  np.testing.assert_allclose(both[..., :3], target, atol=1e-6)


def test_synthetic_png_has_visible_mark_and_metadata(tmp_path):
  from PIL import Image

  img = np.full((100, 100, 3), 0.5, np.float32)
  path = mark.save_synthetic_png(tmp_path / "swap.png", img)
  with Image.open(path) as im:
    assert im.text["synthetic"] == "true" and "SYNTHETIC" in im.text["Description"]
    pixels = np.asarray(im, np.float32) / 255
  bottom = pixels[-12:, :60]
  assert bottom.min() < 0.05 and bottom.max() > 0.95  # black band with white text
  np.testing.assert_allclose(pixels[:80], img[:80], atol=1 / 255)


# --- Losses ---------------------------------------------------------------------------------------


def _ssim_reference(x, y, size=11, sigma=1.5, c1=1e-4, c2=9e-4):
  """Direct window-by-window SSIM in NumPy (float64)."""
  t = np.arange(size) - (size - 1) / 2
  g = np.exp(-0.5 * (t / sigma) ** 2)
  w = np.outer(g, g) / np.outer(g, g).sum()
  b, h, wd, c = x.shape
  out = np.zeros(b)
  for n in range(b):
    vals = []
    for ch in range(c):
      for i in range(h - size + 1):
        for j in range(wd - size + 1):
          px, py = x[n, i : i + size, j : j + size, ch], y[n, i : i + size, j : j + size, ch]
          mx, my = (w * px).sum(), (w * py).sum()
          vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
          cxy = (w * (px - mx) * (py - my)).sum()
          vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    out[n] = np.mean(vals)
  return out


def test_ssim_and_dssim_match_a_direct_computation():
  rng = np.random.default_rng(3)
  x = rng.uniform(size=(2, 14, 15, 3))
  y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
  got = losses.ssim(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  np.testing.assert_allclose(got, _ssim_reference(x, y), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(losses.dssim(jnp.asarray(x), jnp.asarray(x)), 0.0, atol=1e-6)
  d = losses.dssim(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  np.testing.assert_allclose(d, (1 - _ssim_reference(x, y)) / 2, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="H, W >= 11"):
    losses.ssim(jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 8, 8, 3)))


def test_dssim_gradient_matches_finite_differences(key):
  k1, k2, k3 = jax.random.split(key, 3)
  x, y = jax.random.uniform(k1, (2, 13, 14, 3)), jax.random.uniform(k2, (2, 13, 14, 3))
  v = jax.random.normal(k3, x.shape)
  f = lambda x: losses.dssim(x, y).sum()
  eps = 1e-2
  fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
  np.testing.assert_allclose(jnp.vdot(jax.grad(f)(x), v), fd, rtol=2e-2)


def test_identity_loss_range_zero_for_equal_and_two_for_opposite(key):
  v = jax.random.normal(key, (16, 32))
  w = jax.random.normal(jax.random.fold_in(key, 1), (16, 32))
  loss = losses.identity_loss(v, w)
  assert loss.shape == (16,) and float(loss.min()) >= 0 and float(loss.max()) <= 2
  np.testing.assert_allclose(losses.identity_loss(v, 3.0 * v), 0.0, atol=1e-6)
  np.testing.assert_allclose(losses.identity_loss(v, -v), 2.0, atol=1e-6)
  ref = 1 - (np.asarray(v) * np.asarray(w)).sum(1) / (
    np.linalg.norm(np.asarray(v), axis=1) * np.linalg.norm(np.asarray(w), axis=1)
  )
  np.testing.assert_allclose(loss, ref, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="shapes differ"):
    losses.identity_loss(v, w[:, :8])


def test_feature_matching_is_mean_abs_difference_summed_over_layers(key):
  a = [jax.random.normal(key, (3, 4, 4, 8)), jax.random.normal(key, (3, 2, 2, 16))]
  b = [jnp.zeros((3, 4, 4, 8)), jnp.ones((3, 2, 2, 16))]
  ref = sum(
    np.abs(np.asarray(p) - np.asarray(q)).reshape(3, -1).mean(1) for p, q in zip(a, b, strict=True)
  )
  np.testing.assert_allclose(losses.feature_matching(a, b), ref, rtol=1e-6)
  np.testing.assert_allclose(losses.feature_matching(a, a), 0.0)
  with pytest.raises(ValueError, match="equally long"):
    losses.feature_matching(a, b[:1])


def test_uniform_confusion_is_the_kl_from_uniform_and_its_gradient(key):
  logits = 2.0 * jax.random.normal(key, (6, 5))
  out = losses.uniform_confusion(logits)
  lg = np.asarray(logits, np.float64)
  p = np.exp(lg - lg.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  np.testing.assert_allclose(out, (0.2 * np.log(0.2 / p)).sum(1), rtol=1e-5)  # KL(u || p)
  np.testing.assert_allclose(losses.uniform_confusion(jnp.full((2, 5), 3.0)), 0.0, atol=1e-6)
  assert float(out.min()) > 0
  # Its gradient against central finite differences along a random direction (float64 in NumPy).
  f = lambda z: losses.uniform_confusion(z).sum()
  kl = lambda z: (0.2 * (np.log(0.2) - (z - np.log(np.exp(z).sum(1, keepdims=True))))).sum()
  d = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (6, 5)), np.float64)
  fd = (kl(lg + 1e-5 * d) - kl(lg - 1e-5 * d)) / 2e-5
  np.testing.assert_allclose(jnp.vdot(jax.grad(f)(logits), d), fd, rtol=1e-4)
  with pytest.raises(ValueError, match=r"\[B, K\]"):
    losses.uniform_confusion(logits[0])


def test_adain_sets_per_channel_mean_and_std(key):
  x = 3.0 * jax.random.normal(key, (2, 6, 5, 4)) + 1.0
  scale = jnp.array([[0.5, 2.0, 1.0, 3.0], [1.5, 0.1, 4.0, 1.0]])
  shift = jnp.array([[0.0, -1.0, 2.0, 0.5], [1.0, 1.0, -3.0, 0.0]])
  y = np.asarray(nn.adain(x, scale, shift, eps=1e-5), np.float64)
  np.testing.assert_allclose(y.mean(axis=(1, 2)), shift, atol=1e-5)
  var = np.asarray(x, np.float64).var(axis=(1, 2))
  want_std = np.asarray(scale) * np.sqrt(var / (var + 1e-5))  # exact, eps included
  np.testing.assert_allclose(y.std(axis=(1, 2)), want_std, rtol=1e-5)
  np.testing.assert_allclose(y.std(axis=(1, 2)), scale, rtol=1e-4)
  with pytest.raises(ValueError, match="adain"):
    nn.adain(x, scale[:, :2], shift)
  layer = nn.AdaIN(4, 8, rngs=nnx.Rngs(0))
  out = layer(x, jnp.ones((2, 8)))
  chex.assert_shape(out, x.shape)
  gamma, beta = jnp.split(layer.proj(jnp.ones((2, 8))), 2, axis=-1)
  np.testing.assert_allclose(out.mean(axis=(1, 2)), beta, atol=1e-5)


def test_tfds_image_folder_reader_gives_the_pil_readers_faces_and_labels(tmp_path, monkeypatch):
  from PIL import Image

  monkeypatch.delenv("GENJAX_TFDS_DIR", raising=False)  # no array cache: both readers decode
  ds = faces.mock(10, num_ids=3, size=40)
  u8 = lambda i: np.round(np.asarray(ds.images(i)) * 255).astype(np.uint8)
  for split, keep in (("crops", slice(None)), ("photos", slice(0, 4))):  # ImageFolder's splits
    for i in range(len(ds))[keep]:
      person = tmp_path / split / f"person_{ds.y[i]}"
      person.mkdir(parents=True, exist_ok=True)
      Image.fromarray(u8(i)).save(person / f"{i:03d}.jpg", quality=90)
  (tmp_path / "crops" / "person_9").mkdir()  # a label of no split: no images
  (tmp_path / "photos" / "person_7").mkdir()
  Image.fromarray(u8(0)).save(tmp_path / "photos" / "person_7" / "x.jpg")
  pil = faces.load(str(tmp_path / "crops"), size=32, min_images=2)
  tfd = faces.load(str(tmp_path / "crops"), size=32, min_images=2, reader="tfds")
  assert pil.names == tfd.names == ("person_0", "person_1", "person_2")
  np.testing.assert_array_equal(tfd.y, pil.y)
  # TensorFlow's JPEG decoder is not PIL's: a few levels apart (on 380 LFW3D crops: max 5, mean 1.0).
  diff = np.abs(tfd.x.astype(int) - pil.x.astype(int))
  assert tfd.x.shape == pil.x.shape and diff.max() <= 8 and diff.mean() < 2
  with pytest.raises(ValueError, match="reader"):
    faces.load(str(tmp_path / "crops"), reader="cv2")


def test_face_weighted_keeps_the_face_and_scales_the_error_off_it(key):
  x_hat, target = jax.random.uniform(key, (2, 2, 6, 6, 3))
  region = jnp.zeros((2, 6, 6)).at[:, 1:4, 2:5].set(1.0)
  y = np.asarray(losses.face_weighted(x_hat, target, region, 0.2))
  face = np.asarray(region, bool)
  np.testing.assert_allclose(y[face], np.asarray(x_hat)[face], rtol=1e-6)
  np.testing.assert_allclose(y[~face] - np.asarray(target)[~face],
                             0.2 * np.asarray(x_hat - target)[~face], rtol=1e-5, atol=1e-7)  # fmt: skip
  np.testing.assert_allclose(losses.face_weighted(x_hat, target, region, 1.0), x_hat, rtol=1e-6)


def test_blur_is_scipys_gaussian_filter_with_nearest_edges():
  from scipy import ndimage

  x = np.random.default_rng(0).uniform(size=(2, 23, 17, 3)).astype(np.float32)
  for sigma in (0.7, 1.5, 3.0):
    want = ndimage.gaussian_filter(x.astype(np.float64), (0, sigma, sigma, 0), mode="nearest",
                                   truncate=4.0)  # fmt: skip
    np.testing.assert_allclose(jax.jit(augment.blur, static_argnums=1)(x, sigma), want, atol=1e-6)
  assert augment.blur(x, 0.0) is x
  np.testing.assert_allclose(augment.blur_matrix(9, 2.0).sum(1), 1.0, rtol=1e-12)  # keeps constants
