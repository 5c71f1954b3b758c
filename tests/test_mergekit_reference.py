"""reprolib against mergekit itself: a YAML config in mergekit's form merges as mergekit merges it.

``tests/data/mergekit/`` holds four tiny float32 Llama checkpoints, ten configs written as mergekit
users write them (one or more per method both tools have, some leaving ``normalize`` out) and the
outputs mergekit 0.1.5 produced from them (``record.py`` regenerates all of it; ``manifest.json``
has the versions, command and hashes). Each test merges the same YAML file with reprolib.

DARE configs use density 1.0 (DARE keeps everything): mergekit's masks come from one global random
stream and its rescale is an L1-norm ratio, so random masks cannot be compared entry by entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from reprolib.cli import main
from reprolib.errors import ConfigError
from reprolib.io import Checkpoint
from reprolib.merge import merge_state_dicts
from reprolib.merge import methods as M
from reprolib.merge.config import MERGEKIT_NORMALIZE, load_config, spec_from_dict
from reprolib.merge.engine import merge
from reprolib.merge.registry import REGISTRY, get_method

DATA = Path(__file__).parent / "data" / "mergekit"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
RUNS = sorted(MANIFEST["runs"])
# every method mergekit 0.1.5 registers (mergekit/merge_methods/registry.py)
MERGEKIT_METHODS = {"multislerp", "nearswap", "ram", "ramplus_tl", "sce", "linear", "slerp", "nuslerp", "passthrough",
                    "model_stock", "arcee_fusion", "karcher", "task_arithmetic", "ties", "dare_ties", "dare_linear",
                    "breadcrumbs", "breadcrumbs_ties", "della", "della_linear"}
SHARED = set(REGISTRY) & MERGEKIT_METHODS
ATOL = 1e-6   # observed: 0 for every method but linear (≤ 1.2e-7: mergekit sums the weights in another order)


def _method(run: str) -> str:
    return yaml.safe_load((DATA / MANIFEST["runs"][run]["config"]).read_text())["merge_method"]


def _reference(run: str) -> dict[str, torch.Tensor]:
    return load_file(str(DATA / MANIFEST["runs"][run]["output"]))


def _max_diff(got: dict, want: dict) -> float:
    assert set(got) == set(want)
    return max(float((got[k].float() - want[k].float()).abs().max()) for k in want)


def _differing(got: dict, want: dict) -> float:
    return sum(int((got[k] != want[k]).sum()) for k in want) / sum(v.numel() for v in want.values())


def _sd(path) -> dict[str, torch.Tensor]:
    return Checkpoint(DATA / path).state_dict()


def _api_merge(run: str, **override) -> dict[str, torch.Tensor]:
    """The run's YAML as load_config reads it, merged by the Python API with ``override`` parameters."""
    spec = load_config(DATA / MANIFEST["runs"][run]["config"])
    merged, _ = merge_state_dicts(spec.method, [_sd(m) for m in spec.models],
                                  base=_sd(spec.base_model) if spec.base_model else None,
                                  params={**spec.params, **override}, model_params=spec.model_params)
    return merged


def _yaml(text: str) -> dict:
    return yaml.safe_load(text)


# ----------------------------------------------------------------------------- the fixture


def test_fixture_is_intact_and_names_its_mergekit():
    assert MANIFEST["mergekit"] == "0.1.5" and "mergekit-yaml" in MANIFEST["command"]
    sha = lambda p: hashlib.sha256((DATA / p).read_bytes()).hexdigest()  # noqa: E731
    for run in MANIFEST["runs"].values():
        assert sha(run["config"]) == run["config_sha256"], run["config"]
        assert sha(run["output"]) == run["output_sha256"], run["output"]
    for name, digest in MANIFEST["models"].items():
        assert sha(f"models/{name}/model.safetensors") == digest
    assert sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file()) < 200_000


def test_every_shared_method_has_a_reference():
    assert SHARED == {"linear", "task_arithmetic", "ties", "dare_ties", "dare_linear"}
    assert {_method(run) for run in RUNS} == SHARED
    assert set(MERGEKIT_NORMALIZE) == SHARED - {"linear"}   # linear's normalize default is the same in both


# ----------------------------------------------------------------------------- reprolib == mergekit


