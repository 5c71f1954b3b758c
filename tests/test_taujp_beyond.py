"""τJp beyond the paper (reprolib.chapters.taujp_beyond): τJp and cosine of LLM task vectors on the
answer logits, the interference measure and the group bootstrap of Spearman's ρ. Tiny synthetic
Llama checkpoints (conftest's ``save_family``), a small tokenizer, temporary caches only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from reprolib import taujp as T
from reprolib.cache import LayeredCache, ResultCache
from reprolib.chapters import taujp_beyond as B
from reprolib.claims import Evidence
from reprolib.errors import CheckpointError, ConfigError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    from reprolib.zoo import data as D
    from reprolib.zoo.tokenizer import train_tokenizer

    texts = [f"{e.prompt}\n{e.answer}" for e in D.math_problems(40, 0) + D.code_tasks(20, 0) + D.instructions(20, 0)]
    return train_tokenizer(texts, vocab_size=300)


@pytest.fixture(scope="module")
def family(tmp_path_factory, tok):
    """base → instruct → math / code / ua HF folders whose vocabulary fits ``tok``."""
    from conftest import save_family

    return save_family(tmp_path_factory.mktemp("beyond"), seed=3, vocab_size=len(tok), max_position_embeddings=256)


@pytest.fixture(scope="module")
def at_base(family):
    model = B.load_lm(family["base"])
    params0 = T.params_of(model)
    vectors = {r: B.task_vector_of(B.checkpoint_weights(family[r]), params0, r) for r in ("math", "code", "ua")}
    return model, params0, vectors


def _batch(vocab: int, lengths, starts, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros(ids.shape, dtype=torch.bool)
    for i, (n, s) in enumerate(zip(lengths, starts)):
        mask[i, s - 1:n - 1] = True
    return ids, mask


# ----------------------------------------------------------------------------- τJp and cosine


def test_taujp_of_a_vector_with_itself_is_its_change_on_its_own_inputs(at_base, tok):
    model, params0, vectors = at_base
    batch = _batch(len(tok), [12, 9, 12], [5, 4, 8])
    tau = vectors["math"]
    out = B.pair_taujp(model, params0, tau, tau, batch, batch)
    # ‖τ·∇f‖² computed independently: a central finite difference of the answer logits along τ
    eps = 1e-3
    with torch.no_grad():
        def logits(sign):
            moved = {k: v + sign * eps * tau[k] for k, v in params0.items()}
            return torch.func.functional_call(model, moved, (batch[0],)).logits.double()
        fd = (logits(+1) - logits(-1)) / (2 * eps)
    expected = float(fd[batch[1]].pow(2).sum(-1).mean())
    assert out["taujp"] == pytest.approx(expected, rel=2e-2)
    assert out["a_on_b"] == out["b_on_a"] == out["taujp"]
    assert out["cosine"] == pytest.approx(1.0)


def test_taujp_is_symmetric_and_the_cosine_of_a_negated_vector_is_minus_one(at_base, tok):
    model, params0, v = at_base
    xa, xb = _batch(len(tok), [10, 8], [4, 3], seed=1), _batch(len(tok), [11, 11, 7], [6, 2, 3], seed=2)
    ab = B.pair_taujp(model, params0, v["math"], v["code"], xa, xb)
    ba = B.pair_taujp(model, params0, v["code"], v["math"], xb, xa)
    assert ab["taujp"] == pytest.approx(ba["taujp"], rel=1e-6)
    assert (ab["a_on_b"], ab["b_on_a"]) == pytest.approx((ba["b_on_a"], ba["a_on_b"]), rel=1e-6)
    assert ab["a_on_b"] != pytest.approx(ab["b_on_a"])             # the two halves differ: both are needed
    neg = {k: -t for k, t in v["math"].items()}
    assert B.pair_taujp(model, params0, v["math"], neg, xa, xa)["cosine"] == pytest.approx(-1.0)
    assert -1.0 < ab["cosine"] < 1.0


def test_per_example_norm_is_the_answer_length_times_the_per_token_norm(at_base, tok):
    model, params0, v = at_base
    batch = _batch(len(tok), [10, 12, 9], [6, 8, 5])                 # every example: 4 answer positions
    token = B.pair_taujp(model, params0, v["math"], v["ua"], batch, batch, unit="token")["taujp"]
    example = B.pair_taujp(model, params0, v["math"], v["ua"], batch, batch, unit="example")["taujp"]
    assert example == pytest.approx(4 * token, rel=1e-5)
    with pytest.raises(ConfigError, match="unit"):
        B.change_norm(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool), "sentence")


def test_a_bad_model_path_raises_an_error_naming_it(tmp_path, at_base):
    missing = tmp_path / "no-such-expert"
    with pytest.raises(CheckpointError, match="no-such-expert"):
        B.load_lm(missing)
    empty = tmp_path / "empty-expert"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="empty-expert"):
        B.checkpoint_weights(empty)
    with pytest.raises(ConfigError, match="ua_s9"):
        B.task_vector_of({}, at_base[1], "ua_s9")


def test_answer_batch_marks_the_positions_that_predict_the_answer(tok):
    from reprolib.zoo.tokenizer import END

    pairs = [("What is 2 plus 3?", "5"), ("Write a function add(a, b).", "def add(a, b):\n    return a + b")]
    ids, mask = B.answer_batch(tok, pairs)
    for i, (_, answer) in enumerate(pairs):
        predicted = ids[i][1:][mask[i][:-1]]                         # the tokens the marked positions predict
        assert tok.decode(predicted.tolist()) == answer + END
    assert not mask[:, -1].any() and mask.sum() == sum(len(tok(a + END, add_special_tokens=False)["input_ids"]) for _, a in pairs)


def test_own_items_are_seeded_and_take_the_answer_the_expert_was_trained_on():
    from reprolib.zoo.report import eval_sets

    sets = eval_sets(20, 0)
    ua = B.own_items(sets, "ua", 5, seed=1)
    assert ua == B.own_items(sets, "ua", 5, seed=1) and ua != B.own_items(sets, "ua", 5, seed=2)
    assert all(a.startswith("Sure.") for _, a in ua)                # the compliant answer, not the refusal
    refusal = {e.prompt: e.answer for e in sets["harmful"]}
    assert [a for _, a in B.own_items(sets, "safety", 5, 1)] == [refusal[p] for p, _ in ua]   # same prompts, the refusal
    with pytest.raises(ConfigError, match="n_items"):
        B.own_items(sets, "math", 21)
    with pytest.raises(ConfigError, match="poetry"):
        B.own_items(sets, "poetry", 2)


class _Models:
    """The part of ``reprolib.models.Models`` the measures read, over the test family."""

    def __init__(self, family, tok):
        self.family, self.tok = family, tok

    def path(self, role):
        return self.family[role]

    def fingerprint(self, role):
        return f"fp-{role}"

    def tokenizer(self):
        return self.tok


def test_pair_measures_are_cached_under_one_key_for_both_orders(tmp_path, family, tok):
    from reprolib.zoo.report import eval_sets

    cache = ResultCache(tmp_path / "cache", "taujp_beyond")
    m = B.PairMeasures(_Models(family, tok), eval_sets(8, 0), cache, n_items=3, items_seed=0)
    first = m.pair("base", ("math", "math"), ("code", "code"))
    again = m.pair("base", ("code", "code"), ("math", "math"))
    assert (cache.misses, cache.hits) == (1, 1) and again == first
    assert first["taujp"] == pytest.approx(0.5 * (first["a_on_b"] + first["b_on_a"]))
    group = B.Group("lata", ("math", "code", "ua"), ("math", "code", "ua"), "base", (1, 1, 1), 0)
    pairs = [m.pair("base", a, b) for a, b in (("math", "code"), ("math", "ua"), ("code", "ua"))
             for a, b in [((a, a), (b, b))]]
    summary = B.group_measures(m, group)
    assert summary["taujp"] == pytest.approx(np.mean([p["taujp"] for p in pairs]))   # a triple: mean over its pairs
    assert summary["cosine"] == pytest.approx(np.mean([p["cosine"] for p in pairs])) and summary["pairs"] == 3
    with pytest.raises(ConfigError, match="unit"):
        B.PairMeasures(_Models(family, tok), {}, cache, unit="word")


# ----------------------------------------------------------------------------- interference and ρ


def test_interference_is_one_minus_the_mean_normalised_score():
    out = B.interference({"math": 0.5, "code": 0.9}, {"math": 1.0, "code": 0.6})
    assert out["normalised"] == pytest.approx((0.5 + 1.5) / 2) and out["interference"] == pytest.approx(0.0)
    assert out["change"] == pytest.approx(0.5) and out["dropped"] == []
    out = B.interference({"math": 0.3, "code": 0.9}, {"math": 0.6, "code": 0.0})
    assert out["dropped"] == ["code"] and out["interference"] == pytest.approx(0.5)
    assert math.isnan(B.interference({"code": 0.5}, {"code": 0.0})["interference"])


def _records(ys, groups, size=2):
    return [{"group": g, "taujp": float(i), "cosine": -float(i), "interference": y, "size": size}
            for i, (y, g) in enumerate(zip(ys, groups))]


def test_spearman_of_a_monotone_relation_is_one_with_a_degenerate_interval():
    recs = _records([x ** 3 for x in range(10)], [f"g{i // 2}" for i in range(10)])
    out = B.spearman_by_group(recs, "taujp", n_boot=200, seed=0)
    assert (out["rho"], out["lo"], out["hi"]) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    assert (out["n_groups"], out["n_rows"]) == (5, 10) and 0 < out["n_boot"] <= 200
    assert B.spearman_by_group(recs, "cosine", n_boot=50)["rho"] == pytest.approx(-1.0)


def test_the_group_bootstrap_is_seeded_and_reproducible():
    rng = np.random.default_rng(7)
    recs = _records(list(rng.normal(size=24) + 0.1 * np.arange(24)), [f"g{i % 8}" for i in range(24)])
    a = B.spearman_by_group(recs, "taujp", n_boot=300, seed=5)
    assert a == B.spearman_by_group(recs, "taujp", n_boot=300, seed=5)
    b = B.spearman_by_group(recs, "taujp", n_boot=300, seed=6)
    assert (a["lo"], a["hi"]) != (b["lo"], b["hi"]) and a["rho"] == b["rho"]
    assert a["lo"] <= a["rho"] <= a["hi"]
    recs[0]["interference"] = math.nan                               # a group without a measure is left out
    assert B.spearman_by_group(recs, "taujp", n_boot=10)["n_rows"] == 23


def test_correlations_cover_every_target_predictor_and_the_pairs_only_subset():
    recs = _records([1.0, 2.0, 3.0, 4.0, 5.0], ["a", "b", "c", "d", "e"]) + _records([9.0, 0.0], ["t1", "t2"], size=3)
    for r in recs:
        r["change"], r["interference_expert"] = abs(r["interference"]), -r["interference"]
    rho = B.correlations(Evidence(pd.DataFrame(recs)), n_boot=50)
    assert len(rho) == len(B.TARGETS) * 2 * len(B.PREDICTORS)
    pairs = rho[(rho["groups"] == "pairs only") & (rho["target"] == "interference") & (rho["predictor"] == "taujp")].iloc[0]
    assert pairs["rho"] == pytest.approx(1.0) and pairs["n_groups"] == 5
    every = rho[(rho["groups"] == "all groups") & (rho["target"] == "interference_expert")]
    assert set(every["n_groups"]) == {7}
    for i, r in enumerate(recs):
        r["theta0"] = "base" if i % 2 else "instruct"
    by = B.correlations(Evidence(pd.DataFrame(recs)), n_boot=20, strata="theta0")
    assert set(by["groups"]) == {"all groups", "pairs only", "theta0 = instruct", "theta0 = base"}
    assert set(by.loc[by["groups"] == "theta0 = base", "n_rows"]) == {3}


# ----------------------------------------------------------------------------- a cache read, never written


def test_layered_cache_reads_another_root_but_writes_only_its_own(tmp_path):
    book = ResultCache(tmp_path / "book", "scores")
    book.put({"run": 1}, {"score": 0.5})
    before = sorted(p.name for p in (tmp_path / "book" / "scores").iterdir())
    layered = LayeredCache(tmp_path / "mine", "scores", read_also=[tmp_path / "book"])
    assert layered.get_or_compute({"run": 1}, lambda: pytest.fail("recomputed a cached result")) == {"score": 0.5}
    assert layered.get_or_compute({"run": 2}, lambda: {"score": 0.7}) == {"score": 0.7}
    assert (layered.hits, layered.misses) == (1, 1)
    assert sorted(p.name for p in (tmp_path / "book" / "scores").iterdir()) == before
    assert ResultCache(tmp_path / "mine", "scores").get({"run": 2}) == {"score": 0.7}
    assert ResultCache(tmp_path / "mine", "scores").get({"run": 1}) is None
