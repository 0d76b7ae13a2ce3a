"""The dlib-based face-swap evaluation: landmark error, the match / top-1 rules, descriptors of a
real photo, and the evaluation loop on a tiny pair with the two baselines."""

import numpy as np
import pytest

pytest.importorskip("dlib")

from genjax.data import faces  # noqa: E402
from genjax.evaluate import face_identity as fid  # noqa: E402
from genjax.faces import align, detect  # noqa: E402

LFW = faces.default_root("lfw")
needs_lfw = pytest.mark.skipif(not LFW.is_dir(), reason=f"no LFW photos at {LFW}")


def test_landmark_error_is_zero_for_equal_points_and_scale_free():
  rng = np.random.default_rng(0)
  ref = rng.uniform(0, 100, (68, 2))
  assert fid.landmark_error(ref, ref) == 0.0
  moved = ref + np.array([3.0, 4.0])  # every point 5 px off
  assert fid.landmark_error(moved, ref) == pytest.approx(5.0 / fid.inter_ocular(ref))
  assert fid.landmark_error(2 * moved, 2 * ref) == pytest.approx(fid.landmark_error(moved, ref))


def test_scores_summary_applies_the_match_and_top1_rules():
  s = fid.Scores(
    found=np.array([True, True, True, False]),
    d_source=np.array([0.5, 0.5, 0.7, np.nan]),
    d_target=np.array([0.7, 0.55, 0.8, np.nan]),
    nearest=np.array([3, 1, 3, -1]),
    landmark_error=np.array([0.1, 0.2, 0.3, np.nan]),
  )
  out = s.summary(source_label=3)
  # Only the first is within 0.6 of the source and 0.6 or more from the target; no face = a miss.
  assert out["match"] == 0.25 and out["within_source"] == 0.5 and out["beyond_target"] == 0.5
  assert out["top1"] == 0.5 and out["found"] == 0.75 and out["n"] == 4
  assert out["landmark_error"] == pytest.approx(0.2)
  np.testing.assert_array_equal(s.matches(), [True, False, False, False])


def test_match_interval_against_the_binomial_and_keeps_a_photos_seeds_together():
  from genjax.evaluate import face_swaps

  # One seed, 400 photos, half matched: the normal approximation of the binomial, p +- 1.96 se.
  hits = np.arange(400) % 2 == 0
  low, high = face_swaps.match_interval(hits)
  se = np.sqrt(0.25 / 400)
  assert low == pytest.approx(0.5 - 1.96 * se, abs=0.006)
  assert high == pytest.approx(0.5 + 1.96 * se, abs=0.006)
  assert face_swaps.match_interval(hits) == (low, high)  # same seed, same interval
  # Two seeds that disagree on every photo: each photo's share is 0.5, so resampling photos (a
  # photo's seeds together) cannot move the mean; resampling cells independently would.
  assert face_swaps.match_interval(np.stack([hits, ~hits])) == (0.5, 0.5)
  assert face_swaps.match_interval(np.zeros((3, 25), bool)) == (0.0, 0.0)


def _frontal_landmarks(nose_x: float = 0.0) -> np.ndarray:
  """68 points of a level face: jaw ends at x = -1, 1; eye corners 36 and 45 at x = -0.7, 0.7."""
  p = np.zeros((68, 2))
  p[0], p[16], p[30] = (-1.0, 0.0), (1.0, 0.0), (nose_x, 0.3)
  p[36:42] = np.linspace([-0.7, -0.5], [-0.3, -0.5], 6)  # left eye, centre (-0.5, -0.5)
  p[42:48] = np.array([[x, -0.5] for x in (0.3, 0.4, 0.6, 0.7, 0.6, 0.4)])  # right eye, 45 outer
  return p


def test_head_pose_reads_yaw_roll_and_size_from_the_landmarks():
  assert fid.head_pose(_frontal_landmarks()) == pytest.approx(
    {"yaw": 0.0, "roll": 0.0, "eyes": 1.4}
  )
  # Nose at x = 0.5: 1.5 from the left jaw end, 0.5 from the right, (1.5 - 0.5) / 2.
  turned = _frontal_landmarks(nose_x=0.5)
  assert fid.head_pose(turned)["yaw"] == pytest.approx(0.5)
  # Rotating by 30 degrees and doubling the size leaves yaw, turns the eye line, doubles the eyes.
  c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
  moved = 2 * turned @ np.array([[c, s], [-s, c]]) + np.array([50.0, 80.0])
  assert fid.head_pose(moved) == pytest.approx({"yaw": 0.5, "roll": 30.0, "eyes": 2.8})
  assert fid.head_pose(_frontal_landmarks(nose_x=-0.5))["yaw"] == pytest.approx(-0.5)  # other way


def test_rank_correlation_against_scipy_with_ties():
  stats = pytest.importorskip("scipy.stats")
  from genjax.evaluate import face_swaps

  rng = np.random.default_rng(1)
  x = rng.normal(size=60)
  share = np.clip(np.round(4 * (0.5 + 0.15 * x + 0.3 * rng.normal(size=60))) / 4, 0, 1)  # ties
  rho, p = face_swaps.rank_correlation(x, share)
  ref = stats.spearmanr(x, share)
  assert rho == pytest.approx(ref.statistic, abs=1e-12)
  # A case where both the permutation p and scipy's t approximation are resolved and should agree.
  assert 0.001 < ref.pvalue < 0.2
  assert p == pytest.approx(ref.pvalue, abs=0.02)
  assert face_swaps.rank_correlation(x, share) == (rho, p)  # same seed, same p
  assert face_swaps.rank_correlation(x, 2 * x + 1)[0] == pytest.approx(1.0)
  assert np.isnan(face_swaps.rank_correlation(x, np.zeros(60))[0])


