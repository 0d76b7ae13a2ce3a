"""genjax.explain on models from outside the project: a linen CNN, a tiny NNX ViT, method paths,
and the generic randomization check. References are computed without genjax.explain.taps."""

import flax.linen as linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax.explain import cam, sanity, taps

# ----------------------------------------------------------------------------- a linen CNN


class LinenNet(linen.Module):
  """conv -> relu -> [convs in a list] -> GAP -> head; `above` runs what follows layers_1."""

  def setup(self):
    self.stem = linen.Conv(4, (3, 3))
    self.layers = [linen.Conv(5, (3, 3)), linen.Conv(6, (3, 3))]
    self.head = linen.Dense(3)

  def __call__(self, x):
    h = jax.nn.relu(self.stem(x))
    h = jax.nn.relu(self.layers[0](h))
    return self.above(self.layers[1](h))

  def above(self, a):
    return self.head(jax.nn.relu(a).mean(axis=(1, 2)))


@pytest.fixture(scope="module")
def linen_net():
  net = LinenNet()
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 8, 8, 1)), jnp.float32)
  return net, net.init(jax.random.key(0), x), x


def test_linen_gradcam_equals_hand_computed_gradients(linen_net):
  net, variables, x = linen_net
  c = jnp.array([0, 2])
  out = cam.explain((net.apply, variables), x, layers=("layers_1",), targets=c,
                    methods=("gradcam", "layercam"))  # fmt: skip
  same = cam.explain(lambda v: net.apply(variables, v), x, layers=("layers.1",), targets=c,
                     methods=("gradcam", "layercam"))  # fmt: skip
  a = net.apply(variables, x, method=lambda m, v: m.layers[1](jax.nn.relu(m.layers[0](
    jax.nn.relu(m.stem(v))))))  # fmt: skip
  f = lambda v: jnp.take_along_axis(net.apply(variables, v, method=LinenNet.above), c[:, None], -1)
  g = np.asarray(jax.grad(lambda v: f(v).sum())(a))
  a = np.asarray(a)
  want = {"gradcam": (g.mean((1, 2), keepdims=True) * a).sum(-1),
          "layercam": (np.maximum(g, 0) * a).sum(-1)}  # fmt: skip
  for m, ref in want.items():
    for o in (out, same):
      np.testing.assert_allclose(o[m]["layers_1" if o is out else "layers.1"]["raw"][:, 0], ref,
                                 rtol=1e-5, atol=1e-6 * np.abs(ref).max())  # fmt: skip


def test_linen_cam_reads_the_head_by_path_and_refuses_a_layer_before_a_relu(linen_net):
  net, variables, x = linen_net
  # layers_1 is followed by a relu before pooling: CAM does not hold there, and explain says so
  with pytest.raises(ValueError, match="global average pooling"):
    cam.explain((net.apply, variables), x, layers=("layers_1",), methods=("cam",), head="head")
  with pytest.raises(ValueError, match="head='path"):
    cam.explain(lambda v: net.apply(variables, v), x, layers=("layers_1",), methods=("cam",))
  with pytest.raises(ValueError, match="not called"):
    cam.explain((net.apply, variables), x, layers=("layers_7",))


# ----------------------------------------------------------------------------- a tiny NNX ViT


class Block(nnx.Module):
  def __init__(self, d, rngs):
    self.norm1, self.norm2 = nnx.LayerNorm(d, rngs=rngs), nnx.LayerNorm(d, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(2, d, decode=False, rngs=rngs)
    self.mlp = nnx.Sequential(nnx.Linear(d, 2 * d, rngs=rngs), jax.nn.gelu,
                              nnx.Linear(2 * d, d, rngs=rngs))  # fmt: skip

  def __call__(self, t):
    h = self.norm1(t)
    t = t + self.attn(h, h, h)
    return t + self.mlp(self.norm2(t))


class ViT(nnx.Module):
  """8x8 images -> 2x2 patches (4x4 tokens) + a class token -> 2 blocks -> head on the class token."""

  def __init__(self, rngs, d=8, k=3):
    self.embed = nnx.Conv(1, d, (2, 2), strides=(2, 2), rngs=rngs)
    self.cls = nnx.Param(jax.random.normal(rngs.params(), (1, 1, d)))
    self.pos = nnx.Param(0.1 * jax.random.normal(rngs.params(), (1, 17, d)))
    self.blocks = nnx.List([Block(d, rngs), Block(d, rngs)])
    self.norm = nnx.LayerNorm(d, rngs=rngs)
    self.head = nnx.Linear(d, k, rngs=rngs)

  def tokens(self, x):
    p = self.embed(x).reshape(x.shape[0], 16, -1)
    cls = jnp.broadcast_to(self.cls[...], (x.shape[0], 1, p.shape[-1]))
    return jnp.concatenate([cls, p], 1) + self.pos[...]

  def above(self, t):  # what follows blocks.0
    return self.head(self.norm(self.blocks[1](t))[:, 0])

  def __call__(self, x):
    return self.above(self.blocks[0](self.tokens(x)))


def test_vit_token_grid_maps_equal_hand_computed_ones():
  model = ViT(nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 8, 8, 1)), jnp.float32)
  c = jnp.array([1, 2])
  # (not HiRes-CAM: a patch token reaches the head only through LayerNorms, whose scale invariance
  # makes sum_k g^k A^k vanish at every position, a zero map)
  methods = ("gradcam", "layercam", "ablationcam")
  out = cam.explain(model, x, layers=("blocks.0",), reshape=cam.Tokens(4, 4, prefix=1), targets=c,
                    methods=methods)  # fmt: skip
  t = model.blocks[0](model.tokens(x))
  score = lambda tt: jnp.take_along_axis(model.above(tt), c[:, None], -1)[:, 0]
  g = np.asarray(jax.grad(lambda tt: score(tt).sum())(t))[:, 1:].reshape(2, 4, 4, -1)
  a = np.asarray(t)[:, 1:].reshape(2, 4, 4, -1)
  s = np.asarray(score(t))
  w_abl = np.stack([(s - np.asarray(score(t.at[:, 1:, k].set(0.0)))) / s for k in range(8)], -1)
  want = {
    "gradcam": (g.mean((1, 2), keepdims=True) * a).sum(-1),
    "layercam": (np.maximum(g, 0) * a).sum(-1),
    "ablationcam": (a * w_abl[:, None, None]).sum(-1),
  }
  for m, ref in want.items():
    got = out[m]["blocks.0"]
    assert got["map"].shape == (2, 1, 8, 8)
    np.testing.assert_allclose(got["raw"][:, 0], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max(),
                               err_msg=m)  # fmt: skip
  with pytest.raises(ValueError, match="Tokens"):
    cam.explain(model, x, layers=("blocks.0",), methods=("gradcam",))


