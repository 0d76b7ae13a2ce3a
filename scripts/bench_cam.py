"""Grad-CAM++ maps per second: genjax against tf-keras-vis, same architecture, weights and images.

  python scripts/bench_cam.py [--model runs/cam/ae-s0] [--images 64] [--seconds 30]

Measured side by side in one run, each library in its own process (thread pools and memory do not
mix): maps for 3 layers x 10 classes of a batch of test-sized images.
  genjax-closed   closed-form derivatives, all layers and classes in one jitted call
  genjax-exact    exact third-order derivatives of the network (few images: it costs 3rd-order
                  forward mode once per activation coordinate)
  tf-keras-vis    GradcamPlusPlus, one call per (layer, class), the Keras model loaded with genjax's
                  weights (pip install tf-keras-vis; TensorFlow on the CPU)
Agreement: Pearson correlation between the two libraries' normalized maps at layer resolution,
(a) with tf-keras-vis' alpha normalization reproduced in genjax (same definition: must be ~1) and
(b) against the paper's Grad-CAM++ (genjax default), which tf-keras-vis departs from.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genjax.bench import cam_keras  # noqa: E402


def restore(workdir: str):
  """A finished experiments/cam run's (graphdef, state, config), imported when first needed."""
  from experiments.cam import train

  return train.restore(workdir)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--model", default=None, help="classifier workdir (default: fresh weights)")
  p.add_argument("--images", type=int, default=64)
  p.add_argument("--exact_images", type=int, default=1)
  p.add_argument("--seconds", type=float, default=30.0)
  p.add_argument("--which", default=None, help=argparse.SUPPRESS)
  p.add_argument("--out", default=None, help=argparse.SUPPRESS)
  args = p.parse_args()
  from genjax.data import tfds as data

  x = np.asarray(data.get_dataset("fashion_mnist", "test").x[: args.images]) if args.model else (
    np.random.default_rng(0).uniform(size=(args.images, 28, 28, 1)).astype(np.float32))  # fmt: skip
  if args.which:  # child process
    model = {"model_dir": args.model, "restore": restore, "seconds": args.seconds}
    if args.which == "genjax":
      res = cam_keras.run_genjax(x, Path(args.out), exact_images=args.exact_images, **model)
    else:
      res = cam_keras.run_tkv(x, Path(args.out), **model)
    print(json.dumps(res))
    return
  with tempfile.TemporaryDirectory() as tmp:
    res = {}
    for which in ("genjax", "tkv"):
      cmd = [sys.executable, __file__, "--which", which, "--out", tmp, "--images", str(args.images),
             "--exact_images", str(args.exact_images), "--seconds", str(args.seconds)]  # fmt: skip
      cmd += ["--model", args.model] if args.model else []
      proc = subprocess.run(cmd, capture_output=True, text=True)
      if proc.returncode:
        sys.exit(f"{which} failed:\n{proc.stderr[-3000:]}")
      res[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    agree = cam_keras.agreement(Path(tmp))
  cam_keras.print_report(res, agree, args.images, args.model)
  print(json.dumps({"genjax": res["genjax"], "tkv": res["tkv"], "agreement": agree}))


if __name__ == "__main__":
  main()
