"""reprolib.cli: `reprolib merge CONFIG.yaml --out DIR` on mergekit-style YAML (read by
reprolib.merge.config), `reprolib methods`, and bad command-line options."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from reprolib.cli import main
from reprolib.errors import ConfigError
from reprolib.io import Checkpoint
from reprolib.merge import merge_state_dicts
from reprolib.merge.config import spec_from_dict

MERGEKIT_TIES = """\
merge_method: ties
base_model: {base}
models:
  - model: {base}          # mergekit lists the base too; it is not merged into itself
  - model: {math}
    parameters:
      weight: 1.0
      density: 0.7
  - model: {code}
    parameters:
      weight: 0.5
      density: 0.5
parameters:
  lambda: 0.9
dtype: float32
"""

MERGEKIT_TA = """\
merge_method: task_arithmetic
base_model: {base}
models:
  - model: {math}
    parameters: {{weight: 0.6}}
  - model: {code}
    parameters: {{weight: 0.4}}
dtype: bf16
"""


def _sd(path):
    return Checkpoint(path).state_dict()


@pytest.mark.parametrize("text,method,params,model_params,dtype", [
    # no `normalize` in the YAML: mergekit's default (true) → divisor weights, signs elected from weighted deltas
    (MERGEKIT_TIES, "ties", {"lambda": 0.9, "divisor": "weights", "elect": "weighted"},
     [{"weight": 1.0, "density": 0.7}, {"weight": 0.5, "density": 0.5}], torch.float32),
    (MERGEKIT_TA, "task_arithmetic", {}, [{"weight": 0.6}, {"weight": 0.4}], torch.bfloat16),
])
def test_merge_yaml(family, tmp_path, text, method, params, model_params, dtype):
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(text.format(**{k: str(v) for k, v in family.items()}))
    out = tmp_path / "merged"
    assert main(["merge", str(cfg), "--out", str(out), "--no-progress"]) == 0
    got = _sd(out)
    want, _ = merge_state_dicts(method, [_sd(family["math"]), _sd(family["code"])], base=_sd(family["base"]),
                                params=params, model_params=model_params, out_dtype=dtype)
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert all(t.dtype == dtype for t in got.values())


def test_cli_subprocess_reports_errors(family, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"merge_method: ties\nbase_model: {family['base']}\nmodels: [{family['math']}]\n"
                   "parameters: {density: 2.0}\n")
    proc = subprocess.run([sys.executable, "-m", "reprolib", "merge", str(cfg), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "density" in proc.stderr and "2.0" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_methods_listing(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("task_arithmetic", "ties", "dare_ties", "ptm", "wise_ft", "linear", "safety_arithmetic"):
        assert f"\n{name}\n" in f"\n{out}"


def test_lata_yaml_with_reprolib_keys(family, tmp_path):
    """reprolib's own keys: instruct_model, target_model, seed; a forgetting merge (negative weight)."""
    cfg = tmp_path / "lata.yaml"
    cfg.write_text(
        f"merge_method: lata\nbase_model: {family['base']}\ninstruct_model: {family['instruct']}\n"
        f"target_model: {family['code']}\nmodels:\n  - model: {family['ua']}\n    parameters: {{weight: -1.0}}\n"
        "parameters: {scheme: threshold, sigma: 0.6}\nseed: 3\n")
    out = tmp_path / "forgot"
    assert main(["merge", str(cfg), "--out", str(out), "--no-progress"]) == 0
    want, _ = merge_state_dicts("lata", [_sd(family["ua"])], base=_sd(family["base"]), instruct=_sd(family["instruct"]),
                                target=_sd(family["code"]), params={"scheme": "threshold", "sigma": 0.6},
                                model_params=[{"weight": -1.0}])
    got = _sd(out)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_mergekit_dare_density_is_a_keep_rate(family):
    cfg = {"merge_method": "dare_ties", "base_model": str(family["base"]),
           "models": [{"model": str(family["math"]), "parameters": {"weight": 1.0, "density": 0.7}},
                      {"model": str(family["code"]), "parameters": {"weight": 0.5, "density": 0.7}}]}
    spec = spec_from_dict(cfg)
    assert spec.params["drop_rate"] == pytest.approx(0.3)
    assert all("density" not in mp for mp in spec.model_params)
    cfg["models"][1]["parameters"]["density"] = 0.5
    with pytest.raises(ConfigError, match="differ"):
        spec_from_dict(cfg)
    # with drop_rate given, density keeps its TIES meaning (LATA's p = 0.1, k = 0.9)
    spec = spec_from_dict({"merge_method": "dare_ties", "base_model": "b", "models": ["a"],
                           "parameters": {"drop_rate": 0.1, "density": 0.9}})
    assert spec.params == {"drop_rate": 0.1, "density": 0.9, "divisor": "none", "elect": "weighted"}  # + mergekit's defaults


def test_linear_keeps_a_model_equal_to_base_model():
    spec = spec_from_dict({"merge_method": "linear", "base_model": "x", "models": ["x", "y"]})
    assert spec.models == ["x", "y"]


@pytest.mark.parametrize("args,needle", [(["--max-shard-size", "lots"], "max-shard-size"),
                                         (["--device", "tpu"], "device")])
def test_cli_bad_options(family, tmp_path, capsys, args, needle):
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"merge_method: task_arithmetic\nbase_model: {family['base']}\nmodels: [{family['math']}]\n")
    assert main(["merge", str(cfg), "--out", str(tmp_path / "o"), "--no-progress", *args]) == 2
    assert needle in capsys.readouterr().err and not (tmp_path / "o").exists()