# ----------------------------------------------------------------------------- taps


class Twice(nnx.Module):
  def __init__(self, rngs):
    self.enc = nnx.Linear(3, 3, rngs=rngs)
    self.out = nnx.Linear(3, 2, rngs=rngs)

  def encode(self, x):
    return jnp.tanh(self.enc(x))

  def __call__(self, x):
    return self.out(self.enc(self.encode(x)))  # enc runs twice, encode once


def test_taps_read_methods_refuse_modules_called_twice_and_restore_the_model():
  model = Twice(nnx.Rngs(0))
  x = jnp.ones((2, 3))
  out, acts = taps.forward(model, x, layers=("encode",))
  np.testing.assert_allclose(acts["encode"], model.encode(x))
  doubled, _ = taps.forward(model, x, layers=("encode",), edits={"encode": lambda y: 2 * y})
  np.testing.assert_allclose(doubled, model.out(model.enc(2 * model.encode(x))), rtol=1e-6)
  with pytest.raises(ValueError, match="called 2 times"):
    taps.forward(model, x, layers=("enc",))
  assert type(model.enc) is nnx.Linear and type(model) is Twice  # classes restored
  np.testing.assert_allclose(model(x), out)


# ----------------------------------------------------------------------------- randomization


def _tiny():
  from genjax import nn
  from genjax.models import classifier

  cfg = classifier.ClassifierConfig(image_shape=(8, 8, 1), num_classes=4, channels=(2, 3, 4),
                                    depth=1, decoder=False)  # fmt: skip
  return nn.build(lambda: classifier.Classifier(cfg, rngs=nnx.Rngs(0)))


def test_randomize_replaces_exactly_the_named_subtrees():
  model = _tiny()
  rand = sanity.randomize(model, ("head", "stage3"), key=jax.random.key(0))
  before = nnx.state(model, nnx.Param)
  after = nnx.state(rand, nnx.Param)
  np.testing.assert_array_equal(after["stage1"]["convs"][0]["kernel"][...],
                                before["stage1"]["convs"][0]["kernel"][...])  # fmt: skip
  for a, b in ((after["head"]["kernel"], before["head"]["kernel"]),
               (after["stage3"]["convs"][0]["kernel"], before["stage3"]["convs"][0]["kernel"])):  # fmt: skip
    assert not np.allclose(a[...], b[...])
    assert float(jnp.std(a[...])) == pytest.approx(float(jnp.std(b[...])), rel=0.5)
  with pytest.raises(ValueError, match="no parameters under 'stage9'"):
    sanity.randomize(model, ("stage9",), key=jax.random.key(0))


def test_cascading_randomization_is_one_for_identical_weights_and_lower_for_random_ones():
  model = _tiny()
  x = jnp.asarray(np.random.default_rng(3).uniform(size=(4, 8, 8, 1)), jnp.float32)
  kw = dict(layers=("stage2", "stage3"), cascade=("head", "stage3", "stage2"),
            methods=("gradcam",))  # fmt: skip
  same = sanity.cascading_randomization(model, x, fresh=model, **kw)
  assert list(same) == ["head", "head+stage3", "head+stage3+stage2"]
  for row in same.values():
    for v in row.values():
      assert v == pytest.approx(1.0)
  rand = sanity.cascading_randomization(model, x, key=jax.random.key(1), **kw)
  assert rand["head+stage3+stage2"]["gradcam/stage3"] < 0.99
