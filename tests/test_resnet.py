"""ResNet-18: torchvision's layout (paths, sizes, parameter count) and, with torchvision, its logits."""

import chex
import jax
import numpy as np
import pytest
from flax import nnx

from genjax.models import resnet


@pytest.fixture(scope="module")
def model():
  m = resnet.ResNet18(rngs=nnx.Rngs(0))
  m.eval()
  return m


def _torch_layout(m: resnet.ResNet18) -> dict:
  """The model's tensors as torchvision names and lays them out (OIHW convs, [K, C] fc)."""
  sd = {}
  for path, mod in nnx.iter_graph(m):
    name = ".".join(map(str, path))
    if isinstance(mod, nnx.Conv):
      sd[f"{name}.weight"] = np.asarray(mod.kernel[...]).transpose(3, 2, 0, 1)
    elif isinstance(mod, nnx.BatchNorm):
      for key, var in (("weight", mod.scale), ("bias", mod.bias), ("running_mean", mod.mean),
                       ("running_var", mod.var)):  # fmt: skip
        sd[f"{name}.{key}"] = np.asarray(var[...])
    elif isinstance(mod, nnx.Linear):
      sd[f"{name}.weight"] = np.asarray(mod.kernel[...]).T
      sd[f"{name}.bias"] = np.asarray(mod.bias[...])
  return sd


def test_shapes_and_paths(model, key):
  x = jax.random.normal(key, (2, 64, 64, 3))
  chex.assert_shape(model(x), (2, 1000))
  chex.assert_shape(model.features(x), (2, 2, 2, 512))
  small = resnet.ResNet18(10, rngs=nnx.Rngs(1))
  small.eval()
  logits = small(x[:, :32, :32])
  chex.assert_shape(logits, (2, 10))
  chex.assert_tree_all_finite(logits)
  paths = {".".join(map(str, p)) for p, m in nnx.iter_graph(model) if isinstance(m, nnx.Module)}
  blocks = {f"layer{i}.{j}" for i in range(1, 5) for j in range(2)}
  assert blocks <= paths
  assert {"conv1", "bn1", "fc", "layer2.0.downsample.0", "layer4.0.downsample.1"} <= paths
  assert "layer1.0.downsample" not in paths  # layer1 keeps 64 channels and the resolution
  assert isinstance(model.layer4[1], resnet.BasicBlock)
  n = sum(v[...].size for _, v in nnx.iter_graph(model) if isinstance(v, nnx.Param))
  assert n == 11_689_512  # torchvision resnet18's parameter count


def test_load_round_trip(model, key):
  """Tensors laid out as torchvision's load into a fresh model and give the same logits."""
  sd = _torch_layout(model)
  assert len(sd) == 102  # torchvision's state_dict has 122 keys, 20 of them num_batches_tracked
  other = resnet.ResNet18(rngs=nnx.Rngs(1))
  other.eval()
  x = jax.random.normal(key, (2, 32, 32, 3))
  assert not np.allclose(other(x), model(x))
  resnet.load_torchvision(other, sd | {"bn1.num_batches_tracked": np.array(0)})
  np.testing.assert_array_equal(other(x), model(x))
  with pytest.raises(ValueError, match="has no 'fc.bias'"):
    resnet.load_torchvision(other, {k: v for k, v in sd.items() if k != "fc.bias"})
  with pytest.raises(ValueError, match="shape"):
    resnet.load_torchvision(other, sd | {"fc.weight": sd["fc.weight"][:10]})
  with pytest.raises(ValueError, match="no place"):
    resnet.load_torchvision(other, sd | {"layer5.0.conv1.weight": sd["conv1.weight"]})


def test_matches_torchvision():
  torch = pytest.importorskip("torch")
  from genjax.bench import cam_pytorch

  try:
    cam_pytorch.import_torchvision()
  except ImportError:
    pytest.skip("torchvision is not installed")
  tm = cam_pytorch.torch_resnet18(0)  # torch.manual_seed(0), random batch norm statistics
  assert float(tm.bn1.running_var.std()) > 0.1
  jm = resnet.ResNet18(rngs=nnx.Rngs(0))
  resnet.load_torchvision(jm, {k: v.numpy() for k, v in tm.state_dict().items()})
  jm.eval()
  x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  with torch.no_grad():
    expected = tm(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  got = np.asarray(jm(x))
  assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
  np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
