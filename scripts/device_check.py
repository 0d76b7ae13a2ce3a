"""One run on a GPU machine: jax on the GPU, the tests, every benchmark in both kernel forms, one epoch.

  python scripts/device_check.py [--data-dir runs/device_data] [--wheels runs/wheels]
      [--only bench,epoch,tests] [--benches conv,gan] [--time-limit 540] [--out FILE.md] [--dry-run]

On the GPU machine (one H200), with the data and wheels made here and carried along:
  python3 scripts/device_check.py --data-dir runs/device_data --wheels runs/wheels
The data folder, made here once:
  python scripts/device_check.py --prepare-data runs/device_data

The steps, the table and the two folders: genjax/bench/device.py (its docstring is --help).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genjax.bench import device  # noqa: E402


def main(argv: list[str] | None = None) -> list[device.Row]:
  d = device.Options()  # the defaults
  p = argparse.ArgumentParser(description=device.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="CUDA jax and ml-collections as wheels, here (for a machine "
                              "without a registry; set --python-version to its Python):\n  "
                              + device.download_command())  # fmt: skip
  p.add_argument("--only", default=",".join(d.only), help="checks to run, of bench,epoch,tests")
  p.add_argument("--benches", default=d.benches, help="bench_*.py to run, without the prefix (default all)")  # fmt: skip
  p.add_argument("--forms", default=d.forms, help="GENJAX_KERNELS values for the benchmarks")
  p.add_argument("--epoch-forms", default=d.epoch_forms, help="GENJAX_KERNELS values for the epoch")
  p.add_argument("--epoch-steps", type=int, default=d.epoch_steps, help="steps instead of one epoch (a trial)")  # fmt: skip
  p.add_argument("--data-dir", type=Path, help="folder of the data (see above), inside the repo")
  p.add_argument("--wheels", type=Path, help="folder of wheels for pip --no-index --find-links")
  p.add_argument("--seconds", type=float, default=d.seconds, help="timed seconds per benchmark side")  # fmt: skip
  p.add_argument("--tests-timeout", type=float, default=d.tests_timeout)
  p.add_argument("--bench-timeout", type=float, default=d.bench_timeout, help="per benchmark and form")  # fmt: skip
  p.add_argument("--epoch-timeout", type=float, default=d.epoch_timeout)
  p.add_argument("--time-limit", type=float, default=d.time_limit, help="seconds for all steps (0: none)")  # fmt: skip
  p.add_argument("--out", type=Path, help="markdown table (.json and .log beside it)")
  p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
  p.add_argument("--prepare-data", type=Path, metavar="DIR", help="write the data folder and exit")
  args = p.parse_args(argv)
  args.only = args.only.split(",")
  if unknown := set(args.only) - set(device.CHECKS):
    p.error(f"--only: unknown {sorted(unknown)}; choose from {','.join(device.CHECKS)}")
  if args.prepare_data:
    device.prepare_data(args.prepare_data.resolve())
    return []
  del args.prepare_data
  return device.run(device.Options(**vars(args)))


if __name__ == "__main__":
  main()
