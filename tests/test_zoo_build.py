"""The tiny zoo: builds, caches, reproduces byte for byte, and its models generate."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from reprolib.evals.generate import generate
from reprolib.zoo.build import GRAPH, Zoo


def _sha(folder):
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    zoo = Zoo("tiny", root=tmp_path_factory.mktemp("zoo"), progress=False)
    zoo.build()
    return zoo


def test_builds_every_model_with_provenance(tiny):
    for recipe in GRAPH:
        folder = tiny.path(recipe.name)
        prov = json.loads((folder / "provenance.json").read_text())
        assert prov["recipe"]["name"] == recipe.name and prov["train"]["steps"] >= 1
        assert prov["parent"] == (tiny.model_hash(recipe.parent) if recipe.parent else None)
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg["num_hidden_layers"] >= 8  # enough blocks for LATA's per-layer ranks
        assert (folder / "tokenizer.json").exists()


def test_cache_reload_is_fast_and_untouched(tiny):
    before = {r.name: _sha(tiny.folder(r.name)) for r in GRAPH}
    t0 = time.perf_counter()
    again = Zoo("tiny", root=tiny.root.parent, progress=False).build()
    assert time.perf_counter() - t0 < 5
    assert {n: _sha(p) for n, p in again.items()} == before


def test_same_seed_same_bytes(tiny, tmp_path):
    other = Zoo("tiny", root=tmp_path, progress=False)
    for name in ("base", "instruct"):
        assert _sha(other.path(name)) == _sha(tiny.path(name))


def test_recipe_change_rebuilds_only_descendants(tiny):
    import dataclasses

    zoo = Zoo("tiny", root=tiny.root.parent, progress=False)
    before = {r.name: zoo.model_hash(r.name) for r in GRAPH}
    zoo.recipes["instruct"] = dataclasses.replace(zoo.recipes["instruct"], steps=401)
    after = {r.name: zoo.model_hash(r.name) for r in GRAPH}
    assert after["base"] == before["base"]
    assert all(after[n] != before[n] for n in ("instruct", "math", "code", "ua"))


def test_models_generate(tiny):
    model, tok = tiny.load("instruct"), tiny.tokenizer()
    out = generate(model, tok, ["Repeat this text: river stone", "How many?"], max_new_tokens=5)
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