@pytest.mark.parametrize("run", RUNS)
def test_reprolib_merge_matches_mergekit(run, tmp_path, monkeypatch):
    """`reprolib merge CONFIG.yaml` (whole tensors) and the streaming engine (blocks of 5 entries,
    so top-k thresholds are streamed) both give mergekit's output for the same file."""
    monkeypatch.chdir(DATA)          # the configs name the models by relative path, as recorded
    cfg = MANIFEST["runs"][run]["config"]
    out = tmp_path / "cli"
    assert main(["merge", cfg, "--out", str(out), "--no-progress", "--no-hash"]) == 0
    want = _reference(run)
    got = Checkpoint(out).state_dict()
    assert all(got[k].dtype == want[k].dtype == torch.float32 for k in want)
    assert _max_diff(got, want) <= ATOL, run
    streamed = Checkpoint(merge(load_config(cfg), tmp_path / "streamed", block_elems=5, progress=False,
                                hash_inputs=False)).state_dict()
    assert all(torch.equal(streamed[k], got[k]) for k in want)


def test_ties_without_normalize_now_matches_mergekit():
    """The reported case: weights 0.5, no `normalize` key. mergekit divides by the agreeing weights
    (its default normalize: true); the TIES paper's count divisor differed in most entries."""
    raw = _yaml((DATA / "configs" / "ties.yaml").read_text())
    assert "normalize" not in (raw.get("parameters") or {})
    assert {m["parameters"]["weight"] for m in raw["models"]} == {0.5}
    want = _reference("ties")
    paper = _api_merge("ties", divisor="count", elect="unweighted")   # what a YAML used to mean
    assert _differing(paper, want) > 0.5 and _max_diff(paper, want) > 1e-2
    assert load_config(DATA / "configs" / "ties.yaml").params["divisor"] == "weights"
    assert _max_diff(_api_merge("ties"), want) <= ATOL


def test_weighted_sign_election_is_what_mergekit_does():
    """Unequal weights: electing from unweighted deltas (the paper) differs from mergekit; from
    weighted ones (a YAML's default) it matches."""
    want = _reference("ties_weighted")
    assert _differing(_api_merge("ties_weighted", elect="unweighted"), want) > 0.05
    assert _max_diff(_api_merge("ties_weighted", elect="weighted"), want) <= ATOL


def test_dare_ties_default_is_mergekits_normalize_false():
    """mergekit's dare_ties default is normalize: false (unlike its ties): the agreeing weighted
    deltas are summed; reading it as normalize: true would halve them here (weights 0.5 + 0.5 → 1)."""
    spec = load_config(DATA / "configs" / "dare_ties.yaml")
    assert spec.params == {"divisor": "none", "elect": "weighted", "drop_rate": 0.0}
    want = _reference("dare_ties")
    assert _differing(_api_merge("dare_ties", divisor="count"), want) > 0.3
    assert _max_diff(_api_merge("dare_ties"), want) <= ATOL


# ----------------------------------------------------------------------------- how keys map


@pytest.mark.parametrize("method,normalize,divisor", [
    ("ties", None, "weights"), ("ties", True, "weights"), ("ties", False, "none"),
    ("dare_ties", None, "none"), ("dare_ties", True, "weights"), ("dare_ties", False, "none"),
])
def test_normalize_maps_onto_divisor(method, normalize, divisor):
    raw = {"merge_method": method, "base_model": "b", "models": [{"model": "a", "parameters": {"weight": 0.5}}]}
    if normalize is not None:
        raw["parameters"] = {"normalize": normalize}
    params = spec_from_dict(raw).params
    assert params["divisor"] == divisor and params["elect"] == "weighted" and "normalize" not in params


def test_reprolib_keys_given_in_yaml_win():
    base = {"merge_method": "ties", "base_model": "b", "models": ["a", "c"]}
    spec = spec_from_dict({**base, "parameters": {"divisor": "count", "elect": "unweighted", "topk_scope": "model"}})
    assert spec.params == {"divisor": "count", "elect": "unweighted", "topk_scope": "model"}
    with pytest.raises(ConfigError, match="'normalize'.*'divisor'.*not both"):
        spec_from_dict({**base, "parameters": {"normalize": True, "divisor": "count"}})
    with pytest.raises(ConfigError, match="normalize.*true/false"):
        spec_from_dict({**base, "parameters": {"normalize": "yes"}})
    # reprolib-only methods get no mergekit defaults
    lata = spec_from_dict({"merge_method": "lata", "base_model": "b", "instruct_model": "i", "models": ["a"],
                           "parameters": {"combine": "ties"}})
    assert lata.params == {"combine": "ties"}


