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
def tiny(tiny_zoo):
    return tiny_zoo


def test_builds_every_model_with_provenance(tiny):
    for recipe in GRAPH:
        folder = tiny.path(recipe.name)
        prov = json.loads((folder / "provenance.json").read_text())
        assert prov["recipe"]["name"] == recipe.name and prov["train"]["steps"] >= 1
        assert prov["parent"] == (tiny.model_hash(recipe.parent) if recipe.parent else None)
        assert prov["machine"]["cpu_capability"] and prov["machine"]["cores"] >= 1   # trained bytes can depend on it
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg["num_hidden_layers"] >= 8  # enough blocks for LATA's per-layer ranks
        assert (folder / "tokenizer.json").exists()


def test_cache_reload_is_fast_and_untouched(tiny):
    before = {n: _sha(tiny.folder(n)) for n in tiny.names()}
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
    descendants = {r.name for r in GRAPH if r.parent == "instruct"} | {"instruct"}
    assert descendants >= {"math", "code", "ua", "lang_a", "math_s1"}
    assert all(after[n] != before[n] for n in descendants)
    assert all(after[n] == before[n] for n in before if n not in descendants)


def _hashes_with(monkeypatch, zoo, name, patched):
    """Every model's hash with generator ``name`` of the data module replaced by ``patched(original)``."""
    from reprolib.zoo import build
    from reprolib.zoo import data as D

    monkeypatch.setattr(D, name, patched(getattr(D, name)))
    build.clear_fingerprints()
    try:
        return {r.name: zoo.model_hash(r.name) for r in GRAPH}
    finally:
        monkeypatch.undo()
        build.clear_fingerprints()


def test_corpus_generator_change_rebuilds_every_model(tiny, monkeypatch):
    """A generator that the pre-training corpus reads changes every model's hash (the tokenizer and
    every replay read the corpus), with no DATA_VERSION bump needed."""
    zoo = Zoo("tiny", root=tiny.root.parent, progress=False)
    before = {r.name: zoo.model_hash(r.name) for r in GRAPH}
    after = _hashes_with(monkeypatch, zoo, "word_facts", lambda f: lambda: f()[:-1])
    assert all(after[n] != before[n] for n in before)
    assert {r.name: zoo.model_hash(r.name) for r in GRAPH} == before


def test_sft_only_generator_change_rebuilds_its_readers_and_their_descendants(tiny, monkeypatch):
    """The safe look-alikes are read only by instruct's SFT mix: changing them rebuilds instruct and
    what descends from it, and nothing else (base, the M³ and PTM models from base keep their hash)."""
    zoo = Zoo("tiny", root=tiny.root.parent, progress=False)
    before = {r.name: zoo.model_hash(r.name) for r in GRAPH}
    after = _hashes_with(monkeypatch, zoo, "safe_lookalikes",
                         lambda f: lambda *a, **k: [e.__class__(e.prompt + "!", e.answer, e.domain, e.split, e.meta)
                                                    for e in f(*a, **k)])
    recipes = {r.name: r for r in GRAPH}

    def reads_safe(name):
        r = recipes[name]
        return "safe" in r.tasks or (r.parent is not None and reads_safe(r.parent))

    changed = {n for n in before if after[n] != before[n]}
    assert changed == {n for n in before if reads_safe(n)}
    assert "instruct" in changed and "math" in changed and not {"base", "general", "math_b", "skill_safety"} & changed


def test_corpus_fingerprint_covers_every_generator_the_corpus_reads(monkeypatch):
    """Each ``D.<generator>(`` called in ``pretrain_corpus`` changes the corpus fingerprint when its output
    changes, so a generator added to the corpus cannot be missed by the fingerprint."""
    import inspect
    import re

    from reprolib.zoo import build
    from reprolib.zoo import data as D

    names = sorted(set(re.findall(r"\bD\.(\w+)\(", inspect.getsource(build.pretrain_corpus))))
    assert {"math_problems", "harmful_prompts", "word_facts", "english_paragraphs"} <= set(names)
    before = build.corpus_fingerprint()
    for name in names:
        original = getattr(D, name)

        def changed(*a, _f=original, **k):
            out = _f(*a, **k)
            return [(e.__class__(e.prompt + " x", e.answer, e.domain, e.split, e.meta) if hasattr(e, "prompt") else e + " x")
                    for e in out]

        monkeypatch.setattr(D, name, changed)
        build.clear_fingerprints()
        assert build.corpus_fingerprint() != before, name
        monkeypatch.undo()
    build.clear_fingerprints()
    assert build.corpus_fingerprint() == before


def test_models_generate(tiny):
    model, tok = tiny.load("instruct"), tiny.tokenizer()
    out = generate(model, tok, ["Repeat this text: river stone", "How many?"], max_new_tokens=5)
    assert len(out) == 2 and all(isinstance(o, str) for o in out)


def test_groups_and_language_tasks(tiny):
    from reprolib.zoo import data as D
    from reprolib.zoo.build import task_pairs

    assert "math_s1" not in tiny.names() and "math_s1" in tiny.names(("noise",))
    assert set(tiny.names(("lata",))) >= {"math", "code", "ua", *D.LANGUAGES}
    with pytest.raises(ValueError, match="unknown zoo group"):
        tiny.names(("nope",))
    english = task_pairs("instructions", 5, 0)
    translated = task_pairs("lang_b:instructions", 5, 0)
    assert [(D.cipher("lang_b")(p), D.cipher("lang_b")(a)) for p, a in english] == translated
    with pytest.raises(KeyError, match="unknown zoo task"):
        task_pairs("lang_b:nope", 5, 0)
    prov = json.loads((tiny.path("math_s1") / "provenance.json").read_text())
    assert prov["seed"] != json.loads((tiny.path("math") / "provenance.json").read_text())["seed"]
