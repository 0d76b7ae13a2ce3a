"""A 2-step smoke run of every experiment config and variant, on small generated data."""

import importlib
from pathlib import Path

import numpy as np
import pytest

from experiments.autoencoder import train as ae_train
from experiments.autoencoder.configs import variants

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
  p for p in (ROOT / "experiments").glob("*/configs/*.py") if p.stem not in ("__init__", "variants")
)
AE_VARIANTS = [v for v in variants.VARIANTS if v != "smoke"]


def test_every_config_file_has_a_docstring_with_its_command():
  assert CONFIGS
  for path in CONFIGS:
    module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert "python scripts/train.py --config" in (module.__doc__ or ""), path


# Every term of the objective at once (weight penalty, sparse code, corrupted input, contractive
# Jacobian, MSE reconstruction): one compile covers what the single variants use.
ALL_TERMS = "l1,sparse,denoising,contractive,mse"


@pytest.mark.parametrize("variant", ["plain", ALL_TERMS])
@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_autoencoder_smoke(arch, variant, tmp_path):
  module = importlib.import_module(f"experiments.autoencoder.configs.{arch}")
  config = module.get_config(f"{variant},smoke")
  results = ae_train.train_and_evaluate(config, str(tmp_path))
  assert results["step"] == 2
  assert np.isfinite(results["test_mse"]) and np.isfinite(results["test_bce"])


@pytest.mark.parametrize("variant", AE_VARIANTS)
def test_every_variant_builds_a_valid_objective(variant):
  c = variants.apply(variants.base("dense"), f"{variant},smoke")
  cfg = ae_train.LossConfig(**c.loss.to_dict())
  assert cfg.reconstruction in ("bce", "mse") and cfg.penalty in ("none", "l1", "l2", "frobenius")
  active = {
    "l1": cfg.penalty == "l1", "l2": cfg.penalty == "l2", "frobenius": cfg.penalty == "frobenius",
    "sparse": cfg.sparsity > 0, "denoising": cfg.denoise != "none" and cfg.noise_level > 0,
    "contractive": cfg.contractive > 0, "mse": cfg.reconstruction == "mse", "plain": True,
  }  # fmt: skip
  assert active[variant]
  assert c.num_steps == 2 and c.dataset == "mock"


def test_unknown_variant_is_rejected():
  with pytest.raises(ValueError, match="unknown variant"):
    variants.apply(variants.base("dense"), "l2,bogus")


def test_sweep_report_table_and_figures(tmp_path):
  from experiments.autoencoder import sweep

  rows = []
  for i, lam in enumerate((1e-4, 1e-3)):
    c = variants.apply(variants.base("dense"), "l2").to_dict()
    c["loss"]["weight_decay"] = lam
    rows.append((f"dense-l2-lambda{lam:g}", {"config": c, "step": 10, "test_mse": 0.02 + i * 0.01,
                                             "test_bce": 0.3, "weight_norm": 50.0 - i}))  # fmt: skip
  sweep.write_report(tmp_path, rows)
  table = (tmp_path / "results.md").read_text().splitlines()
  assert len(table) == 4 and "| dense-l2-lambda0.001 | bce | 0.001 | 10 | 0.03000 |" in table[3]
  assert (tmp_path / "lambda.png").stat().st_size > 0
