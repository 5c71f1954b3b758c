"""reprolib.cache: config-keyed results, atomic writes, hand-edited entries not trusted."""

from __future__ import annotations

from reprolib.cache import ResultCache, config_key


def test_cache_computes_once_and_keys_by_config(tmp_path):
    cache = ResultCache(tmp_path, "ns")
    calls = []
    compute = lambda: calls.append(1) or {"score": 0.5}  # noqa: E731
    cfg = {"method": "ties", "params": {"k": 0.7}, "models": {"a": "h1"}}
    assert cache.get_or_compute(cfg, compute) == {"score": 0.5}
    assert cache.get_or_compute({"models": {"a": "h1"}, "params": {"k": 0.7}, "method": "ties"}, compute) == {"score": 0.5}
    assert len(calls) == 1 and cache.hits == 1 and cache.misses == 1
    cache.get_or_compute({**cfg, "params": {"k": 0.9}}, compute)
    assert len(calls) == 2
    entry = cache.path(cfg)
    assert entry.name == f"{config_key(cfg)}.json"
    import json

    stored = json.loads(entry.read_text())
    assert stored["config"] == cfg and "versions" in stored["provenance"]
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]      # no temporary files left
    stored["config"]["params"]["k"] = 0.1                             # hand-edited entry: not trusted
    entry.write_text(json.dumps(stored))
    cache.get_or_compute(cfg, compute)
    assert len(calls) == 3
    assert ResultCache(tmp_path, "ns", enabled=False).get(cfg) is None


def test_a_computed_result_comes_back_as_a_cached_one_reads(tmp_path):
    """Cold (computed) and warm (read back) results iterate in the same order, so a sum over their keys, a
    table's columns or a bootstrap over their items gives the same bytes either way."""
    import json

    cache = ResultCache(tmp_path, "ns")
    result = {"taujp": 190.9989, "cosine": 3.5e-4, "items": {"sst2": [1, 0], "cola": [0.1, 0.2, 0.7]}}
    cold = cache.get_or_compute({"pair": "a-b"}, lambda: result)
    warm = cache.get_or_compute({"pair": "a-b"}, lambda: result)
    assert cache.misses == 1 and cache.hits == 1
    assert list(cold) == list(warm) == ["cosine", "items", "taujp"] and list(cold["items"]) == ["cola", "sst2"]
    assert json.dumps(cold) == json.dumps(warm)
