"""Edge cases found in review: each pins a behaviour that was once wrong."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from reprolib.cli import main
from reprolib.errors import CheckpointError, ConfigError, TensorMismatchError
from reprolib.io import Checkpoint
from reprolib.merge import MergeSpec, merge, merge_state_dicts
from reprolib.merge import methods as M
from reprolib.merge.config import spec_from_dict


def _sd(p):
    return Checkpoint(p).state_dict()


def test_lata_ties_adds_to_the_target_not_the_base(family):
    """With nothing trimmed and one model, TIES's disjoint mean is the vector itself: LATA+TIES = LATA+TA."""
    kw = dict(base=_sd(family["base"]), instruct=_sd(family["instruct"]))
    ta, _ = merge_state_dicts("lata", [_sd(family["math"])], params={"scheme": "linear"}, **kw)
    ties, _ = merge_state_dicts("lata", [_sd(family["math"])], params={"scheme": "linear", "combine": "ties"}, **kw)
    assert all(torch.allclose(ta[k], ties[k], atol=1e-6) for k in ta)
    forget, _ = merge_state_dicts("lata", [_sd(family["ua"])], target=_sd(family["code"]),
                                  model_params=[{"weight": -1.0}], params={"combine": "ties"}, **kw)
    code = _sd(family["code"])
    moved = [k for k in code if not torch.equal(forget[k], code[k])]
    assert moved and all(k.startswith("model.layers.") for k in moved)  # non-block groups dropped by default


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
    assert spec.params == {"drop_rate": 0.1, "density": 0.9}


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_m3_ties_keeps_single_model_entries_at_extreme_lambda(lam):
    a = torch.tensor([2.0, 1.0, 0.0])
    b = torch.tensor([4.0, 0.0, 3.0])
    out = M.m3_ties(torch.zeros(3), [a, b], [lam, 1 - lam])
    assert torch.equal(out, torch.tensor([2.0 if lam == 1 else 4.0, 1.0, 3.0]))


def test_linear_keeps_a_model_equal_to_base_model():
    spec = spec_from_dict({"merge_method": "linear", "base_model": "x", "models": ["x", "y"]})
    assert spec.models == ["x", "y"]


def test_lata_without_recognised_blocks_is_an_error():
    sd = lambda v: {"weights.0": torch.full((4,), v), "bias": torch.full((2,), v)}  # noqa: E731
    with pytest.raises(ConfigError, match="no transformer blocks"):
        merge_state_dicts("lata", [sd(2.0)], base=sd(0.0), instruct=sd(1.0))


def test_zero_size_tensor(tmp_path):
    for name, v in (("base", 0.0), ("a", 1.0), ("b", 2.0)):
        (tmp_path / name).mkdir()
        save_file({"model.layers.0.w": torch.full((4, 3), v), "model.layers.0.empty": torch.zeros(0, 3)},
                  tmp_path / name / "model.safetensors")
    spec = MergeSpec("ties", [str(tmp_path / "a"), str(tmp_path / "b")], base_model=str(tmp_path / "base"),
                     params={"density": 0.5})
    out = _sd(merge(spec, tmp_path / "out", progress=False))
    ref, _ = merge_state_dicts("ties", [_sd(tmp_path / "a"), _sd(tmp_path / "b")], base=_sd(tmp_path / "base"),
                               params={"density": 0.5})
    assert out["model.layers.0.empty"].shape == (0, 3) and torch.equal(out["model.layers.0.w"], ref["model.layers.0.w"])


def test_fp16_overflow_is_an_error(tmp_path):
    for name, v in (("base", 0.0), ("a", 60000.0), ("b", 60000.0)):
        (tmp_path / name).mkdir()
        save_file({"model.layers.0.w": torch.full((4,), v, dtype=torch.float16)}, tmp_path / name / "model.safetensors")
    spec = MergeSpec("task_arithmetic", [str(tmp_path / "a"), str(tmp_path / "b")], base_model=str(tmp_path / "base"))
    with pytest.raises(TensorMismatchError, match="overflows"):
        merge(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_lata_provenance_identical_across_block_sizes(family, tmp_path):
    spec = MergeSpec("lata", [str(family["math"]), str(family["code"])], base_model=str(family["base"]),
                     instruct_model=str(family["instruct"]), params={"scheme": "log"})
    a = merge(spec, tmp_path / "a", block_elems=97, progress=False)
    b = merge(spec, tmp_path / "b", block_elems=1 << 20, progress=False)
    for f in ("model.safetensors", "provenance.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes()


def test_mixed_dtypes_are_aligned(tmp_path):
    for name, v in (("base", 0.0), ("a", 1.0)):
        (tmp_path / name).mkdir()
        save_file({"a.w": torch.full((3,), v), "b.i": torch.arange(3, dtype=torch.int64),
                   "c.h": torch.full((5,), v, dtype=torch.float16), "d.w": torch.full((4, 3), v)},
                  tmp_path / name / "model.safetensors")
    out = merge(MergeSpec("task_arithmetic", [str(tmp_path / "a")], base_model=str(tmp_path / "base")),
                tmp_path / "out", progress=False)
    for info in Checkpoint(out).tensors.values():
        assert info.start % info.dtype.itemsize == 0, info.name


@pytest.mark.parametrize("raw,needle", [
    ({"merge_method": ["ties"]}, "merge_method"),
    ({"merge_method": "ties", "models": ["a"], "parameters": 0.5}, "parameters"),
    ({"merge_method": "ties", "models": [{"model": "a", "parameters": [1]}]}, "models[0].parameters"),
    ({"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": 1}},
                                           {"model": "b", "parameters": {"weight": -1}}]}, "sum to 0"),
])
def test_more_bad_configs(tmp_path, raw, needle, family):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        spec = spec_from_dict(raw)
        merge(spec, tmp_path / "out", progress=False)


def test_unused_roles_are_errors(family, tmp_path):
    spec = MergeSpec("ties", [str(family["math"])], base_model=str(family["base"]), target_model=str(family["code"]))
    with pytest.raises(ConfigError, match="does not use 'target_model'"):
        merge(spec, tmp_path / "out", progress=False)


@pytest.mark.parametrize("args,needle", [(["--max-shard-size", "lots"], "max-shard-size"),
                                         (["--device", "tpu"], "device")])
def test_cli_bad_options(family, tmp_path, capsys, args, needle):
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"merge_method: task_arithmetic\nbase_model: {family['base']}\nmodels: [{family['math']}]\n")
    assert main(["merge", str(cfg), "--out", str(tmp_path / "o"), "--no-progress", *args]) == 2
    assert needle in capsys.readouterr().err and not (tmp_path / "o").exists()


def _raw_file(path, header: dict, data: bytes):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


@pytest.mark.parametrize("header,needle", [
    ({"w": {"dtype": "F32", "shape": [-1, -2], "data_offsets": [0, 8]}}, "negative dimension"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, "not contiguous"),
])
def test_invalid_headers(tmp_path, header, needle):
    _raw_file(tmp_path / "x.safetensors", header, bytes(16))
    with pytest.raises(CheckpointError, match=needle):
        Checkpoint(tmp_path / "x.safetensors")


def test_malformed_index(family, tmp_path):
    import shutil

    bad = tmp_path / "m"
    shutil.copytree(family["math"], bad)
    (bad / "model.safetensors.index.json").write_text(json.dumps({"weight_map": []}))
    with pytest.raises(CheckpointError, match="unreadable safetensors index"):
        Checkpoint(bad)
