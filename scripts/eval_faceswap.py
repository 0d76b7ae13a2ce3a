"""Face-swap evaluation of models (a), (b), (c) and two baselines under the independent evaluator net.

  python scripts/eval_faceswap.py --a runs/faceswap/a --b runs/faceswap/b --c runs/faceswap/c \
      --evaluator runs/identity/evaluator --out runs/faceswap/eval

Faces: the held-out images of the pair A, B (George_W_Bush, Colin_Powell by default); every model
holds out the same faces of the pair (split_by_image seeds each person by name), so none of them
saw these images. Swaps A->B put B's identity on A's faces (target = a held-out A face, source = a
held-out B face, cycled), and B->A the reverse. Under the evaluator F (trained apart from every
swap model, another seed, head and width):
  ID top-1    the share of swaps whose nearest person in the gallery (mean unit embedding of each
              of the 158 people's training images) is the source person;
  cos source  mean cos(F(swap), F(source face)); cos target: mean cos(F(swap), F(target face));
  L1 target   mean |swap - target| per pixel (how much of the target's pose, light, background
              survives);
  self-swap   L1 / PSNR / SSIM of the swap of a face with itself (A by A's decoder in (a)).
Baselines: "copy target" outputs the target unchanged (no identity moved: the floor of ID top-1 and
cos source), "paste source" outputs the source face (all identity, none of the target: the ceiling
of ID top-1 and cos source, the floor of L1 target). Writes <out>/results.md and results.json.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments.aae import train as aae_train  # noqa: E402
from experiments.faceswap import train as a_train  # noqa: E402
from experiments.identity import train as id_train  # noqa: E402
from experiments.simswap import train as c_train  # noqa: E402
from genjax import losses  # noqa: E402
from genjax.data import faces  # noqa: E402

flags.DEFINE_string("a", "", "Workdir of model (a) (empty: skip).")
flags.DEFINE_string("b", "", "Workdir of model (b) (empty: skip).")
flags.DEFINE_string("c", "", "Workdir of model (c) (empty: skip).")
flags.DEFINE_string("evaluator", None, "Workdir of the evaluator identity net.", required=True)
flags.DEFINE_string("out", "runs/faceswap/eval", "Where results.md / results.json go.")
flags.DEFINE_string("pair", "George_W_Bush,Colin_Powell", "The pair A,B.")
flags.DEFINE_integer("seed", 0, "Split seed of the swap models.")
flags.DEFINE_float("test_fraction", 0.1, "Held-out fraction of the swap models.")
FLAGS = flags.FLAGS


def _chunks(fn, *arrays, size=64):
  return np.concatenate([np.asarray(fn(*(a[i : i + size] for a in arrays)))
                         for i in range(0, len(arrays[0]), size)])  # fmt: skip


def swappers(a: str = "", b: str = "", c: str = "") -> dict:
  """name -> swap(sources, targets, source_index) -> pixels, for each trained model whose workdir is
  given. Each model's swap is built in its own function so that its closure holds its own state."""

  def model_a(workdir):
    g, state, _ = a_train.restore(workdir)
    fns = [a_train.swap_fn(g, i) for i in (0, 1)]
    return lambda xs, xt, i: _chunks(lambda t: fns[i](state, t), xt)

  def model_b(workdir):
    ae_def, _, state, _ = aae_train.restore(workdir)
    fn = aae_train.swap_fn(ae_def)
    return lambda xs, xt, i: _chunks(lambda u, v: fn(state, u, v), xs, xt)

  def model_c(workdir):
    defs, state, _ = c_train.restore(workdir)
    fn = c_train.swap_fn(defs)
    return lambda xs, xt, i: _chunks(lambda u, v: fn(state, u, v), xs, xt)

  out = {}
  if a:
    out["(a) shared encoder"] = model_a(a)
  if b:
    out["(b) adversarial AE, h_c = [h_src,id, h_tgt,rest]"] = model_b(b)
  if c:
    out["(c) identity injection (AdaIN)"] = model_c(c)
  return out


