"""Two processes on one machine (one CPU device each, gloo collectives) train as one program: the
parameters of one process, an exact resume after both are killed, and process 0 the only writer.

Run as a script, this file is the processes' driver: `batch` checks the placement of a global batch,
anything else is scripts/train.py's command line, with two test hooks read from the environment.
"""

import json
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The dense autoencoder's smoke config (generated data), small enough to compile in seconds; host
# batches, so each process places its rows (the on-device gather has its own test below).
TRAIN = [f"--config={ROOT}/experiments/autoencoder/configs/dense.py:smoke", "--config.num_steps=8",
         "--config.model.hidden=(32,)", "--config.checkpoint_every=2", "--config.on_device=false"]  # fmt: skip
EXIT_AFTER = "GENJAX_TEST_EXIT_AFTER_STEP"  # os._exit right after the save of this step is started
WRITES = "GENJAX_TEST_WRITES"  # a file that gets one line per write into the workdir
TIMEOUT_S = 300  # a launch takes 5-30 s; a hung collective fails the test instead of the suite
GRACE_S = 10  # after one process of a launch fails, the time the others get to exit


def _has_gloo() -> bool:
  from jax._src.lib import _jax  # the compiled extension: no public way to ask for its collectives

  return hasattr(_jax, "make_gloo_tcp_collectives")


pytestmark = pytest.mark.skipif(
  __name__ != "__main__" and not _has_gloo(), reason="this jaxlib has no gloo CPU collectives"
)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _launch(args: list[str], n: int, tmp: Path, **env) -> list[tuple[int, str]]:
  """Runs this file's driver in `n` processes of one distributed run; their (exit code, output).

  Each child sees one CPU device: conftest's XLA_FLAGS (8 fake devices) are for this process only.
  The children share conftest's compilation cache, so a launch after the first compiles little.
  """
  import jax

  base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  base.update(JAX_PLATFORMS="cpu", JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", **env)  # fmt: skip
  if jax.config.jax_compilation_cache_dir:
    base["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
  port, procs, launch = _free_port(), [], len(list(tmp.glob("out.*.0")))
  for i in range(n):
    dist = {"JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAX_NUM_PROCESSES": str(n),
            "JAX_PROCESS_ID": str(i)} if n > 1 else {}  # fmt: skip
    writes = {WRITES: str(tmp / f"writes.{launch}.{i}")}
    with open(tmp / f"out.{launch}.{i}", "w") as out:  # a file: a full pipe would block the child
      procs.append(subprocess.Popen([sys.executable, __file__, *args], env={**base, **dist, **writes},
                                    stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
  deadline = time.monotonic() + TIMEOUT_S
  while time.monotonic() < deadline and any(p.poll() is None for p in procs):
    if any(p.poll() for p in procs):  # one failed: the others would wait for it in a collective
      deadline = min(deadline, time.monotonic() + GRACE_S)
    time.sleep(0.1)
  hung = all(p.poll() is None for p in procs)
  for p in procs:
    p.kill()
  runs = [(p.wait(), (tmp / f"out.{launch}.{i}").read_text()) for i, p in enumerate(procs)]
  if hung:
    pytest.fail(f"a run of {n} processes took over {TIMEOUT_S} s:\n" + runs[0][1][-3000:])
  return runs


def _ok(runs):
  failed = [(i, rc, out) for i, (rc, out) in enumerate(runs) if rc]
  assert not failed, "\n".join(
    f"process {i} exited with {rc}:\n{out[-3000:]}" for i, rc, out in failed
  )


def _params(workdir: Path):
  """The parameters of the run's newest checkpoint, as host arrays."""
  import jax

  from experiments.autoencoder import train as ae_train
  from genjax.train import checkpoint, sharding

  ckpt = checkpoint.Checkpointer(workdir / "checkpoints", every=0)
  _, template, _ = ae_train.build(_config(1), sharding.make_mesh(1))
  state = jax.device_get(ckpt.restore(template))
  ckpt.close()
  return state.step, state.params


def _written(tmp: Path, process: int) -> set[str]:
  """Names (relative to the workdir) that `process` opened for writing, over all its launches."""
  lines = [ln for f in tmp.glob(f"writes.*.{process}") for ln in f.read_text().splitlines()]
  return {Path(ln).name if "tensorboard" not in ln else "tensorboard/" for ln in lines}


CLUSTER_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS",
                "OMPI_COMM_WORLD_SIZE", "TPU_ML_PLATFORM")  # fmt: skip
SLURM = {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "node[1-2]"}


@pytest.mark.parametrize(
  "env, want",
  [
    ({}, None),
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}, "env"),
    ({**SLURM, "SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4"}, "slurm"),
    ({**SLURM, "SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "1"}, None),  # one task: one process
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, None),  # the batch script, not an srun step
    ({**SLURM, "SLURM_NTASKS": "2", "JAX_COORDINATOR_ADDRESS": "h:1"}, "slurm"),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, "ompi"),
    ({"OMPI_COMM_WORLD_SIZE": "1"}, None),
    ({"TPU_ML_PLATFORM": "JAX"}, "tpu"),
  ],
)
def test_the_launcher_is_read_from_the_environment(monkeypatch, env, want):
  from genjax.train import distributed

  for k in (*CLUSTER_VARS, *distributed.EXPLICIT):
    monkeypatch.delenv(k, raising=False)
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  assert distributed.launcher() == want


def test_initialize_passes_the_explicit_variables_and_leaves_clusters_to_jax(monkeypatch):
  import jax

  from genjax.train import distributed

  for k in (*CLUSTER_VARS, *distributed.EXPLICIT):
    monkeypatch.delenv(k, raising=False)
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
  distributed.initialize()
  assert calls == []  # a single process: nothing to start
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "h:1")
  with pytest.raises(ValueError, match="set but not JAX_NUM_PROCESSES, JAX_PROCESS_ID"):
    distributed.initialize()
  monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
  monkeypatch.setenv("JAX_PROCESS_ID", "1")
  distributed.initialize()
  monkeypatch.delenv("JAX_NUM_PROCESSES")
  monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
  distributed.initialize()
  assert calls == [dict(coordinator_address="h:1", num_processes=2, process_id=1), {}]
  assert distributed.is_main()  # this process, not initialized: process 0 of 1


