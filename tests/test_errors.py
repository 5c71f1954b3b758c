"""Bad input to reprolib.merge (engine, registry, config) and the reprolib.errors hierarchy: each case must
fail with a message naming the culprit and leave no output behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from reprolib.errors import CheckpointError, ConfigError, OutputExistsError, ReprolibError, TensorMismatchError
from reprolib.merge import MergeSpec, merge, merge_state_dicts
from reprolib.merge.config import load_config, spec_from_dict

WEIGHT = "model.layers.1.mlp.up_proj.weight"


def _copy(family, tmp_path: Path, name: str = "code") -> Path:
    dst = tmp_path / f"{name}_copy"
    shutil.copytree(family[name], dst)
    return dst


def _edit(folder: Path, fn) -> Path:
    """Rewrite folder/model.safetensors through fn(state_dict)."""
    f = folder / "model.safetensors"
    sd = load_file(f)
    fn(sd)
    save_file(sd, f, metadata={"format": "pt"})
    return folder


def _edit_config(folder: Path, **changes) -> Path:
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _fails(tmp_path, spec, exc, *needles):
    out = tmp_path / "out"
    with pytest.raises(exc) as info:
        merge(spec, out, progress=False)
    msg = str(info.value)
    for needle in needles:
        assert str(needle) in msg, f"{needle!r} not in {msg!r}"
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")], "temporary folder left behind"
    return msg


def _spec(family, second, method="ties", params=None, **kw):
    return MergeSpec(method, [str(family["math"]), str(second)], base_model=str(family["base"]),
                     params={"density": 0.5} if params is None else params, **kw)


def test_shape_mismatch(family, tmp_path):
    bad = _edit(_copy(family, tmp_path), lambda sd: sd.__setitem__(WEIGHT, sd[WEIGHT][:-1].clone()))
    _fails(tmp_path, _spec(family, bad), TensorMismatchError, WEIGHT, "shape", str(bad))


def test_dtype_mismatch(family, tmp_path):
    bad = _edit(_copy(family, tmp_path), lambda sd: sd.__setitem__(WEIGHT, sd[WEIGHT].half()))
    _fails(tmp_path, _spec(family, bad), TensorMismatchError, WEIGHT, "dtype", str(bad))


def test_missing_tensor(family, tmp_path):
    bad = _edit(_copy(family, tmp_path), lambda sd: sd.pop(WEIGHT))
    _fails(tmp_path, _spec(family, bad), TensorMismatchError, WEIGHT, "missing", str(bad))


def test_extra_tensor(family, tmp_path):
    bad = _edit(_copy(family, tmp_path), lambda sd: sd.__setitem__("model.extra.weight", torch.zeros(3)))
    _fails(tmp_path, _spec(family, bad), TensorMismatchError, "model.extra.weight", str(bad))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_input(family, tmp_path, value):
    def poison(sd):
        sd[WEIGHT][3, 5] = value

    bad = _edit(_copy(family, tmp_path), poison)
    _fails(tmp_path, _spec(family, bad), TensorMismatchError, WEIGHT, "NaN or Inf", str(bad))


def test_truncated_safetensors(family, tmp_path):
    bad = _copy(family, tmp_path)
    f = bad / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-1000])
    _fails(tmp_path, _spec(family, bad), CheckpointError, "truncated", str(f))


def test_corrupt_header(family, tmp_path):
    bad = _copy(family, tmp_path)
    f = bad / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[8:20] = b"not json!!!!"
    f.write_bytes(bytes(data))
    _fails(tmp_path, _spec(family, bad), CheckpointError, "corrupt", str(f))


def test_pickle_checkpoint_refused(family, tmp_path):
    bad = _copy(family, tmp_path)
    torch.save(load_file(bad / "model.safetensors"), bad / "pytorch_model.bin")
    (bad / "model.safetensors").unlink()
    _fails(tmp_path, _spec(family, bad), CheckpointError, "pytorch_model.bin", "pickle", str(bad))


def test_missing_shard_in_index(family, tmp_path):
    bad = _copy(family, tmp_path)
    (bad / "model.safetensors").rename(bad / "model-00001-of-00002.safetensors")
    (bad / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        WEIGHT: "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"}}))
    _fails(tmp_path, _spec(family, bad), CheckpointError, "model-00002-of-00002.safetensors")


def test_architecture_mismatch(family, tmp_path):
    bad = _edit_config(_copy(family, tmp_path), model_type="gpt2", architectures=["GPT2LMHeadModel"])
    _fails(tmp_path, _spec(family, bad), TensorMismatchError, "model_type", str(bad))


def test_vocab_size_mismatch(family, tmp_path):
    def grow(sd):
        for k in ("model.embed_tokens.weight", "lm_head.weight"):
            sd[k] = torch.cat([sd[k], torch.zeros(4, sd[k].shape[1])])

    bad = _edit_config(_edit(_copy(family, tmp_path), grow), vocab_size=100)
    _fails(tmp_path, _spec(family, bad), TensorMismatchError, "vocab_size", "100", str(bad))


def test_missing_checkpoint(family, tmp_path):
    _fails(tmp_path, _spec(family, tmp_path / "nowhere"), CheckpointError, "nowhere", "does not exist")


def test_unknown_method(family, tmp_path):
    _fails(tmp_path, _spec(family, family["code"], method="tiez"), ConfigError, "tiez", "ties")


@pytest.mark.parametrize("method,params,needle", [
    ("ties", {"density": 1.5}, "density"),
    ("ties", {"density": -0.1}, "density"),
    ("dare_linear", {"drop_rate": 1.0}, "drop_rate"),
    ("ties", {"density": 0.5, "lambda": float("nan")}, "lambda"),
    ("ties", {"density": 0.5, "topk_scope": "layer"}, "topk_scope"),
    ("ties", {"density": "high"}, "density"),
    ("task_arithmetic", {"sigma": 0.5}, "sigma"),
])
def test_out_of_range_or_unknown_parameter(family, tmp_path, method, params, needle):
    _fails(tmp_path, _spec(family, family["code"], method=method, params=params), ConfigError, needle)


def test_wise_ft_alpha_out_of_range(family, tmp_path):
    spec = MergeSpec("wise_ft", [str(family["math"])], base_model=str(family["base"]), params={"alpha": 1.5})
    _fails(tmp_path, spec, ConfigError, "alpha", "1.5")


def test_wrong_model_count(family, tmp_path):
    spec = MergeSpec("wise_ft", [str(family["math"]), str(family["code"])], base_model=str(family["base"]))
    _fails(tmp_path, spec, ConfigError, "wise_ft", "1", "got 2")


def test_missing_base_model(family, tmp_path):
    spec = MergeSpec("ties", [str(family["math"]), str(family["code"])], params={"density": 0.5})
    _fails(tmp_path, spec, ConfigError, "base_model")


def test_output_exists(family, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match=str(out)):
        merge(_spec(family, family["code"]), out, progress=False)
    assert (out / "keep.txt").read_text() == "precious"


def test_interrupted_merge_leaves_nothing(family, tmp_path, monkeypatch):
    import reprolib.merge.engine as engine

    calls = {"n": 0}
    real = engine.ShardedWriter.write

    def write_then_interrupt(self, name, block, last):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(self, name, block, last)

    monkeypatch.setattr(engine.ShardedWriter, "write", write_then_interrupt)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        merge(_spec(family, family["code"]), out, progress=False)
    assert calls["n"] == 10
    assert list(tmp_path.iterdir()) == []


def test_cuda_requested_without_gpu(family, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="cuda"):
        merge(_spec(family, family["code"]), out, device="cuda", progress=False)
    assert not out.exists()


@pytest.mark.parametrize("text,needle", [
    ("merge_method: ties\nmodels: [a, b\n", "unreadable YAML"),
    ("- just\n- a list\n", "mapping"),
    ("merge_method: ties\nbase_modle: x\n", "base_modle"),
    ("base_model: x\nmodels: [a]\n", "merge_method"),
    ("merge_method: ties\nmodels:\n  - {modle: a}\n", "models[0]"),
])
def test_bad_yaml(tmp_path, text, needle):
    f = tmp_path / "merge.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert needle in str(info.value) and str(f) in str(info.value)


def test_every_error_is_a_reprolib_error():
    for exc in (CheckpointError, ConfigError, OutputExistsError, TensorMismatchError):
        assert issubclass(exc, ReprolibError)


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


@pytest.mark.parametrize("method,models,params,needle", [
    ("m3", 3, {"direction": "beta"}, "two models"),
    ("m3", 3, {"interpolation": 0.3}, "interpolation"),
    ("m3", 2, {"alpha": 0.0}, "alpha"),
    ("m3", 2, {"density": 0.5}, "combine"),
    ("lata", 2, {"drop_rate": 0.2}, "drop_rate"),
    ("lata", 2, {"sigma": 1.5}, "sigma"),
    ("lata", 2, {"scheme": "cubic"}, "scheme"),
])
def test_lata_m3_bad_parameters(family, tmp_path, method, models, params, needle):
    spec = MergeSpec(method, [str(family[e]) for e in ("math", "code", "ua")[:models]], base_model=str(family["base"]),
                     instruct_model=str(family["instruct"]) if method == "lata" else None, params=params)
    with pytest.raises(ConfigError, match=needle):
        merge(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_lata_without_recognised_blocks_is_an_error():
    sd = lambda v: {"weights.0": torch.full((4,), v), "bias": torch.full((2,), v)}  # noqa: E731
    with pytest.raises(ConfigError, match="no transformer blocks"):
        merge_state_dicts("lata", [sd(2.0)], base=sd(0.0), instruct=sd(1.0))


def test_fp16_overflow_is_an_error(tmp_path):
    for name, v in (("base", 0.0), ("a", 60000.0), ("b", 60000.0)):
        (tmp_path / name).mkdir()
        save_file({"model.layers.0.w": torch.full((4,), v, dtype=torch.float16)}, tmp_path / name / "model.safetensors")
    spec = MergeSpec("task_arithmetic", [str(tmp_path / "a"), str(tmp_path / "b")], base_model=str(tmp_path / "base"))
    with pytest.raises(TensorMismatchError, match="overflows"):
        merge(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
