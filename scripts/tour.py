"""A tour of the project: a short run of each part on real data and one report page.

  python scripts/tour.py --workdir runs/tour           # Fashion-MNIST and the LFW photos
  python scripts/tour.py --workdir runs/tour-smoke --smoke   # generated data, under a minute

Parts (their configs and overrides: PARTS in experiments/tour.py): a dense autoencoder with an L2
penalty, a VAE, a DCGAN, the autoencoder-regularized classifier with Grad-CAM++ overlays, face swap
(a) at 64x64. Each runs in <workdir>/<part>; a finished part is skipped when the command is run
again. Writes <workdir>/report.md and prints its path. --parts runs a subset, e.g. --parts vae,gan.
Measured: about 5 to 5.5 min on a 2-core CPU from empty caches (306 s and 327 s; 30 s with
--smoke); each part's time and numbers are on the report page and in experiments/tour.py's
docstring.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--workdir", required=True, help="where the parts and report.md go")
  p.add_argument("--smoke", action="store_true", help="generated data, 2 steps per part")
  p.add_argument("--parts", default="", help="comma-separated subset of the parts (default: all)")
  a = p.parse_args()
  # The prepared Fashion-MNIST arrays and the aligned faces are cached only under GENJAX_TFDS_DIR;
  # default it to TFDS's own folder, so a second run skips TensorFlow and the face detection.
  tfds_dir = os.environ.get("TFDS_DATA_DIR") or str(Path.home() / "tensorflow_datasets")
  os.environ.setdefault("GENJAX_TFDS_DIR", tfds_dir)
  if a.smoke:  # 2 steps per part: compiling is nearly all the work, and -O0 halves it
    os.environ["XLA_FLAGS"] = (
      f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0"
    )
  import jax

  # Compiled programs are kept in the workdir: the restores after training reuse them, and so
  # does a re-run.
  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    jax.config.update("jax_compilation_cache_dir", str(Path(a.workdir).resolve() / "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)

  from experiments import tour

  path = tour.run(a.workdir, smoke=a.smoke, parts=[s for s in a.parts.split(",") if s])
  print(f"report: {path.resolve()}")


if __name__ == "__main__":
  main()
