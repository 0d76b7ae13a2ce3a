"""ResNet-18 (He et al. 2016) in Flax NNX, laid out as torchvision's resnet18 so its weights load.

    x [B, H, W, 3] -> conv1 7x7/2 -> bn1 -> relu -> maxpool 3x3/2 -> layer1 .. layer4 -> GAP -> fc

Each layer is an nnx.List of two BasicBlocks (3x3 conv, bn, relu, 3x3 conv, bn, + skip, relu); the
first block of layer2..layer4 halves the resolution and its skip is `downsample` = [1x1/2 conv, bn].
Attribute names are torchvision's, so a module's path (`nnx.iter_graph`) joined by dots is the key
prefix of its tensors in `torchvision.models.resnet18().state_dict()`: "layer4.1" is the last block.
Paddings are explicit and symmetric as in torch (flax's "SAME" pads stride-2 convolutions on one
side only), and max pooling pads with -inf. Fully convolutional up to the pooling: any H, W work.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# torchvision's initialization: kaiming_normal_(mode="fan_out", nonlinearity="relu") for convs,
# torch.nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for fc.
_conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")
_fc_init = nnx.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def _conv(c_in: int, c_out: int, k: int, stride: int, *, rngs: nnx.Rngs) -> nnx.Conv:
  p = (k - 1) // 2
  return nnx.Conv(c_in, c_out, (k, k), strides=stride, padding=((p, p), (p, p)), use_bias=False,
                  kernel_init=_conv_init, rngs=rngs)  # fmt: skip


def _bn(c: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
  # torch's momentum 0.1 weights the new batch; flax's momentum weights the running average.
  return nnx.BatchNorm(c, momentum=0.9, epsilon=1e-5, rngs=rngs)


class BasicBlock(nnx.Module):
  """relu(bn2(conv2(relu(bn1(conv1(x))))) + skip(x)), skip = downsample(x) or x: [B, H, W, C_in]
  -> [B, H / stride, W / stride, C_out]."""

  def __init__(self, c_in: int, c_out: int, stride: int = 1, *, rngs: nnx.Rngs):
    self.conv1 = _conv(c_in, c_out, 3, stride, rngs=rngs)
    self.bn1 = _bn(c_out, rngs=rngs)
    self.conv2 = _conv(c_out, c_out, 3, 1, rngs=rngs)
    self.bn2 = _bn(c_out, rngs=rngs)
    self.downsample = (
      nnx.List([_conv(c_in, c_out, 1, stride, rngs=rngs), _bn(c_out, rngs=rngs)])
      if stride != 1 or c_in != c_out
      else None
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    h = nnx.relu(self.bn1(self.conv1(x)))
    h = self.bn2(self.conv2(h))
    skip = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
    return nnx.relu(h + skip)


def _layer(c_in: int, c_out: int, stride: int, *, rngs: nnx.Rngs) -> nnx.List:
  return nnx.List([BasicBlock(c_in, c_out, stride, rngs=rngs), BasicBlock(c_out, c_out, rngs=rngs)])


class ResNet18(nnx.Module):
  """torchvision's resnet18: images [B, H, W, 3] (H, W = 224 for ImageNet) -> logits [B, K]."""

  def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs):
    self.conv1 = _conv(3, 64, 7, 2, rngs=rngs)
    self.bn1 = _bn(64, rngs=rngs)
    self.layer1 = _layer(64, 64, 1, rngs=rngs)
    self.layer2 = _layer(64, 128, 2, rngs=rngs)
    self.layer3 = _layer(128, 256, 2, rngs=rngs)
    self.layer4 = _layer(256, 512, 2, rngs=rngs)
    bound = 1 / np.sqrt(512)
    self.fc = nnx.Linear(512, num_classes, kernel_init=_fc_init, rngs=rngs,
                         bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
                           key, shape, dtype, -bound, bound))  # fmt: skip

  def features(self, x: jax.Array) -> jax.Array:
    """The output of layer4 ("layer4.1"): [B, H, W, 3] -> [B, H / 32, W / 32, 512]."""
    h = nnx.relu(self.bn1(self.conv1(x)))
    h = nnx.max_pool(h, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # pads with -inf
    for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
      for block in layer:
        h = block(h)
    return h

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fc(self.features(x).mean(axis=(1, 2)))


def load_torchvision(model: ResNet18, state_dict: dict) -> None:
  """Copies a torchvision resnet18 state_dict into `model` in place.

  Args:
    model: a ResNet18 (or any NNX model whose module paths are the state_dict's key prefixes).
    state_dict: {"conv1.weight": array, ...}, torch tensors converted to NumPy arrays (e.g.
      `{k: v.numpy() for k, v in m.state_dict().items()}`): conv weights OIHW (-> HWIO), fc weight
      [K, C] (-> [C, K]), batch norm weight, bias, running_mean, running_var.

  Raises:
    ValueError: a tensor of the model is missing from state_dict, has another shape, or a tensor of
      state_dict (other than num_batches_tracked) has no place in the model.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
  used = set()

  def put(var: nnx.Variable, key: str, fn=lambda a: a) -> None:
    if key not in sd:
      raise ValueError(f"state_dict has no {key!r}.")
    a = fn(sd[key])
    if a.shape != var[...].shape:
      raise ValueError(
        f"{key}: shape {a.shape} (after transposing) != the model's {var[...].shape}."
      )
    var[...] = jnp.asarray(a, var[...].dtype)
    used.add(key)

  for path, m in nnx.iter_graph(model):
    name = ".".join(map(str, path))
    if isinstance(m, nnx.Conv):
      put(m.kernel, f"{name}.weight", lambda a: a.transpose(2, 3, 1, 0))  # OIHW -> HWIO
      if m.bias is not None:
        put(m.bias, f"{name}.bias")
    elif isinstance(m, nnx.BatchNorm):
      for var, key in ((m.scale, "weight"), (m.bias, "bias"), (m.mean, "running_mean"),
                       (m.var, "running_var")):  # fmt: skip
        put(var, f"{name}.{key}")
    elif isinstance(m, nnx.Linear):
      put(m.kernel, f"{name}.weight", lambda a: a.T)
      put(m.bias, f"{name}.bias")
  unused = sorted(set(sd) - used)
  if unused:
    raise ValueError(f"state_dict tensors with no place in the model: {unused[:8]}.")
