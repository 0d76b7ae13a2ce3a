"""genjax.kernels: both forms (cpu, xla) against independent references and against each other, the
form switch, and what a train step compiles to under each."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import kernels

FORMS = ("cpu", "xla")
DN = ("NHWC", "HWIO", "NHWC")


def _in(form, f):
  """f traced (and run) under `form`; jit is applied inside so the trace sees the form."""

  def run(*args):
    with kernels.use(form):
      return f(*args)

  return run


def _conv_transpose_reference(x, w):
  """Direct definition (PyTorch ConvTranspose2d, k=4, s=2, p=1): y[2i+k-1] += x[i] w[k], per axis."""
  b, h, wd, _ = x.shape
  y = np.zeros((b, 2 * h + 2, 2 * wd + 2, w.shape[-1]))  # one pixel of margin on each side
  for i in range(h):
    for j in range(wd):
      for ky in range(4):
        for kx in range(4):
          y[:, 2 * i + ky, 2 * j + kx] += x[:, i, j] @ w[ky, kx]
  return y[:, 1:-1, 1:-1]


def _lax_conv_transpose(x, w):
  # lax.conv_transpose with transpose_kernel=True is the gradient of a conv: PyTorch's semantics
  # with the kernel's in/out axes swapped.
  return jax.lax.conv_transpose(x, jnp.swapaxes(w, 2, 3), (2, 2), ((2, 2), (2, 2)),
                                dimension_numbers=DN, transpose_kernel=True)  # fmt: skip


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("c_out", [2, 5])  # cpu: one product for all offsets (<= 4 outputs) or four
def test_conv_transpose_2x_matches_direct_definition(form, c_out):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 5, 4, 3))
  w = rng.standard_normal((4, 4, 3, c_out))
  got = _in(form, jax.jit(kernels.conv_transpose_2x))(
    jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
  )
  np.testing.assert_allclose(got, _conv_transpose_reference(x, w), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("c_out", [3, 6])
def test_conv_transpose_2x_values_and_gradients_match_lax_conv_transpose(form, c_out):
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((2, 5, 6, 4)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((4, 4, 4, c_out)), jnp.float32)
  t = jnp.asarray(rng.standard_normal((2, 10, 12, c_out)), jnp.float32)  # a non-symmetric weight
  ours = _in(form, jax.jit(kernels.conv_transpose_2x))(x, w)
  np.testing.assert_allclose(ours, jax.jit(_lax_conv_transpose)(x, w), rtol=1e-4, atol=1e-4)
  loss = lambda f: lambda x, w: jnp.sum(t * f(x, w) ** 2)
  got = _in(form, jax.jit(jax.grad(loss(kernels.conv_transpose_2x), argnums=(0, 1))))(x, w)
  want = jax.jit(jax.grad(loss(_lax_conv_transpose), argnums=(0, 1)))(x, w)
  for g, v in zip(got, want, strict=True):
    np.testing.assert_allclose(g, v, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
  "strides,padding,kernel",
  [
    ((1, 1), ((1, 1), (1, 1)), 3),
    ((2, 2), "SAME", 3),  # input gradient over patches
    ((2, 2), ((1, 1), (1, 1)), 4),  # input gradient over space-to-depth blocks
    ((2, 1), "VALID", 3),
  ],
)
@pytest.mark.parametrize("c_in", [8, 3])  # kernel gradient over taps, or over patches
def test_conv2d_forms_agree_with_lax_in_value_gradients_forward_mode_and_second_order(
  strides, padding, kernel, c_in
):
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.standard_normal((2, 9, 8, c_in)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((kernel, kernel, c_in, 8)), jnp.float32)
  conv = lambda x, w: kernels.conv2d(x, w, strides, padding, dimension_numbers=DN)
  lax_conv = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DN)
  with kernels.use("cpu"):  # the CPU form's own path is taken, and only from 8 output channels
    assert "custom_jvp_call" in str(jax.make_jaxpr(conv)(x, w))
    assert "custom_jvp_call" not in str(jax.make_jaxpr(conv)(x, w[..., :3]))
  with kernels.use("xla"):
    assert "custom_jvp_call" not in str(jax.make_jaxpr(conv)(x, w))
  loss = lambda f: lambda x, w: jnp.sum(jnp.tanh(f(x, w)))
  tangent = jnp.asarray(rng.standard_normal(w.shape), jnp.float32)
  v = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)

  def derivatives(f):
    grad = jax.grad(loss(f), argnums=(0, 1))
    return (
      jax.jit(f)(x, w),
      *jax.jit(grad)(x, w),
      jax.jvp(lambda w: loss(f)(x, w), (w,), (tangent,))[1],  # forward mode
      jax.jvp(lambda x: grad(x, w)[0], (x,), (v,))[1],  # forward over reverse (Grad-CAM++)
      jax.hessian(loss(f), argnums=1)(x, w),  # second order in the kernel
    )

  want = derivatives(lax_conv)
  for form in FORMS:
    got = _in(form, derivatives)(conv)
    for g, r in zip(got, want, strict=True):
      np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4, err_msg=form)


def test_max_pool_2x2_forms_are_bitwise_nnx_max_pool_with_ties_and_second_order():
  rng = np.random.default_rng(4)
  x = np.maximum(rng.standard_normal((2, 6, 8, 3)), 0.0)  # ReLU zeros: whole windows tie at 0
  x[:, 2:4] = 1.0  # windows tied at a non-zero value, where the second derivative sees the choice
  x = jnp.asarray(x, jnp.float32)
  g = jnp.asarray(rng.standard_normal((2, 3, 4, 3)), jnp.float32)
  v = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)

  def derivatives(pool):
    grad = jax.grad(lambda x: jnp.sum(jnp.sin(pool(x)) * g))
    return pool(x), jax.jvp(pool, (x,), (v,))[1], grad(x), jax.jvp(grad, (x,), (v,))[1]

  want = derivatives(lambda x: nnx.max_pool(x, (2, 2), strides=(2, 2)))
  for form in FORMS:
    got = _in(form, derivatives)(kernels.max_pool_2x2)
    assert (got[2] != 0).sum() == g.size  # one element of each window takes the gradient
    for a, b in zip(got, want, strict=True):
      np.testing.assert_array_equal(a, b, err_msg=form)
    with kernels.use(form), pytest.raises(ValueError, match="even"):
      kernels.max_pool_2x2(jnp.zeros((1, 5, 4, 1)))


def test_form_switch_auto_env_and_errors(monkeypatch):
  assert kernels.form() == "cpu"  # auto on the CPU backend
  with kernels.use("xla"):
    assert kernels.chosen() == "xla" and kernels.form() == "xla"
    with kernels.use(None):  # None: the environment's choice, else auto
      assert kernels.form() == "cpu"
  assert kernels.form() == "cpu"
  monkeypatch.setenv("GENJAX_KERNELS", "xla")
  assert kernels.form() == "xla"
  with kernels.use("cpu"):
    assert kernels.form() == "cpu"
  monkeypatch.setenv("GENJAX_KERNELS", "gpu")
  with pytest.raises(ValueError, match=r"\$GENJAX_KERNELS = 'gpu'"):
    kernels.form()
  monkeypatch.delenv("GENJAX_KERNELS")
  with pytest.raises(ValueError, match="auto, cpu, xla"):
    kernels.set_form("fast")


def test_switching_form_recompiles_jitted_functions():
  f = jax.jit(lambda x: kernels.max_pool_2x2(x))
  x = jnp.ones((1, 4, 4, 2))
  with kernels.use("cpu"):
    cpu_text = f.lower(x).as_text()
  with kernels.use("xla"):
    xla_text = f.lower(x).as_text()
    f(x)
  assert "reduce_window" in xla_text and "reduce_window" not in cpu_text


def _primitives(jaxpr) -> list:
  """Every equation of a closed jaxpr, inside sub-jaxprs (jit, custom_jvp, scan) too."""
  out = []
  for eqn in jaxpr.eqns:
    out.append(eqn)
    for p in eqn.params.values():
      for sub in p if isinstance(p, (list, tuple)) else (p,):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          out += _primitives(inner)
  return out


def _classifier_step():
  """The AE-regularized classifier's train step (convolutions, 2x2 pooling, transposed convs)."""
  from experiments.cam import train as cam_train
  from experiments.cam.configs import classifier as cfgs
  from genjax.train import sharding

  config = cfgs.get_config("smoke")
  graphdef, state, step = cam_train.build(config, sharding.make_mesh(1))
  x = jnp.zeros((config.batch_size, 28, 28, 1))
  y = jnp.zeros((config.batch_size,), jnp.int32)
  dense = {tuple(p.shape) for p in jax.tree.leaves(state.params) if p.ndim == 2}
  dense |= {s[::-1] for s in dense}
  return step, (state, (x, y), jax.random.key(0)), dense


