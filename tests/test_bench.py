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