def test_two_processes_place_their_rows_of_the_global_batch(tmp_path):
  _ok(_launch(["batch"], 2, tmp_path))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("uninterrupted")
  _ok(_launch([*TRAIN, f"--workdir={tmp / 'run'}"], 2, tmp))
  return tmp


def _config(num_devices: int):
  """TRAIN's config, for a run in this process on `num_devices` of conftest's fake devices."""
  from experiments.autoencoder.configs import dense

  config = dense.get_config("smoke")
  config.num_steps, config.checkpoint_every, config.on_device = 8, 2, False
  config.model.hidden, config.num_devices = (32,), num_devices
  return config


def test_two_processes_end_with_the_parameters_of_one(uninterrupted, tmp_path):
  import jax
  import numpy as np

  from experiments.autoencoder import train as ae_train

  _, two = _params(uninterrupted / "run")
  # One process driving two devices runs the same program: the same sums in the same order.
  ae_train.train_and_evaluate(_config(2), tmp_path / "two-devices")
  step, same = _params(tmp_path / "two-devices")
  assert int(step) == 8
  jax.tree.map(np.testing.assert_array_equal, same, two)
  # One device is not bitwise the same: it sums the batch's gradient in one reduction, two devices
  # sum their halves and all-reduce the partial sums (float32 rounding, ~1e-7 relative per step,
  # carried through 8 Adam steps of size <= 1e-3; measured 3e-8).
  ae_train.train_and_evaluate(_config(1), tmp_path / "one-device")
  _, one = _params(tmp_path / "one-device")
  diff = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), one, two)
  worst = max(jax.tree.leaves(diff))
  print(f"max |params(1 process, 1 device) - params(2 processes)| = {worst:.3g}")
  assert worst < 1e-5, diff


def test_a_killed_two_process_run_resumes_to_the_same_parameters(uninterrupted, tmp_path):
  import jax
  import numpy as np

  from genjax.train import checkpoint
  from genjax.train import logging as tlog

  args = [*TRAIN, f"--workdir={tmp_path / 'run'}"]
  # Both processes die right after starting to save step 4, its files maybe not all written yet.
  # Process 0 got there (exit code 17) only with process 1 in every collective up to step 4.
  (rc0, out0), (rc1, _) = _launch(args, 2, tmp_path, **{EXIT_AFTER: "4"})
  assert rc0 == 17 and rc1 != 0, out0[-3000:]
  steps = checkpoint.saved_steps(tmp_path / "run" / "checkpoints")
  assert 2 in steps and max(steps) <= 4, steps  # 2 is complete: saving 4 waited for it
  restart = time.time()
  _ok(_launch(args, 2, tmp_path))
  step, resumed = _params(tmp_path / "run")
  _, whole = _params(uninterrupted / "run")
  assert int(step) == 8
  jax.tree.map(np.testing.assert_array_equal, resumed, whole)  # same devices, same sums: exact
  rows = [r for r in tlog.read_metrics(tmp_path / "run") if "loss" in r]
  assert [r["step"] for r in rows] == list(range(1, 9)), "one writer; the log reads as one run"
  before = [r["step"] for r in rows if r["time"] < restart]
  assert before == list(range(1, max(steps) + 1)), "resumed from its newest checkpoint"

  # Process 0 wrote the config, the metrics, the results and the figure; process 1 nothing.
  assert _written(tmp_path, 0) >= {"config.json", "metrics.jsonl", "tensorboard/", "results.json",
                                   "reconstructions.png"}  # fmt: skip
  assert _written(tmp_path, 1) == set()
  assert len(list((tmp_path / "run" / "tensorboard").iterdir())) == 2  # one per launch
  results = json.loads((tmp_path / "run" / "results.json").read_text())
  assert results["step"] == 8 and np.isfinite(results["test_mse"])


