"""Grad-CAM, Grad-CAM++ and Score-CAM maps/s on ResNet-18: genjax against pytorch-grad-cam.

  python scripts/bench_explain.py [--batch 16] [--scorecam-batch 16] [--repeats 3]
      [--scorecam-repeats 1] [--scorecam-chunk 64] [--scorecam-ref 2] [--threads N]
      [--methods gradcam,gradcam++,scorecam] [--out bench_explain.json]
  Needs: pip install -e .[bench] (torch, torchvision, grad-cam); CPU only.

One run, side by side, each library in its own process (thread pools and memory do not mix):
  weights  torchvision's resnet18() (torch.manual_seed(0), random batch norm statistics so that no
           norm is the identity), saved with the inputs: x ~ N(0, 1) [B, 224, 224, 3] (float32) and
           one target per image, the class torchvision's model predicts
  genjax   genjax.models.resnet.ResNet18 with those weights (load_torchvision), cam.explain(model,
           x, layers=("layer4.1",), targets=c, methods=(m,), score="logit",
           scorecam_weights="softmax", batch_size=--scorecam-chunk), one method per call
  pytorch  pytorch_grad_cam.GradCAM / GradCAMPlusPlus / ScoreCAM(model, [model.layer4[-1]]) with
           ClassifierOutputTarget(c) (the logit); ScoreCAM's batch_size = --scorecam-chunk
Both sides use --threads cores (CPU affinity, which XLA's pool follows, and torch.set_num_threads;
default: every core this process may use). Timed: the call that returns the [B, 224, 224] maps as
NumPy, after one warm-up call (genjax: compilation, which needs the full batch's shapes; pytorch:
the same call on one image for Score-CAM, the full batch otherwise); maps/s = images / the median of
--repeats calls (Score-CAM: --scorecam-repeats on --scorecam-batch images: 512 masked forward
passes per image, most of the run's cost: on 2 cores 25 s (genjax) and 41 s (pytorch-grad-cam) per
image, so the default run takes about 30 minutes; the masked inputs, [16 * 512, 224, 224, 3] float32,
take 4.9 GB on each side).

Agreement: Pearson r between the two libraries' maps per image at 224 x 224, averaged over images
(a constant map has no r and is left out; the count is printed). Pearson r ignores each map's
offset and scale, so only what changes a map's shape counts. Columns:
  r(genjax)  genjax's "map" (bilinear upsampling of relu(M) / max relu(M)) against pytorch-grad-cam
  r(ref)     pytorch-grad-cam's exact formula re-computed in NumPy from genjax's own intermediates
             (A = layer4.1's output and g = dS_c/dA, from the same Flax model; Score-CAM's masked
             scores in JAX for the first --scorecam-ref images): checks that the two stacks compute
             the same numbers, so what r(genjax) misses is the definitional difference
Definitions (pytorch-grad-cam 1.5.7, all maps relu'd; its map is then (M - min) / (max + 1e-7),
cv2.resize (bilinear, half-pixel centres) to 224, then min-max'd again):
  Grad-CAM    the same: w_k = mean_ab g_ab^k. The maps differ only by resizing (jax.image.resize vs
              cv2; both bilinear with half-pixel centres), so r(genjax) ~ 1.
  Grad-CAM++  pytorch-grad-cam: alpha = g^2 / (2 g^2 + sum_ab A_ab g^3 + 1e-6) (0 where g = 0), w_k
              = sum_ab alpha relu(g), g the logit gradient (no exp). genjax: the paper's alpha for
              exp(S), closed form 1 / (2 + sum_ab A_ab g_ab) where g != 0, no eps (the same as
              pytorch-grad-cam's without eps). Here g = W[k, c] / 49 (layer4.1 -> GAP -> fc): with
              torch's fc init g^2 <= 8e-7 (median 2e-7), so the eps dominates the denominator and
              pytorch-grad-cam's alpha grows with g^2 where the paper's is about 1/2.
  Score-CAM   both: w = softmax over channels of the target logit of x * H^k, H^k = min-max scaled
              A^k upsampled to 224. pytorch-grad-cam upsamples with align_corners=True
              (UpsamplingBilinear2d) and scales by (H - min) / (max - min + 1e-8); genjax upsamples
              with half-pixel centres (jax.image.resize) and maps a constant channel to 0.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genjax.bench import cam_pytorch as cp  # noqa: E402


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--batch", type=int, default=16, help="images for Grad-CAM and Grad-CAM++")
  p.add_argument("--scorecam-batch", type=int, default=16, help="images for Score-CAM")
  p.add_argument("--repeats", type=int, default=3, help="timed calls (median kept)")
  p.add_argument("--scorecam-repeats", type=int, default=1, help="timed Score-CAM calls")
  p.add_argument("--scorecam-chunk", type=int, default=64, help="masked passes per forward")
  p.add_argument("--scorecam-ref", type=int, default=2, help="images of the Score-CAM reference")
  p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
  p.add_argument("--methods", default=",".join(cp.METHODS))
  p.add_argument("--out", default=None, help="write the results as JSON here")
  p.add_argument("--which", default=None, help=argparse.SUPPRESS)
  p.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
  args = p.parse_args()
  args.methods = tuple(m for m in args.methods.split(",") if m)
  if set(args.methods) - set(cp.METHODS):
    p.error(f"--methods: each of {cp.METHODS}")
  if args.which:  # child process: one side
    cp.use_threads(args.threads)
    tmp, sizes = Path(args.tmp), cp.sizes(args.methods, args.batch, args.scorecam_batch)
    timing = dict(repeats=args.repeats, scorecam_repeats=args.scorecam_repeats,
                  scorecam_chunk=args.scorecam_chunk)  # fmt: skip
    run = {"weights": lambda: cp.run_weights(tmp, max(sizes.values())),
           "genjax": lambda: cp.run_genjax(tmp, sizes, scorecam_ref=args.scorecam_ref, **timing),
           "pytorch": lambda: cp.run_pytorch(tmp, sizes, threads=args.threads, **timing)}  # fmt: skip
    print("RESULT " + json.dumps(run[args.which]()))
    return
  flags = ["--batch", str(args.batch), "--scorecam-batch", str(args.scorecam_batch),
           "--repeats", str(args.repeats), "--scorecam-repeats", str(args.scorecam_repeats),
           "--scorecam-chunk", str(args.scorecam_chunk), "--scorecam-ref", str(args.scorecam_ref),
           "--threads", str(args.threads), "--methods", ",".join(args.methods)]  # fmt: skip
  res = cp.compare_sides(__file__, flags, args.methods)
  cp.print_table(res, args.methods)
  if args.out:
    Path(args.out).write_text(json.dumps(res, indent=2))
  print(json.dumps(res))


if __name__ == "__main__":
  main()
