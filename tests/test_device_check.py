"""scripts/device_check.py and genjax.bench.device: what its dry run lists, its table, and steps that
fail or time out."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from genjax.bench import device as dc
from scripts import device_check

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def test_dry_run_lists_every_benchmark_in_both_kernel_forms_and_the_epoch(capsys):
  assert dc.ROOT == ROOT  # the steps run in the repository
  assert device_check.main(["--dry-run"]) == []
  lines = capsys.readouterr().out.splitlines()
  benches = sorted(p.stem for p in (ROOT / "scripts").glob("bench_*.py"))
  assert benches
  for name in benches:
    for form in dc.FORMS:
      hits = [s for s in lines if s.startswith(name + " ") and f"[{form}]" in s]
      assert hits, (name, form)
      assert all(f"GENJAX_KERNELS={form}" in s for s in hits), hits
      assert all(f"scripts/{name}.py" in s or "skipped" in s for s in hits), hits
  epoch = [s for s in lines if s.startswith("epoch ")]
  assert len(epoch) == 1
  assert f"scripts/train.py --config {dc.EPOCH_CONFIG}" in epoch[0]
  assert "--config.epochs=1" in epoch[0]
  assert any(s.startswith("tests ") and "-m pytest" in s for s in lines)


def test_only_and_benches_choose_the_steps(capsys):
  device_check.main(["--dry-run", "--only", "bench", "--benches", "conv,ssim", "--forms", "xla"])
  lines = capsys.readouterr().out.splitlines()[1:]  # after the setup line
  assert [s.split(":")[0] for s in lines] == ["bench_conv [xla]", "bench_ssim [xla]"]
  with pytest.raises(SystemExit):
    device_check.main(["--dry-run", "--only", "bench,nothing"])


def test_data_dir_points_the_data_variables_inside_it(tmp_path, capsys):
  (tmp_path / "fashion_mnist").mkdir()
  device_check.main(["--dry-run", "--only", "epoch", "--data-dir", str(tmp_path)])
  epoch = capsys.readouterr().out.splitlines()[-1]
  assert f"GENJAX_TFDS_DIR={tmp_path / 'tfds'}" in epoch
  assert f"GENJAX_DATA_DIR={tmp_path}" in epoch


def test_render_formats_each_row_and_escapes_pipes():
  rows = [
    dc.Row("bench_gan", "cpu", "ok", "genjax 1645 img/s; genjax/pytorch 7.20x", 43.4),
    dc.Row("epoch", "auto", "timeout", "a | b", 300.0),
  ]
  lines = dc.render(rows).splitlines()
  assert lines[0] == "| check | kernels | status | result | s |"
  assert lines[2] == "| bench_gan | cpu | ok | genjax 1645 img/s; genjax/pytorch 7.20x | 43 |"
  assert lines[3] == "| epoch | auto | timeout | a \\| b | 300 |"
  assert len(lines) == 4


def _step(name: str, code: str, timeout: float = 20.0, parse=lambda out: out.strip()) -> dc.Step:
  return dc.Step(name, "cpu", [[PY, "-c", code]], parse, timeout)


def _refuse(out: str) -> str:
  raise dc.StepFailed("no figure")


def test_a_failing_or_hanging_step_is_recorded_and_the_rest_still_run(tmp_path):
  pid_file = tmp_path / "pid"
  spawn = (  # a child that would outlive its parent if only the parent were killed
    "import subprocess, sys, time; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
  )
  steps = [
    _step("first", "print('42')"),
    _step("fails", "import sys; print('ValueError: boom', file=sys.stderr); sys.exit(3)"),
    _step("hangs", spawn, timeout=5.0),
    _step("unparsed", "print('nothing useful')", parse=_refuse),
    dc.Step("skipped", "cpu", [], str, 1.0, skip="skipped: torch missing"),
    _step("last", "print('done')"),
  ]
  t0 = time.perf_counter()
  rows = dc.run_all(steps)
  assert time.perf_counter() - t0 < 15
  got = {r.check: (r.status, r.result) for r in rows}
  assert list(got) == [s.check for s in steps]
  assert got["first"] == ("ok", "42")
  assert got["fails"] == ("failed", "exit 3: ValueError: boom")
  assert got["hangs"][0] == "timeout" and "timed out after 5 s" in got["hangs"][1]
  assert got["unparsed"] == ("failed", "StepFailed: no figure")
  assert got["skipped"] == ("skipped", "skipped: torch missing")
  assert got["last"] == ("ok", "done")
  grandchild = int(pid_file.read_text())
  for _ in range(50):  # killed with its process group; init reaps it
    try:
      os.kill(grandchild, 0)
    except ProcessLookupError:
      break
    time.sleep(0.1)
  else:
    pytest.fail("the timed-out step's child process is still running")


def test_steps_past_the_time_limit_are_skipped():
  rows = dc.run_all([_step("slow", "import time; time.sleep(30)", timeout=2.0),
                     _step("next", "print(1)")], time_limit=6.5)  # fmt: skip
  assert [r.status for r in rows] == ["timeout", "skipped"]
  assert rows[1].result == "out of time (--time-limit)"


def test_a_multi_command_step_stops_at_its_first_failure():
  step = dc.Step("two", "xla", [[PY, "-c", "import sys; sys.exit(1)"], [PY, "-c", "print(2)"]],
                 lambda out: out.strip(), 20.0)  # fmt: skip
  row = dc.run_step(step)
  assert row.status == "failed" and row.result.startswith("exit 1")


def test_parsers_read_the_benchmarks_printed_figures(tmp_path):
  sides = """conv autoencoder training step, batch 128, float32
                 images/s   ms/step 1st step s peak RSS MB
