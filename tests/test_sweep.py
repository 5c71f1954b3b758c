"""In-place sweeps: PreparedMerge equals merge_state_dicts bit for bit (new tensors or written into
a model's parameters), the scorer's sweep gives the scores of independent merges, and the Ray
executor gives the local executor's results (a local Ray instance with real worker processes)."""

from __future__ import annotations

import functools

import pytest
import torch

from reprolib.cache import ResultCache
from reprolib.kit import Scorer
from reprolib.merge import PreparedMerge, merge_state_dicts
from reprolib.models import Models

CASES = [
    ("task_arithmetic", {"lambda": 0.7}, [{"weight": 0.5}, {"weight": 1.0}]),
    ("ties", {"density": 0.4, "lambda": 1.0}, None),
    ("ties", {"density": 0.3, "topk_scope": "model", "divisor": "weights"}, [{"weight": 0.3}, {"weight": 0.9}]),
    ("dare_ties", {"drop_rate": 0.5, "density": 0.8}, None),
    ("m3", {"alpha": 0.5}, None),
    ("linear", {}, [{"weight": 0.25}, {"weight": 0.75}]),
]


def _family(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    shapes = {"model.embed_tokens.weight": (50, 16), "model.layers.0.mlp.up_proj.weight": (32, 16),
              "model.layers.1.self_attn.q_proj.weight": (16, 16), "model.norm.weight": (16,)}
    base = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    base["step"] = torch.tensor([3], dtype=torch.int64)
    experts = [{k: (v + 0.1 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
                for k, v in base.items()} for _ in range(2)]
    return {"base": base, "a": experts[0], "b": experts[1]}


@pytest.mark.parametrize("method,params,model_params", CASES)
def test_prepared_merge_equals_merge_state_dicts(method, params, model_params):
    sd = _family()
    prepared = PreparedMerge(method, [sd["a"], sd["b"]], base=sd["base"])
    for seed in (0, 1):
        expected, stats = merge_state_dicts(method, [sd["a"], sd["b"]], base=sd["base"], params=params,
                                            model_params=model_params, seed=seed)
        got, got_stats = prepared.merge(params, model_params, seed)
        assert got.keys() == expected.keys() and got_stats.keys() == stats.keys()
        for k in expected:
            assert torch.equal(got[k], expected[k]), (method, k)
        # in place: written into (and returned as) the given tensors, cast to their dtype
        out = {k: torch.zeros_like(v) for k, v in expected.items()}
        written, _ = prepared.merge(params, model_params, seed, out=out)
        for k in expected:
            assert written[k] is out[k] and torch.equal(out[k], expected[k]), (method, k)
    # the inputs are not modified by any number of merges
    assert all(torch.equal(v, _family()["a"][k]) for k, v in sd["a"].items())


def test_a_scale_sweep_reuses_the_sum_and_keeps_the_bits():
    """Task arithmetic keeps Σ w_i τ_i across a λ sweep (Method.scaled_sum): every point still equals a
    fresh merge bit for bit, and new weights recompute the sum."""
    sd = _family()
    prepared = PreparedMerge("task_arithmetic", [sd["a"], sd["b"]], base=sd["base"])
    for lam, weights in [(0.1, [1.0, 1.0]), (0.55, [1.0, 1.0]), (1.3, [1.0, 1.0]), (0.55, [0.2, 0.7]), (0.9, [0.2, 0.7])]:
        mp = [{"weight": w} for w in weights]
        got, _ = prepared.merge({"lambda": lam}, mp)
        expected, _ = merge_state_dicts("task_arithmetic", [sd["a"], sd["b"]], base=sd["base"], params={"lambda": lam},
                                        model_params=mp)
        assert all(torch.equal(got[k], expected[k]) for k in expected), (lam, weights)
        assert prepared._sums_for == tuple(weights)


def test_prepared_merge_checks_inputs_once():
    sd = _family()
    sd["a"]["model.norm.weight"][0] = float("nan")
    with pytest.raises(Exception, match="model.norm.weight"):
        PreparedMerge("task_arithmetic", [sd["a"], sd["b"]], base=sd["base"])


def _independent(models: Models, sets: dict, method: str, experts, vectors_from, into, params, model_params):
    """What a sweep replaces: one merge_state_dicts per point, loaded into a fresh model, then scored."""
    from reprolib.evals.suite import evaluate

    sd = models.state_dict
    merged, _ = merge_state_dicts(method, [sd(r) for r in experts], base=sd(vectors_from), params=params,
                                  model_params=model_params)
    if into != vectors_from:
        merged = {k: v + (sd(into)[k] - sd(vectors_from)[k]) if v.is_floating_point() else v for k, v in merged.items()}
    model = models.load("instruct")
    model.load_state_dict(merged, strict=False)
    if model.config.tie_word_embeddings:
        model.tie_weights()
    return evaluate(model, models.tokenizer("instruct"), sets, ["ppl"])


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    from foreign import make_foreign_family, write_paper_profile

    root = tmp_path_factory.mktemp("foreign")
    roles = make_foreign_family(root / "models", roles=("base", "instruct", "math", "code", "ua"))
    return write_paper_profile(root / "paper.yaml", roles)


def _sets():
    from reprolib.zoo.report import eval_sets

    return eval_sets(3)


POINTS = [{"model_params": [{"weight": lam}, {"weight": 1.0 - lam}]} for lam in (0.0, 0.3, 1.0)]


def test_sweep_scores_equal_independent_merges(foreign, tmp_path):
    models = Models(str(foreign))
    scorer = Scorer(models, _sets(), ResultCache(tmp_path), {"size": 3})
    swept = scorer.sweep("task_arithmetic", ["math", "code"], "base", POINTS, into="instruct", metrics=["ppl"],
                         progress=False)
    assert len(scorer._prepared) == 1          # the experts' task vectors were prepared once for the grid
    for point, result in zip(POINTS, swept):
        ref = _independent(models, _sets(), "task_arithmetic", ["math", "code"], "base", "instruct", {},
                           point["model_params"])
        assert result["scores"] == ref["scores"] and result["items"] == ref["items"]
    # distinct points give distinct scores (the in-place model really is re-merged each time)
    assert len({r["scores"]["ppl"] for r in swept}) == len(POINTS)


def test_ray_executor_matches_local(foreign, tmp_path):
    ray = pytest.importorskip("ray")
    models = Models(str(foreign))
    local = Scorer(models, _sets(), ResultCache(tmp_path / "local"), {"size": 3})
    expected = local.sweep("ties", ["math", "code"], "base", [{"params": {"density": d}} for d in (0.3, 0.9)],
                           metrics=["ppl"], progress=False)
    remote_cache = ResultCache(tmp_path / "ray")
    remote = Scorer(Models(str(foreign)), _sets(), remote_cache, {"size": 3}, executor="ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        got = remote.sweep("ties", ["math", "code"], "base", [{"params": {"density": d}} for d in (0.3, 0.9)],
                           metrics=["ppl"], progress=False)
        jobs = [functools.partial(remote.score_role, r, ["ppl"]) for r in ("math", "code")]
        roles = remote.grid(jobs, progress=False)
    finally:
        ray.shutdown()
    assert [g["scores"] for g in got] == [e["scores"] for e in expected]
    assert [g["items"] for g in got] == [e["items"] for e in expected]
    assert roles[0]["scores"] != roles[1]["scores"]
    # every point was computed in a worker and written into the shared cache: the caller now hits it
    assert remote_cache.misses == 0 and len(list((tmp_path / "ray").rglob("*.json"))) == 4
    again = Scorer(Models(str(foreign)), _sets(), ResultCache(tmp_path / "ray"), {"size": 3})
    assert again.sweep("ties", ["math", "code"], "base", [{"params": {"density": 0.3}}], metrics=["ppl"],
                       progress=False)[0]["scores"] == expected[0]["scores"]
    assert again.cache.hits == 1 and again.cache.misses == 0


def test_unknown_executor_is_an_error(foreign, tmp_path):
    from reprolib.errors import ConfigError
    from reprolib.kit.executors import run_jobs

    with pytest.raises(ConfigError, match="executor"):
        run_jobs([lambda: {}], "dask")


def test_eval_device_follows_the_environment(monkeypatch):
    from reprolib.errors import ConfigError
    from reprolib.models import eval_device

    monkeypatch.delenv("REPROLIB_DEVICE", raising=False)
    assert eval_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("REPROLIB_DEVICE", "cpu")
    assert eval_device() == "cpu"
    if not torch.cuda.is_available():
        monkeypatch.setenv("REPROLIB_DEVICE", "cuda")
        with pytest.raises(ConfigError, match="REPROLIB_DEVICE"):
            eval_device()