def test_task_arithmetic_normalize_divides_the_weights():
    base = {"merge_method": "task_arithmetic", "base_model": "b",
            "models": [{"model": "a", "parameters": {"weight": 1.0}}, {"model": "c"}],
            "parameters": {"weight": 3.0, "lambda": 0.8}}
    off = spec_from_dict(base)   # mergekit's default for task_arithmetic: normalize false
    assert off.params == {"weight": 3.0, "lambda": 0.8} and off.model_params == [{"weight": 1.0}, {}]
    on = spec_from_dict({**base, "parameters": {**base["parameters"], "normalize": True}})
    assert on.params == {"lambda": 0.8} and on.model_params == [{"weight": 0.25}, {"weight": 0.75}]
    zero = spec_from_dict({**base, "parameters": {"normalize": True},
                           "models": [{"model": "a", "parameters": {"weight": 1.0}},
                                      {"model": "c", "parameters": {"weight": -1.0}}]})
    assert zero.model_params == [{"weight": 1.0}, {"weight": -1.0}]   # Σ w = 0: mergekit divides by 1


def test_int8_mask_is_accepted_for_mergekits_task_arithmetic_family_only():
    for method in MERGEKIT_NORMALIZE:
        spec = spec_from_dict({"merge_method": method, "base_model": "b", "models": ["a"],
                               "parameters": {"int8_mask": True}})
        assert "int8_mask" not in spec.params
    with pytest.raises(ConfigError, match="int8_mask.*true/false"):
        spec_from_dict({"merge_method": "ties", "base_model": "b", "models": ["a"], "parameters": {"int8_mask": 1}})
    spec = spec_from_dict({"merge_method": "linear", "models": ["a", "c"], "parameters": {"int8_mask": True}})
    with pytest.raises(ConfigError, match="int8_mask"):   # mergekit's linear has no int8_mask either
        get_method("linear").resolve(spec.params, spec.model_params)


# ----------------------------------------------------------------------------- the Python API keeps its defaults


def test_python_api_keeps_the_paper_defaults():
    """merge_state_dicts is not a mergekit config: TIES stays the paper's (unweighted election,
    count divisor), and the resolved parameters, which key the results cache, are as before."""
    for name in ("ties", "dare_ties"):
        m = get_method(name)
        defaults = {p.name: p.default for p in m.params}
        assert defaults["divisor"] == "count" and defaults["elect"] == "unweighted"
        resolved, _ = m.resolve({}, [{}])
        assert "elect" not in resolved and resolved["divisor"] == "count"
        assert "elect" in get_method(name).resolve({"elect": "weighted"}, [{}])[0]
        assert "'count' (TIES paper)" in next(p.doc for p in m.params if p.name == "divisor")
    assert {p.name: p.default for p in get_method("linear").params} == {"normalize": True}
    assert {p.name for p in get_method("task_arithmetic").params} == {"lambda"}

    g = torch.Generator().manual_seed(5)
    base = {"w": torch.randn(6, 7, generator=g)}
    models = [{"w": base["w"] + s * torch.randn(6, 7, generator=g)} for s in (1.0, 0.3, 2.0)]
    mps = [{"weight": w, "density": 0.6} for w in (0.2, 1.0, 0.5)]
    got, _ = merge_state_dicts("ties", models, base=base, model_params=mps)
    taus = [m["w"] - base["w"] for m in models]
    trimmed = torch.stack([M.magnitude_prune(t, 0.6) for t in taus])
    agree = trimmed.sign() == torch.where(trimmed.sum(0) >= 0, 1.0, -1.0)          # unweighted election
    w = torch.tensor([0.2, 1.0, 0.5]).view(-1, 1, 1)
    paper = base["w"] + (trimmed * w * agree).sum(0) / agree.sum(0).clamp(min=1)    # count divisor
    assert torch.allclose(got["w"], paper, atol=1e-6)
    weighted, _ = merge_state_dicts("ties", models, base=base, model_params=mps, params={"elect": "weighted"})
    assert not torch.allclose(weighted["w"], paper, atol=1e-6)


def test_explicit_normalize_false_is_recorded_and_matches():
    raw = _yaml((DATA / "configs" / "ties_no_normalize.yaml").read_text())
    assert raw["parameters"] == {"normalize": False}
    assert load_config(DATA / "configs" / "ties_no_normalize.yaml").params == {"divisor": "none", "elect": "weighted"}
    assert _max_diff(_api_merge("ties_no_normalize"), _reference("ties_no_normalize")) <= ATOL
    assert _differing(_api_merge("ties_no_normalize", divisor="weights"), _reference("ties_no_normalize")) > 0.3