def _check_batch() -> None:
  """Both ways a batch reaches the mesh give every process its block of the same global batch;
  agree() and main_first() order the processes."""
  from genjax.train import distributed

  distributed.initialize()
  import jax
  import numpy as np
  from jax.experimental import multihost_utils

  from genjax.train import sharding

  assert jax.process_count() == 2 and jax.local_device_count() == 1
  mesh = sharding.make_mesh()
  x = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
  idx = np.array([7, 1, 4, 0])
  rows = sharding.process_rows(4, mesh)
  assert rows == slice(2 * jax.process_index(), 2 * jax.process_index() + 2)
  host = sharding.shard_batch({"x": x[idx], "i": idx}, mesh)
  x_all = sharding.replicate(x, mesh)
  take = jax.jit(lambda a, i: a[i], out_shardings=sharding.data_sharding(mesh))
  for got in (host["x"], take(x_all, idx)):
    assert got.shape == (4, 3) and got.sharding == sharding.data_sharding(mesh)
    (shard,) = got.addressable_shards
    np.testing.assert_array_equal(shard.data, x[idx][rows])
    np.testing.assert_array_equal(multihost_utils.process_allgather(got, tiled=True), x[idx])
  assert float(jax.jit(lambda v: v.sum())(host["x"])) == float(x[idx].sum())

  # Process 0's decisions hold everywhere; what process 0 prepares first, the others find.
  assert distributed.agree(jax.process_index() == 0) is True
  marker = Path(os.environ[WRITES]).with_name("prepared")

  def prepare():
    if not marker.exists():
      marker.write_text(str(jax.process_index()))
    return marker.read_text()

  assert distributed.main_first(prepare) == "0"


def _train(argv: list[str]) -> None:
  """scripts/train.py with the hooks: a hard exit after a save is started, a log of every write."""
  sys.path.insert(0, str(ROOT / "scripts"))
  import train as script  # noqa: I001 - scripts/train.py, which defines the flags
  from absl import app

  from genjax.train import checkpoint

  workdir = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("--workdir="))).absolute()
  log = open(os.environ[WRITES], "a")  # noqa: SIM115 - open until os._exit or exit
  written = os.O_WRONLY | os.O_RDWR

  def audit(event, args):
    path = None
    if event == "open" and args[2] & written:
      path = args[0]
    elif event == "os.rename":
      path = args[1]
    if isinstance(path, str | Path) and Path(path).absolute().is_relative_to(workdir):
      if not Path(path).absolute().relative_to(workdir).parts[0].startswith("checkpoints"):
        log.write(f"{path}\n")
        log.flush()

  sys.addaudithook(audit)
  if EXIT_AFTER in os.environ:
    save, at = checkpoint.Checkpointer.maybe_save, int(os.environ[EXIT_AFTER])

    def save_then_exit(self, step, state, **kw):
      saved = save(self, step, state, **kw)
      if step == at:
        os._exit(17)
      return saved

    checkpoint.Checkpointer.maybe_save = save_then_exit
  app.run(script.main, argv=[script.__file__, *argv])


if __name__ == "__main__":
  sys.path.insert(0, str(ROOT))
  try:
    _check_batch() if sys.argv[1:] == ["batch"] else _train(sys.argv[1:])
  except SystemExit as e:
    if e.code:
      print(e.code, flush=True)
      os._exit(1)
  except BaseException:
    # Exit now: a normal exit would wait in jax.distributed's shutdown for the other process,
    # which itself waits for this one in a collective.
    traceback.print_exc()
    sys.stdout.flush()
    os._exit(1)