def test_class_means_average_each_class():
  d = np.arange(12.0).reshape(4, 3)
  means = fid.class_means(d, np.array([0, 0, 2, 2]), 3)
  np.testing.assert_allclose(means[0], d[:2].mean(0))
  assert np.isnan(means[1]).all()


@needs_lfw
def test_dlib_tells_two_people_apart_on_real_photos():
  from PIL import Image

  def desc(name):
    with Image.open(LFW / name.rsplit("_", 1)[0] / name) as im:
      photo = np.asarray(im.convert("RGB"))
    face, v = fid.describe(photo)
    assert face is not None and v.shape == (128,)
    return photo, face, v

  p1, f1, b1 = desc("George_W_Bush_0001.jpg")
  _, _, b2 = desc("George_W_Bush_0002.jpg")
  _, _, c1 = desc("Colin_Powell_0001.jpg")
  assert np.linalg.norm(b1 - b2) < fid.SAME_PERSON < np.linalg.norm(b1 - c1)
  # The aligned crop of the face, as a tight crop, is still the same person.
  crop, _ = align.crop(p1, f1.landmarks5, 150)
  assert np.linalg.norm(fid.crop_descriptor(crop) - b1) < fid.SAME_PERSON
  # The scores of the unchanged photo: found, its own person, no landmark error.
  s = fid.score([p1], [f1], source_mean=c1, target_mean=b1, gallery=np.stack([b1, c1]))
  assert s.found[0] and s.nearest[0] == 0 and s.landmark_error[0] == pytest.approx(0.0, abs=1e-9)
  assert s.d_target[0] == pytest.approx(0.0, abs=1e-6) and detect.descriptor(p1, f1).shape == (128,)


@needs_lfw
def test_the_evaluation_loop_scores_baselines_and_a_model_on_a_tiny_pair(monkeypatch):
  from genjax.evaluate import face_swaps

  pair = ("George_W_Bush", "Colin_Powell")
  few = {p: face_swaps.photos(p, held_out=True)[:3] for p in pair}
  means = {p: np.mean([detect.descriptor(q.pixels, q.face) for q in few[p]], 0) for p in pair}
  monkeypatch.setattr(face_swaps, "photos", lambda p, held_out, root=None: few[p])
  monkeypatch.setattr(face_swaps, "person_mean", lambda p, root=None: means[p])
  monkeypatch.setattr(face_swaps, "gallery", lambda: (np.stack([means[p] for p in pair]), pair))
  keep = lambda source: ((lambda crops: crops), 100)  # a "model" that returns the face it is given
  rows, figures = face_swaps.evaluate(pair, {"unchanged": [keep, keep]}, figure_photos=2)
  assert set(rows) == {"copy target", "paste source", "unchanged"}
  copy, paste, model = (rows[k]["mean"]["both"] for k in rows)
  assert copy["match"] == 0 and copy["face_change"] == 0 and copy["landmark_error"] == 0
  assert paste["match"] > 0.5 and paste["top1"] > 0.5 and paste["face_change"] > 0.02
  # Redrawing the face with itself moves no identity and changes the face by resampling only.
  assert model["match"] == 0 and model["face_change"] < 0.02 and model["self_error"] < 0.02
  assert len(rows["unchanged"]["seeds"]) == 2 and rows["unchanged"]["sd"]["both"]["match"] == 0
  assert set(figures) == {"before_after_George_W_Bush_to_Colin_Powell",
                          "before_after_Colin_Powell_to_George_W_Bush"}  # fmt: skip
  grid = figures["before_after_George_W_Bush_to_Colin_Powell"]
  assert grid.shape == (3 * 180, 2 * 180, 3)  # photo, paste source, the model; two photos
  assert "| copy target | 1 | 0.0% [0.0, 0.0] |" in face_swaps.markdown(rows)
  # Per photo and seed, the match behind each share, and the interval of the share.
  d = "George_W_Bush->Colin_Powell"
  assert rows["unchanged"]["photos"][d]["file"] == [p.file for p in few["George_W_Bush"]]
  assert np.shape(rows["unchanged"]["photos"][d]["match"]) == (2, 3)
  assert rows["unchanged"]["interval"][d] == [0.0, 0.0]
  paste_hits = np.mean(rows["paste source"]["photos"][d]["match"])
  assert paste_hits == pytest.approx(rows["paste source"]["mean"][d]["match"])
  low, high = rows["paste source"]["interval"][d]
  assert low <= paste_hits <= high
  # The distances behind each match: an unchanged photo is near its own person's mean.
  copy = rows["copy target"]["photos"][d]
  assert np.shape(copy["d_target"]) == (1, 3) and max(copy["d_target"][0]) < fid.SAME_PERSON
  d_s, d_t = (
    np.array(rows["paste source"]["photos"][d][k], float) for k in ("d_source", "d_target")
  )
  match = (d_s < fid.SAME_PERSON) & (d_t >= fid.SAME_PERSON)  # NaN (no face) is no match
  np.testing.assert_array_equal(match, rows["paste source"]["photos"][d]["match"])
  # How each target's face sits, from the landmarks the evaluation found in it.
  pose = rows["unchanged"]["photos"][d]["pose"]
  assert pose["yaw"] == [fid.head_pose(p.face.landmarks68)["yaw"] for p in few["George_W_Bush"]]
  assert all(40 < e < 120 for e in pose["eyes"])  # LFW's 250 x 250 photos, the face in the middle
