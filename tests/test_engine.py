"""reprolib.merge.engine: the streaming merge is bitwise equal to the in-memory path, loadable by
transformers and deterministic; it handles odd tensors and mixed dtypes, and its provenance records what
was merged. End-to-end LATA and M³ merges against direct computations."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

from reprolib.io import Checkpoint
from reprolib.merge import MergeSpec, get_method, merge, merge_state_dicts
from reprolib.merge import methods as M
from reprolib.vectors import layer_of

EXPERTS = ("math", "code", "ua")

# (method, params, per-model params, roles) — every registered method at least once
CASES = [
    ("linear", {}, [{"weight": 1.0}, {"weight": 3.0}], {}),
    ("task_arithmetic", {"lambda": 0.7}, [{}, {"weight": 0.5}], {}),
    ("wise_ft", {"alpha": 0.3}, None, {"n": 1}),
    ("ptm", {}, [{"weight": 0.25}, {"weight": 1.0}], {"target": "instruct"}),
    ("safety_arithmetic", {"lambda": 1.0}, [{"density": 0.2}], {"target": "instruct", "n": 1}),
    ("magnitude_prune", {"density": 0.3}, None, {}),
    ("ties", {"density": 0.5}, None, {}),
    ("ties", {"density": 0.3, "topk_scope": "model", "lambda": 1.2}, None, {}),
    ("ties", {"density": 0.7, "divisor": "weights"}, [{"weight": 0.3}, {"weight": 1.0}, {"weight": 2.0}], {"n": 3}),
    ("dare_linear", {"drop_rate": 0.3}, None, {}),
    ("dare_ties", {"drop_rate": 0.1, "density": 0.9}, None, {}),
    ("dare_ties", {"drop_rate": 0.3, "density": 0.7, "topk_scope": "model"}, None, {"n": 3}),
    ("lata", {"scheme": "linear"}, None, {"n": 3}),
    ("lata", {"scheme": "log", "non_block": "rank", "lambda": 1.5}, None, {}),
    ("lata", {"scheme": "threshold", "sigma": 0.5}, [{"weight": -1.0}], {"n": 1, "target": "code"}),
    ("lata", {"scheme": "linear", "combine": "ties", "density": 0.7}, None, {"n": 3}),
    ("lata", {"scheme": "log", "combine": "dare", "drop_rate": 0.3}, None, {}),
    ("lata", {"scheme": "linear", "combine": "dare_ties", "drop_rate": 0.1, "density": 0.9, "topk_scope": "model"}, None, {}),
    ("m3", {"alpha": 0.5}, None, {}),
    ("m3", {"direction": "pseries", "p": 1.0, "scale": 1.7}, None, {"n": 3}),
    ("m3", {"combine": "ties", "density": 0.5, "alpha": 2.0}, None, {}),
    ("m3", {"combine": "dare", "drop_rate": 0.3, "interpolation": 0.3, "scale": 2.0}, None, {}),
    ("m3", {"combine": "dare_ties", "drop_rate": 0.2, "density": 0.7, "direction": "dirichlet"}, None, {"n": 3}),
]


def _spec(family, method, params, model_params, roles, seed=0, dtype=None):
    n = roles.get("n", 2)
    models = [str(family[e]) for e in EXPERTS[:n]]
    m = get_method(method)
    return MergeSpec(method, models, model_params=model_params or [{} for _ in models],
                     base_model=str(family["base"]) if m.needs_base or m.needs_target else None,
                     target_model=str(family[roles["target"]]) if "target" in roles else None,
                     instruct_model=str(family["instruct"]) if m.needs_instruct else None,
                     params=params, seed=seed, dtype=dtype)


def _in_memory(family, spec):
    sd = lambda p: Checkpoint(p).state_dict() if p else None  # noqa: E731
    return merge_state_dicts(spec.method, [sd(m) for m in spec.models], base=sd(spec.base_model),
                             target=sd(spec.target_model), instruct=sd(spec.instruct_model),
                             params=spec.params, model_params=spec.model_params, seed=spec.seed)[0]


@pytest.mark.parametrize("method,params,model_params,roles", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_streaming_equals_in_memory_bitwise(family, tmp_path, method, params, model_params, roles):
    spec = _spec(family, method, params, model_params, roles)
    # a tiny block forces every tensor through many blocks and the streamed top-k selection
    out = merge(spec, tmp_path / "out", block_elems=97, progress=False)
    streamed = Checkpoint(out).state_dict()
    reference = _in_memory(family, spec)
    assert streamed.keys() == reference.keys()
    for name in reference:
        assert streamed[name].dtype == reference[name].dtype
        assert torch.equal(streamed[name], reference[name]), name
    # the merge moved the weights (a no-op merge would also be "equal")
    base = Checkpoint(family["instruct" if "target" in roles else "base"]).state_dict()
    assert any(not torch.equal(streamed[n], base[n]) for n in base)


def test_merged_model_loads_and_generates(family, tmp_path):
    from transformers import AutoModelForCausalLM

    out = merge(_spec(family, "ties", {"density": 0.7}, None, {}), tmp_path / "m", progress=False)
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=5, do_sample=False)
    assert ids.shape == (1, 8)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["method"] == "ties" and prov["model_parameters"][0]["density"] == 0.7
    assert len(prov["inputs"]) == 3 and all(len(e["sha256"]["model.safetensors"]) == 64 for e in prov["inputs"])
    assert prov["versions"]["torch"]


def test_sharded_output_and_bf16(family, tmp_path):
    from transformers import AutoModelForCausalLM

    out = merge(_spec(family, "task_arithmetic", {}, None, {}, dtype="bfloat16"), tmp_path / "m",
                max_shard_bytes=20_000, progress=False)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 3
    sd = Checkpoint(out).state_dict()
    assert all(t.dtype == torch.bfloat16 for t in sd.values())
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    # and the sharded streamed result equals the single-file one
    single = Checkpoint(merge(_spec(family, "task_arithmetic", {}, None, {}, dtype="bfloat16"), tmp_path / "s",
                              progress=False)).state_dict()
    assert all(torch.equal(sd[k], single[k]) for k in single)


def test_tied_embeddings_without_lm_head(tied_family, family, tmp_path):
    from transformers import AutoModelForCausalLM

    out = merge(_spec(tied_family, "ties", {"density": 0.5}, None, {}), tmp_path / "t", progress=False)
    assert "lm_head.weight" not in Checkpoint(out)
    AutoModelForCausalLM.from_pretrained(out)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("method,params", [
    ("dare_linear", {"drop_rate": 0.5}),
    ("dare_ties", {"drop_rate": 0.3, "density": 0.8}),
    ("m3", {"alpha": 0.5}),
    ("m3", {"combine": "dare_ties", "drop_rate": 0.3, "density": 0.8, "alpha": 1.0}),
])
def test_same_seed_same_bytes(family, tmp_path, method, params):
    a = merge(_spec(family, method, params, None, {}, seed=5), tmp_path / "a", block_elems=1000, progress=False)
    b = merge(_spec(family, method, params, None, {}, seed=5), tmp_path / "b", block_elems=77, progress=False)
    c = merge(_spec(family, method, params, None, {}, seed=6), tmp_path / "c", progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db  # every file, provenance included, byte-identical; block size does not matter
    assert da["model.safetensors"] != dc["model.safetensors"]


def _sd(p):
    return Checkpoint(p).state_dict()


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


# ----------------------------------------------------------------------------- LATA and M³ end to end


def test_lata_merge_end_to_end(family, tmp_path):
    """Cosines in provenance equal a direct computation; each tensor is θ_pre + λ_i w_layer (θ_ft − θ_pre)."""
    spec = MergeSpec("lata", [str(family["math"])], base_model=str(family["base"]),
                     instruct_model=str(family["instruct"]), params={"scheme": "linear", "lambda": 1.0})
    out = merge(spec, tmp_path / "lata", progress=False)
    stats = json.loads((out / "provenance.json").read_text())["statistics"]
    base, instr, ft, merged = _sd(family["base"]), _sd(family["instruct"]), _sd(family["math"]), _sd(out)
    blocks = sorted({int(n.split(".")[2]) for n in base if n.startswith("model.layers.")})
    direct = {}
    for i in blocks:
        names = [n for n in base if n.startswith(f"model.layers.{i}.")]
        comp = torch.cat([(ft[n] - base[n]).double().reshape(-1) for n in names])
        ins = torch.cat([(instr[n] - base[n]).double().reshape(-1) for n in names])
        direct[f"layers.{i}"] = float(torch.nn.functional.cosine_similarity(comp, ins, dim=0))
    for layer, c in direct.items():
        assert stats["layer_cosines"][0][layer] == pytest.approx(c, abs=1e-9)
    # the fixture makes deeper layers share more of the instruction shift → more similar → lower rank
    ranks = M.lata_ranks(direct)
    assert ranks == {f"layers.{i}": len(blocks) - i for i in blocks}
    for n in base:
        layer = layer_of(n)
        w = ranks[layer] / len(blocks) if layer.startswith("layers.") else 0.0  # non_block: drop (default)
        assert stats["layer_weights"][0][layer] == pytest.approx(w)
        expected = instr[n] + w * (ft[n] - instr[n])
        assert torch.allclose(merged[n], expected, atol=1e-6), n


def test_lata_forgetting_subtracts_pure_vector(family, tmp_path):
    spec = MergeSpec("lata", [str(family["ua"])], base_model=str(family["base"]), instruct_model=str(family["instruct"]),
                     target_model=str(family["code"]), model_params=[{"weight": -1.0}],
                     params={"scheme": "threshold", "sigma": 0.5})
    out = merge(spec, tmp_path / "forget", progress=False)
    weights = json.loads((out / "provenance.json").read_text())["statistics"]["layer_weights"][0]
    code, instr, ua, merged = _sd(family["code"]), _sd(family["instruct"]), _sd(family["ua"]), _sd(out)
    assert set(weights.values()) <= {0.0, 1.0}
    for n in code:
        assert torch.allclose(merged[n], code[n] - weights[layer_of(n)] * (ua[n] - instr[n]), atol=1e-6)


def test_lata_provenance_identical_across_block_sizes(family, tmp_path):
    spec = MergeSpec("lata", [str(family["math"]), str(family["code"])], base_model=str(family["base"]),
                     instruct_model=str(family["instruct"]), params={"scheme": "log"})
    a = merge(spec, tmp_path / "a", block_elems=97, progress=False)
    b = merge(spec, tmp_path / "b", block_elems=1 << 20, progress=False)
    for f in ("model.safetensors", "provenance.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes()


def test_m3_merge_end_to_end(family, tmp_path):
    spec = MergeSpec("m3", [str(family["math"]), str(family["code"])], base_model=str(family["base"]),
                     params={"alpha": 0.5, "scale": 2.0}, seed=9)
    out = merge(spec, tmp_path / "m3", progress=False)
    lambdas = json.loads((out / "provenance.json").read_text())["statistics"]["lambdas"]
    lam = M.m3_beta_lambda(0.5, 9)
    assert lambdas == [lam, 1.0 - lam]
    base, a, b, merged = _sd(family["base"]), _sd(family["math"]), _sd(family["code"]), _sd(out)
    for n in base:
        expected = base[n] + 2.0 * (lam * (a[n] - base[n]) + (1 - lam) * (b[n] - base[n]))
        assert torch.allclose(merged[n], expected, atol=1e-6), n