genjax               2277     56.21       2.89         536
genjax-naive         1378     92.86       1.73         560
pytorch               394    324.61       0.49         770
pytorch threads: 2; max |torch - genjax| forward: 9.59e-08
ratio genjax / pytorch: 5.78x
"""
  s = dc.parse_sides(sides)
  assert "genjax 2277 img/s 56.21 ms/step" in s and "genjax/pytorch 5.78x" in s
  assert "genjax-naive 1378 img/s" in s and "pytorch side" not in s
  without = "\n".join(line for line in sides.splitlines() if not line.startswith(("pytorch", "ratio")))  # fmt: skip
  assert dc.parse_sides(without, "torch missing").endswith("; torch missing")
  with pytest.raises(dc.StepFailed):
    dc.parse_sides("genjax: failed\nTraceback ...")
  conv = """layer                                                  genjax      lax  lax/genjax  max rel |dw diff|
128x28x28x1 -> 32, stride 1 (classifier stage 1, conv 1)     1.00     3.00       3.00x  1.0e-07
128x14x14x32 -> 64, stride 2 (VAE / autoencoder conv 2)      2.00     1.00       0.50x  2.0e-07
"""
  assert dc.parse_layers(conv, ("genjax", "lax")) == (
    "ms over 2 layers: genjax 3.0, lax 4.0 (lax/genjax 1.33x)"
  )
  summary = "....s..F\n1 failed, 250 passed, 3 skipped, 2 warnings in 95.12s (0:01:35)\n"
  assert dc.parse_pytest(summary) == "1 failed, 250 passed, 3 skipped"
  cut_short = "........s.F.                                [ 10%]\n....s.\n"
  assert dc.parse_pytest(cut_short) == "so far 15 passed, 1 failed, 2 skipped"
  cam = json.dumps({"closed_form": {"maps_per_s": 2813.1}, "exact": {"maps_per_s": 1.008}})
  assert dc.parse_cam("noise\n" + cam).startswith("closed-form 2813 maps/s, exact 1.01 maps/s")
  (tmp_path / "metrics.jsonl").write_text(
    "".join(json.dumps({"step": s, "images_per_s": r}) + "\n" for s, r in ((50, 10.0), (100, 900.0), (150, 1100.0)))
  )  # fmt: skip
  out = "{'test_accuracy': 0.8765, 'test_examples': 10000, 'step': 468}\n"
  assert dc.parse_epoch(out, tmp_path) == (
    "468 steps, test accuracy 0.8765, 1000 img/s after compilation"
  )