def _psnr(a, b):
  mse = np.square(a - b).reshape(len(a), -1).mean(1)
  return -10 * np.log10(np.maximum(mse, 1e-12))


def main(argv):
  del argv
  names = FLAGS.pair.split(",")
  ds = faces.load()
  tr, te = faces.split_by_image(ds.y, test_fraction=FLAGS.test_fraction, seed=FLAGS.seed,
                                names=ds.names)  # fmt: skip
  ids = [ds.label(n) for n in names]
  held = [ds.images(te[ds.y[te] == k]) for k in ids]
  print({n: len(h) for n, h in zip(names, held, strict=True)}, "held-out faces", flush=True)

  f_def, f_state, _ = id_train.restore(FLAGS.evaluator)
  embed = lambda x: id_train.embed(f_def, f_state, x)
  unit = lambda v: v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
  # Gallery: the mean unit embedding of each person's training images.
  v_train = unit(embed(ds.images(tr)))
  gallery = unit(np.stack([v_train[ds.y[tr] == k].mean(0) for k in range(len(ds.names))]))

  def score(swapped, sources, targets, source_label):
    v = unit(embed(swapped))
    top1 = (v @ gallery.T).argmax(1) == source_label
    return {
      "id_top1": float(top1.mean()),
      "cos_source": float((v * unit(embed(sources))).sum(1).mean()),
      "cos_target": float((v * unit(embed(targets))).sum(1).mean()),
      "l1_target": float(np.abs(swapped - targets).mean()),
    }

  # Directions: (target person, source person).
  directions = [(0, 1), (1, 0)]
  pairs = {}
  for t, s in directions:
    xt = held[t]
    xs = held[s][np.arange(len(xt)) % len(held[s])]
    pairs[(t, s)] = (xs, xt)

  rows = {}
  base = {"copy target": lambda xs, xt, i: xt, "paste source": lambda xs, xt, i: xs}
  for name, swap in {**base, **swappers(FLAGS.a, FLAGS.b, FLAGS.c)}.items():
    per = [score(swap(xs, xt, s), xs, xt, ids[s]) for (t, s), (xs, xt) in pairs.items()]
    n = [len(pairs[d][1]) for d in directions]
    row = {k: float(np.average([p[k] for p in per], weights=n)) for k in per[0]}
    if name not in base:
      selves = [(swap(h, h, i), h) for i, h in enumerate(held)]
      y, x = np.concatenate([a for a, _ in selves]), np.concatenate([b for _, b in selves])
      row.update(self_l1=float(np.abs(y - x).mean()), self_psnr=float(_psnr(y, x).mean()),
                 self_ssim=float(np.asarray(jax.jit(losses.ssim)(
                   jnp.asarray(y), jnp.asarray(x))).mean()))  # fmt: skip
    rows[name] = row
    print(name, row, flush=True)

  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  n_swaps = sum(len(p[1]) for p in pairs.values())
  lines = [
    f"Held-out faces: {', '.join(f'{n} {len(h)}' for n, h in zip(names, held, strict=True))}; "
    f"{n_swaps} swaps (A->B and B->A); evaluator {FLAGS.evaluator}, gallery of "
    f"{len(ds.names)} people.",
    "",
    "| method | ID top-1 to source | cos to source | cos to target | L1 to target "
    "| self-swap L1 | self-swap PSNR (dB) | self-swap SSIM |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for name, r in rows.items():
    selfs = (f"{r['self_l1']:.4f} | {r['self_psnr']:.2f} | {r['self_ssim']:.3f}"
             if "self_l1" in r else "exact | exact | exact")  # fmt: skip
    lines.append(f"| {name} | {100 * r['id_top1']:.1f}% | {r['cos_source']:.3f} | "
                 f"{r['cos_target']:.3f} | {r['l1_target']:.4f} | {selfs} |")  # fmt: skip
  (out / "results.md").write_text("\n".join(lines) + "\n")
  (out / "results.json").write_text(json.dumps(rows, indent=2))
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
