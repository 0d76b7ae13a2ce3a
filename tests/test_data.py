"""Data: clear errors for missing or corrupted files, deterministic batching, real Fashion-MNIST if present."""

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from genjax.data import batching
from genjax.data import tfds as data
from genjax.train import sharding

SHARED = Path(
  os.environ.get("GENJAX_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def test_missing_folder_is_a_clear_error(tmp_path):
  with pytest.raises(data.DataError, match="does not exist.*GENJAX_DATA_DIR"):
    data.check_manual_dir(tmp_path / "nowhere")


def test_missing_file_is_a_clear_error(tmp_path):
  with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz is missing"):
    data.check_manual_dir(tmp_path)


def test_corrupted_file_is_a_clear_error(tmp_path):
  for name in data.FASHION_MNIST_FILES:
    with gzip.open(tmp_path / name, "wb") as f:
      f.write(b"\0" * 64)
  with pytest.raises(data.DataError, match="corrupted or not the official file"):
    data.check_manual_dir(tmp_path)


def test_load_reports_bad_folder_without_a_deep_traceback(tmp_path):
  with pytest.raises(data.DataError, match="is missing") as info:
    data.load("fashion_mnist", "test", data_dir=str(tmp_path / "tfds"), manual_dir=tmp_path)
  assert info.value.__cause__ is None


def test_batch_order_is_a_function_of_seed_and_step():
  n, b = 100, 10
  a = [batching.batch_indices(3, s, n, b) for s in range(20)]
  again = [batching.batch_indices(3, s, n, b) for s in range(20)]
  other = [batching.batch_indices(4, s, n, b) for s in range(20)]
  np.testing.assert_array_equal(np.stack(a), np.stack(again))
  assert not np.array_equal(np.stack(a), np.stack(other))
  for epoch in (0, 1):  # every example exactly once per epoch, and a new order each epoch
    np.testing.assert_array_equal(
      np.sort(np.concatenate(a[10 * epoch : 10 * epoch + 10])), np.arange(n)
    )
  assert not np.array_equal(np.concatenate(a[:10]), np.concatenate(a[10:]))
  with pytest.raises(ValueError, match="larger than the dataset"):
    batching.batch_indices(0, 0, 5, 10)


def test_an_epoch_is_the_full_batches_and_the_incomplete_one_is_dropped():
  assert (
    batching.steps_per_epoch(60_000, 128) == 468
  )  # Fashion-MNIST: 96 examples left out per epoch
  n, b = 25, 10
  assert batching.steps_per_epoch(n, b) == 2
  first = np.concatenate([batching.batch_indices(0, s, n, b) for s in range(2)])
  assert len(set(first)) == 20  # two full batches of distinct examples
  np.testing.assert_array_equal(
    batching.batch_indices(0, 2, n, b), batching.epoch_permutation(0, 1, n)[:b]
  )
  with pytest.raises(ValueError, match="larger than the dataset"):
    batching.steps_per_epoch(5, 10)


def test_batches_gather_the_rows_of_batch_indices_on_the_device_or_from_the_host():
  mesh = sharding.make_mesh(1)
  x = np.arange(40, dtype=np.float32).reshape(20, 2)
  y = np.arange(20, dtype=np.int32) * 10
  on_device = batching.batches((x, y), mesh, seed=5, batch_size=6)
  from_host = batching.batches((x, y), mesh, seed=5, batch_size=6, on_device=False)
  doubled = batching.batches(x, mesh, seed=5, batch_size=6, prepare=lambda b: 2 * b)
  for step in (0, 1, 2, 3, 7):  # 3 batches per epoch: steps 3 and 7 are in later epochs
    idx = batching.batch_indices(5, step, 20, 6)
    for got in (on_device(step), from_host(step)):
      np.testing.assert_array_equal(got[0], x[idx])
      np.testing.assert_array_equal(got[1], y[idx])
      assert got[0].sharding.spec == sharding.data_sharding(mesh).spec
    np.testing.assert_array_equal(doubled(step), 2 * x[idx])
  with pytest.raises(ValueError, match="different leading sizes"):
    batching.batches((x, y[:10]), mesh, seed=0, batch_size=2)
  with pytest.raises(ValueError, match="on_device"):
    batching.batches(x, mesh, seed=0, batch_size=2, on_device=False, prepare=lambda b: b)


def test_mock_data_is_in_unit_range():
  ds = data.mock(32)
  assert ds.x.shape == (32, 28, 28, 1) and ds.x.dtype == np.float32
  assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0


@pytest.mark.skipif(
  not (SHARED / "fashion_mnist").is_dir(), reason="needs the official Fashion-MNIST files"
)
def test_real_fashion_mnist_through_tfds(tmp_path_factory):
  tfds_dir = os.environ.get("GENJAX_TFDS_DIR") or str(tmp_path_factory.mktemp("tfds"))
  test = data.load("fashion_mnist", "test", data_dir=tfds_dir, manual_dir=SHARED / "fashion_mnist")
  assert test.x.shape == (10000, 28, 28, 1) and test.x.dtype == np.float32
  assert test.x.min() == 0.0 and test.x.max() == 1.0
  np.testing.assert_array_equal(np.bincount(test.y), np.full(10, 1000))


@pytest.mark.skipif(
  not (SHARED / "fashion_mnist").is_dir(), reason="needs the official Fashion-MNIST files"
)
def test_a_corrupted_copy_of_the_real_files_is_rejected(tmp_path):
  for name in data.FASHION_MNIST_FILES:
    shutil.copy(SHARED / "fashion_mnist" / name, tmp_path / name)
  with open(tmp_path / "t10k-labels-idx1-ubyte.gz", "r+b") as f:
    f.seek(20)
    f.write(b"\xff\xff")
  with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz is corrupted"):
    data.load("fashion_mnist", "test", data_dir=str(tmp_path / "tfds"), manual_dir=tmp_path)
