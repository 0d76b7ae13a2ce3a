"""Faces in photos and videos: alignment and its inverse, dlib detection, paste-back, video input
and output, landmark smoothing, the fixed split across every face network, and the swap entry
point. Needs the `faces` extra; the tests on real photos need ../shared/data/faces/lfw."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("cv2")
pytest.importorskip("imageio_ffmpeg")

from genjax.data import faces  # noqa: E402
from genjax.faces import align, blend, detect, mark, swap, video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LFW = faces.default_root("lfw")
needs_lfw = pytest.mark.skipif(not LFW.is_dir(), reason=f"no LFW photos at {LFW}")


def _photo(name: str) -> np.ndarray:
  from PIL import Image

  person = name.rsplit("_", 1)[0]
  with Image.open(LFW / person / name) as im:
    return np.asarray(im.convert("RGB"))


def _blobs(points: np.ndarray, shape) -> np.ndarray:
  """float32 image with a small Gaussian blob at each (x, y) point."""
  yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
  img = np.zeros(shape, np.float32)
  for x, y in points:
    img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
  return img


def _centroids(img: np.ndarray, points: np.ndarray, r: int = 6) -> np.ndarray:
  """Intensity centroid of img in a window of radius r around each point."""
  out = []
  for x, y in np.round(points).astype(int):
    win = img[y - r : y + r + 1, x - r : x + r + 1]
    yy, xx = np.mgrid[y - r : y + r + 1, x - r : x + r + 1]
    out.append([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])
  return np.asarray(out)


def test_similarity_recovers_a_known_transform_and_refuses_bad_points():
  rng = np.random.default_rng(0)
  src = rng.uniform(0, 100, (5, 2))
  ang, s, t = 0.3, 1.7, np.array([12.0, -4.0])
  rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
  m = align.similarity(src, src @ rot.T + t)
  np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
  np.testing.assert_allclose(m[:, 2], t, atol=1e-9)
  np.testing.assert_allclose(align.compose(align.invert(m), m), np.eye(2, 3), atol=1e-12)
  with pytest.raises(ValueError, match="coincide"):
    align.similarity(np.ones((5, 2)), src)
  with pytest.raises(ValueError, match=r"\[N, 2\]"):
    align.similarity(src[:, :1], src[:, :1])


def test_align_then_inverse_is_within_one_pixel():
  # Five landmarks where a face might be in a 250x250 photo: the template moved by a similarity.
  m_true = np.array([[1.3 * np.cos(0.2), -1.3 * np.sin(0.2), 61.0],
                     [1.3 * np.sin(0.2), 1.3 * np.cos(0.2), 48.0]])  # fmt: skip
  points = align.apply(m_true, align.template(100))
  photo = _blobs(points, (250, 250))
  crop, m = align.crop(photo, points, 100)
  np.testing.assert_allclose(_centroids(crop, align.template(100)), align.template(100), atol=1.0)
  back = align.warp(crop, align.invert(m), (250, 250), border="zero")
  np.testing.assert_allclose(_centroids(back, points), points, atol=1.0)
  np.testing.assert_allclose(
    align.apply(align.invert(m), align.apply(m, points)), points, atol=1e-9
  )


def test_identity_view_and_jax_warp_match_opencv():
  import jax.numpy as jnp

  x = np.random.default_rng(1).uniform(size=(2, 40, 40, 3)).astype(np.float32)
  m = align.identity_view_transform(40, 40)
  ours = np.asarray(align.warp_batch(jnp.asarray(x), m, (40, 40)))
  ref = np.stack([align.warp(v, m, (40, 40)) for v in x])
  np.testing.assert_allclose(ours[:, 3:-3, 3:-3], ref[:, 3:-3, 3:-3], atol=1e-4)


@needs_lfw
def test_detector_finds_the_face_of_a_real_photo_near_its_landmarks():
  photo = _photo("George_W_Bush_0001.jpg")
  found = detect.detect(photo)
  face = detect.nearest(found, (125, 125))
  assert face is not None and face.landmarks5.shape == (5, 2) and face.landmarks68.shape == (68, 2)
  left, top, right, bottom = face.box
  assert left < 125 < right and top < 125 < bottom  # LFW centres the person it names
  # The 5-point and 68-point eyes agree: dlib's 5 points are eye corners (68: 36, 39, 42, 45).
  eye_distance = np.linalg.norm(face.landmarks5[0] - face.landmarks5[2])
  corners68 = face.landmarks68[[45, 42, 36, 39]]
  assert np.linalg.norm(face.landmarks5[:4] - corners68, axis=1).max() < 0.15 * eye_distance
  # Equivariance: the landmarks of the photo shifted by (17, 9) are the landmarks shifted.
  shifted = np.zeros_like(photo)
  shifted[9:, 17:] = photo[:-9, :-17]
  moved = detect.nearest(detect.detect(shifted), (142, 134))
  np.testing.assert_allclose(moved.landmarks5, face.landmarks5 + [17, 9], atol=0.05 * eye_distance)


@needs_lfw
def test_detector_finds_two_faces_in_a_two_photo_collage():
  collage = np.concatenate([_photo("George_W_Bush_0001.jpg"), _photo("Colin_Powell_0001.jpg")], 1)
  found = detect.detect(collage)
  centres = sorted(f.center[0] for f in found if 40 < f.center[1] < 210)
  assert len(centres) >= 2 and centres[0] < 250 < centres[-1]
  assert swap.choose(collage, found, "largest").area == max(f.area for f in found)


def test_face_mask_is_zero_outside_the_hull_and_one_inside():
  pts = np.array([[30, 20], [70, 20], [80, 60], [50, 90], [20, 60]], float)
  hull = blend.hull_mask(pts, (100, 100))
  w = blend.face_mask(pts, (100, 100))
  assert np.all(w[hull == 0] == 0) and w.max() == pytest.approx(1.0) and w.min() == 0
  assert w[50, 50] == pytest.approx(1.0) and 0 < w[hull > 0].mean() < 1


@pytest.mark.parametrize("how", ["alpha", "poisson"])
def test_paste_back_leaves_pixels_outside_the_mask_unchanged(how):
  rng = np.random.default_rng(2)
  photo = rng.uniform(size=(200, 220, 3)).astype(np.float32)
  m_true = np.array([[1.1, 0.1, 40.0], [-0.1, 1.1, 30.0]])
  l5 = align.apply(m_true, align.template(100))
  _, m = align.crop(photo, l5, 100)
  # A face-shaped set of 68 points inside the crop, mapped into the photo.
  t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
  l68 = align.apply(align.invert(m), np.stack([50 + 35 * np.cos(t), 55 + 40 * np.sin(t)], 1))
  face = rng.uniform(size=(100, 100, 3)).astype(np.float32)
  out = blend.paste_back(photo, face, m, l68, blend=how)
  outside = blend.hull_mask(l68, photo.shape[:2]) == 0
  assert np.array_equal(out[outside], photo[outside])  # bit-identical
  assert np.abs(out[~outside] - photo[~outside]).mean() > 0.02
  assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
  with pytest.raises(ValueError, match="blend"):
    blend.paste_back(photo, face, m, l68, blend="laplacian")


def test_landmark_smoother_averages_jitter_and_restarts_at_a_jump():
  rng = np.random.default_rng(3)
  base5, base68 = align.template(100), rng.uniform(20, 80, (68, 2))
  smooth = swap.LandmarkSmoother(0.7)
  raw, out = [], []
  for _ in range(200):
    noise = rng.normal(0, 1.0, (5, 2))
    raw.append(base5 + noise)
    out.append(smooth(base5 + noise, base68)[0])
  assert np.std(np.asarray(out)[20:] - base5) < 0.5 * np.std(np.asarray(raw)[20:] - base5)
  jumped = smooth(base5 + 60, base68 + 60)[0]  # a cut: no averaging with the old face
  np.testing.assert_allclose(jumped, base5 + 60)
  with pytest.raises(ValueError, match="smoothing"):
    swap.SwapOptions(smoothing=1.0)


@pytest.mark.parametrize("size", [(64, 48), (51, 37)])
def test_video_round_trip_keeps_frame_count_size_and_fps(tmp_path, size):
  w, h = size
  yy, xx = np.mgrid[0:h, 0:w] / 20.0
  smooth = np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1)  # a smooth picture
  frames = video.ken_burns(np.round(127.5 + 100 * smooth).astype(np.uint8), 9)
  path = video.write_video(tmp_path / "clip.mp4", frames, fps=12.5)
  media = video.open_media(path)
  assert (media.kind, media.size, media.num_frames, media.fps) == ("video", (w, h), 9, 12.5)
  back = list(video.frames(media))
  assert len(back) == 9 and back[0].shape == (h, w, 3)
  assert np.abs(np.asarray(back, float) - np.asarray(frames, float)).mean() < 4  # lossy codec
  assert video.video_comment(path) == mark.SYNTHETIC_NOTE
  gif = video.write_video(tmp_path / "clip.gif", frames, fps=10)
  assert video.open_media(gif).num_frames == 9
  (tmp_path / "notes.txt").write_text("not a video")
  with pytest.raises(ValueError, match="not a photo"):
    video.open_media(tmp_path / "notes.txt")


def test_open_media_describes_photos_and_frame_folders(tmp_path):
  from PIL import Image

  for i in range(3):
    Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(tmp_path / f"f{i:02d}.png")
  media = video.open_media(tmp_path)
  assert (media.kind, media.num_frames, media.size) == ("frames", 3, (30, 20))
  assert [int(f[0, 0, 0]) for f in video.frames(media)] == [0, 40, 80]
  assert video.open_media(tmp_path / "f01.png").kind == "photo"
  with pytest.raises(FileNotFoundError):
    video.open_media(tmp_path / "missing.mp4")


def test_a_frame_without_a_face_passes_unchanged():
  frame = np.full((120, 160, 3), 128, np.uint8)
  out, n, swapped = swap.swap_frame(frame, lambda x: 1 - x, 100, swap.SwapOptions())
  assert out is frame and n == 0 and not swapped


@needs_lfw
def test_the_held_out_photos_are_seen_by_no_network_trained_here():
  from experiments.aae import train as b_train
  from experiments.aae.configs import aae
  from experiments.faceswap import train as a_train
  from experiments.faceswap.configs import shared_encoder
  from experiments.identity import train as id_train
  from experiments.identity.configs import identity
  from experiments.simswap import train as c_train
  from experiments.simswap.configs import simswap

  pair = ("George_W_Bush", "Colin_Powell")
  held = {f.name for p in pair for f in (LFW / p).glob("*.jpg") if faces.is_held_out(f.name)}
  assert len(held) >= 60  # 47 and 25 photos
  a_tr, a_te, _ = a_train.load_pair(shared_encoder.get_config())
  trained = {"a": a_tr.files, "b": b_train.load_data(aae.get_config())[0].files,
             "c": c_train.load_data(simswap.get_config())[0].files}  # fmt: skip
  for variant in ("default", "evaluator"):
    config = identity.get_config(variant)
    trained[f"identity {variant}"] = id_train.split(config, id_train.load_data(config))[0].files
  for name, files in trained.items():
    assert len(files) > 500 and not held & set(files), name
  # A second pair, swapped by (c) trained on it alone: its held-out photos are kept from that run
  # and from every network above (the split is a function of the file name, for every person).
  second = ("Tony_Blair", "Donald_Rumsfeld")
  held2 = {f.name for p in second for f in (LFW / p).glob("*.jpg") if faces.is_held_out(f.name)}
  config = simswap.get_config("pair")
  config.people = second
  trained["c, second pair"] = c_train.load_data(config)[0].files
  assert len(held2) >= 20 and len(trained["c, second pair"]) > 200  # 15 + 12 of 265 photos
  for name, files in trained.items():
    assert not held2 & set(files), name
  # The test faces are the held-out photos, less those in which dlib finds no face (one here).
  assert set(a_te.files) <= held and len(held - set(a_te.files)) <= 2


def test_the_swap_entry_point_on_a_tiny_generated_video(tmp_path):
  env = dict(os.environ, XLA_FLAGS="")  # one device, as a user's run
  run = lambda *args: subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True,
                                     text=True, check=False, env=env)  # fmt: skip
  workdir = tmp_path / "a"
  r = run("scripts/train.py", "--config", "experiments/faceswap/configs/shared_encoder.py:smoke",
          "--workdir", str(workdir))  # fmt: skip
  assert r.returncode == 0, r.stderr[-2000:]
  if LFW.is_dir():
    photo = _photo("George_W_Bush_0002.jpg")[::2, ::2]  # a small real face
  else:  # no photos: a frame with no face at all still exercises the pipeline
    photo = np.full((125, 125, 3), 90, np.uint8)
  clip = video.write_video(tmp_path / "in.mp4", video.ken_burns(photo, 6, blank=(3,)), fps=8)
  out = tmp_path / "out.mp4"
  r = run("scripts/swap.py", "--model", "a", "--workdir", str(workdir), "--input", str(clip),
          "--out", str(out), "--source", "1")  # fmt: skip
  assert r.returncode == 0, r.stderr[-2000:]
  media = video.open_media(out)
  assert (media.num_frames, media.size, media.fps) == (6, (125, 125), 8.0)
  assert video.video_comment(out) == mark.SYNTHETIC_NOTE
  swapped = 5 if LFW.is_dir() else 0
  assert f"6 frames: {swapped} swapped, {6 - swapped} without a face" in r.stdout
  frame = next(video.frames(media))
  assert frame[-8:, :40].min() < 40 and frame[-8:, :40].max() > 200  # the visible mark
  r = run("scripts/swap.py", "--model", "a", "--workdir", str(workdir), "--input",
          str(tmp_path / "nothing.mp4"), "--out", str(out), "--source", "1")  # fmt: skip
  assert r.returncode != 0 and "no such photo" in r.stderr