def test_under_xla_a_train_step_has_only_xla_convolutions_and_pooling():
  step, args, dense = _classifier_step()
  count = {}
  for form in FORMS:
    with kernels.use(form):
      eqns = _primitives(step.trace(*args).jaxpr.jaxpr)  # step: the jitted train step
      hlo = step.lower(*args).compile().as_text()
    names = [e.primitive.name for e in eqns]
    ours = [e for e in eqns if e.primitive.name == "custom_jvp_call"  # not jax.nn.relu's
            and {"conv_general_dilated", "reduce_max"} & {i.primitive.name for i in _primitives(
              e.params["call_jaxpr"].jaxpr)}]  # fmt: skip
    products = [e for e in eqns if e.primitive.name == "dot_general"]
    count[form] = dict(
      custom=len(ours), conv=hlo.count(" convolution("),
      pool=sum(n.startswith("reduce_window") for n in names),
      # products other than a dense layer's (its kernel [in, out], or out, as an operand or result)
      other=sum(not {tuple(v.aval.shape) for v in (*e.invars, *e.outvars)} & dense for e in products),
    )  # fmt: skip
  xla, cpu = count["xla"], count["cpu"]
  assert xla["custom"] == 0 and xla["other"] == 0 and xla["pool"] > 0 and xla["conv"] > 0
  # the CPU form does the work as products and selects: fewer convolutions, no reduce-window
  assert cpu["custom"] > 0 and cpu["other"] > 0 and cpu["pool"] == 0 and cpu["conv"] < xla["conv"]


def test_config_kernels_sets_the_form_of_a_run_and_both_forms_train_alike(tmp_path):
  from experiments.autoencoder import train as ae_train
  from experiments.autoencoder.configs import conv
  from genjax.train import config as tconfig

  results = {}
  for form in FORMS:
    config = conv.get_config("smoke")
    config.kernels, config.progress = form, False
    try:
      results[form] = ae_train.train_and_evaluate(config, str(tmp_path / form))
      assert kernels.chosen() == form
    finally:
      kernels.set_form(None)
  for k in ("test_mse", "test_bce", "weight_norm"):
    np.testing.assert_allclose(results["xla"][k], results["cpu"][k], rtol=1e-5, err_msg=k)
  config = conv.get_config("smoke")
  config.kernels = "fast"
  with pytest.raises(tconfig.ConfigError, match=r"config.kernels = 'fast': must be one of auto"):
    ae_train.train_and_evaluate(config, str(tmp_path / "bad"))
