"""Resolves `genjax-lab[dev,faces]` with pip per platform and Python without installing anything.

  python scripts/check_install.py [--extras dev,faces] [--glibc 2.28] [--macos 14.0] [--jobs 3]

Needs the network to PyPI; takes about 2 minutes. Prints one table, and exits 1 if any
(platform, Python) does not resolve. How each resolution is made realistic (a marker environment
per target, every manylinux tag, the sdist-only projects built here), and the table measured on
2026-12-03: genjax/bench/install.py.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genjax.bench import install  # noqa: E402


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--extras", default="dev,faces")
  ap.add_argument("--glibc", default="2.28", help="Linux glibc version (2.X) to resolve for.")
  ap.add_argument("--macos", default="14.0", help="macOS version to resolve for.")
  ap.add_argument("--jobs", type=int, default=3, help="Resolutions at once (network-bound).")
  a = ap.parse_args()
  extras = [e for e in a.extras.split(",") if e]
  rows = install.resolve_all(extras, a.glibc, a.macos, a.jobs)
  print(install.table(rows))
  print(
    f"glibc {a.glibc}, macOS {a.macos}, extras [{','.join(extras)}], pip {install.pip_version()}"
  )
  return 0 if all(r["resolved"] for r in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
