"""Paper profiles: clear errors for missing paths and wrong architectures."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from reprolib.errors import CheckpointError, ConfigError
from reprolib.zoo.profiles import SHIPPED, load_paper_profile


def _write(tmp_path, roles, model_type="llama"):
    f = tmp_path / "profile.yaml"
    f.write_text(yaml.safe_dump({"name": "t", "model_type": model_type, "roles": {k: str(v) for k, v in roles.items()}}))
    return f


def test_valid_profile(family, tmp_path):
    roles = load_paper_profile(_write(tmp_path, {r: family[r] for r in ("base", "instruct", "math")}))
    assert set(roles) == {"base", "instruct", "math"}


def test_missing_path_names_role_and_path(family, tmp_path):
    with pytest.raises(CheckpointError, match=r"role 'math'.*nowhere.*does not exist"):
        load_paper_profile(_write(tmp_path, {"base": family["base"], "math": tmp_path / "nowhere"}))


def test_shipped_example_fails_clearly_without_local_checkpoints():
    with pytest.raises(CheckpointError, match="role 'base'.*Meta-Llama-3-8B.*does not exist"):
        load_paper_profile(SHIPPED / "paper-lata-llama3-8b.yaml")


def test_wrong_architecture(family, tmp_path):
    other = tmp_path / "gemma"
    shutil.copytree(family["math"], other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model_type"] = "gemma2"
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"role 'math'.*gemma2.*expects 'llama'"):
        load_paper_profile(_write(tmp_path, {"base": family["base"], "math": other}))


def test_depth_mismatch_with_base(family, tmp_path):
    other = tmp_path / "deeper"
    shutil.copytree(family["math"], other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["num_hidden_layers"] = 40
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="num_hidden_layers = 40 differs"):
        load_paper_profile(_write(tmp_path, {"base": family["base"], "math": other}))


@pytest.mark.parametrize("text", ["roles: []", "name: x", "- a", "roles: {base: 3}"])
def test_malformed_profile(tmp_path, text):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError):
        load_paper_profile(f)
