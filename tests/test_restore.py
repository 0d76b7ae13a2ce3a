"""genjax.train.checkpoint's restore helpers: a run's config back from its workdir, the newest
checkpoint into a template, and a model's weights alone (no optimizer state) for inference."""

import json

import chex
import jax
import pytest

from experiments.faceswap import train as fs_train
from experiments.faceswap.configs import shared_encoder
from experiments.identity import train as id_train
from experiments.identity.configs import identity as id_config
from experiments.simswap import train as sim_train
from experiments.simswap.configs import simswap as sim_config
from genjax.train import checkpoint, sharding


def test_run_config_turns_model_lists_back_into_tuples_and_names_a_missing_file(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(
    {"seed": 3, "model": {"channels": [8, 16], "nested": {"shape": [[1, 2], [3]]}, "width": 4}}
  ))  # fmt: skip
  config = checkpoint.run_config(tmp_path)
  assert config.seed == 3 and config.model.width == 4
  assert config.model.channels == (8, 16)
  assert config.model.nested.shape == ((1, 2), (3,))
  with pytest.raises(FileNotFoundError, match="results.json"):
    checkpoint.run_config(tmp_path, finished=True)
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    checkpoint.restore_latest(tmp_path, {"x": 0})


def test_a_face_swap_run_restores_to_its_last_state(tmp_path):
  config = shared_encoder.get_config("smoke")
  fs_train.train_and_evaluate(config, str(tmp_path))
  graphdef, state, restored_config = fs_train.restore(tmp_path)
  assert restored_config.model.to_dict() == config.model.to_dict()
  assert int(state.step) == config.num_steps
  # the same weights the run's own checkpointer restores
  _, template, _ = fs_train.build(restored_config, sharding.make_mesh(1))
  ckpt = checkpoint.Checkpointer(tmp_path / "checkpoints", every=0)
  expected = ckpt.restore(template)
  ckpt.close()
  chex.assert_trees_all_equal(jax.device_get(state), jax.device_get(expected))


def test_the_identity_injection_model_reads_the_identity_nets_weights_only(tmp_path):
  config = id_config.get_config("smoke")
  results = id_train.train_and_evaluate(config, str(tmp_path))
  # the whole train state of the identity run, optimizer included, through its own build
  run = checkpoint.run_config(tmp_path, finished=True)
  _, template, _ = id_train.build(run, sharding.make_mesh(1), results["num_train_ids"])
  full = checkpoint.restore_latest(tmp_path, template)
  c = sim_config.get_config("smoke")
  c.identity_workdir = str(tmp_path)
  _, (params, rest) = sim_train.identity_net(c, sharding.make_mesh(1))
  chex.assert_trees_all_equal(jax.device_get(params), jax.device_get(full.params))
  chex.assert_trees_all_equal(jax.device_get(rest), jax.device_get(full.rest))
