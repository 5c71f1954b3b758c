"""reprolib.kit: the scorer (vectors_from → into, cache keys, lm-eval tasks from a paper profile),
opening a chapter, the scoreboard."""

from __future__ import annotations

import json
import math

import pytest
import torch

from reprolib.cache import ResultCache
from reprolib.kit import Scorer, open_chapter
from reprolib.models import Models


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    from foreign import make_foreign_family, write_paper_profile

    root = tmp_path_factory.mktemp("foreign")
    roles = make_foreign_family(root / "models", roles=("base", "instruct", "math", "code", "ua"))
    return root, roles, write_paper_profile(root / "paper.yaml", roles)


def _sets():
    from reprolib.zoo.report import eval_sets

    return eval_sets(3)


def test_merge_from_one_role_into_another(foreign, tmp_path):
    """PTM's shape: θ_into + ω·(θ_expert − θ_from); LATA's: a method with its own target."""
    _, _, profile = foreign
    models = Models(str(profile))
    scorer = Scorer(models, _sets(), ResultCache(tmp_path), {"size": 3})
    sd = models.state_dict
    merged = scorer.merged("task_arithmetic", ["math"], "base", "instruct", model_params=[{"weight": 0.5}])
    for k, v in merged.items():
        assert torch.allclose(v, sd("instruct")[k] + 0.5 * (sd("math")[k] - sd("base")[k]), atol=1e-6), k
    own = scorer.merged("lata", ["math"], "instruct", "code", params={"scheme": "threshold", "sigma": 1.0})
    emb = "model.embed_tokens.weight"
    assert torch.equal(own[emb], sd("code")[emb])                     # LATA leaves the target's embeddings
    block = next(k for k in own if ".layers.0." in k and k.endswith("q_proj.weight"))
    assert torch.allclose(own[block], sd("code")[block] + sd("math")[block] - sd("instruct")[block], atol=1e-6)


def test_scores_are_cached_by_merge_roles_and_metrics(foreign, tmp_path):
    _, _, profile = foreign
    models = Models(str(profile))
    cache = ResultCache(tmp_path)
    scorer = Scorer(models, _sets(), cache, {"size": 3})
    a = scorer.score_merge("task_arithmetic", ["math"], "instruct", metrics=["ppl"])
    assert math.isfinite(a["scores"]["ppl"]) and len(a["items"]["ppl"]) == len(_sets()["english"])
    assert scorer.score_merge("task_arithmetic", ["math"], "instruct", metrics=["ppl"]) == a and cache.hits == 1
    scorer.score_merge("task_arithmetic", ["math"], "instruct", model_params=[{"weight": 0.7}], metrics=["ppl"])
    scorer.score_merge("task_arithmetic", ["math"], "base", "instruct", metrics=["ppl"])
    assert cache.misses == 3
    entry = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert entry["config"]["merge"][1] == {"lambda": 1.0} and "models" in entry["config"]


def test_cache_key_covers_every_item_of_the_sets(foreign, tmp_path):
    """Same prompts with one changed answer (or test) are other sets: never a stale cached score."""
    import dataclasses

    _, _, profile = foreign
    models, cache = Models(str(profile)), ResultCache(tmp_path)
    sets = _sets()
    Scorer(models, sets, cache, {"size": 3}).score_role("math", ["math"])
    changed = {**sets, "math": [dataclasses.replace(sets["math"][0], answer="0 + 0 = 0"), *sets["math"][1:]]}
    Scorer(models, changed, cache, {"size": 3}).score_role("math", ["math"])
    Scorer(models, sets, cache, {"size": 3}).score_role("math", ["math"], sets=changed)
    Scorer(models, sets, cache, {"size": 3}).score_role("math", ["math"])
    assert (cache.misses, cache.hits) == (2, 2)


def test_paper_profile_names_lm_eval_tasks(foreign, tmp_path, monkeypatch):
    """A paper profile scores ``math`` with a user's lm-eval task (local jsonl here; gsm8k where the
    machine reaches it): per-document items, the model's own chat template, ppl still from the suite."""
    import yaml

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    root, roles, _ = foreign
    from foreign import write_sums_task

    tasks = write_sums_task(tmp_path)
    profile = tmp_path / "paper-lmeval.yaml"
    profile.write_text(yaml.safe_dump({"name": "x", "model_type": "llama", "roles": {r: str(p) for r, p in roles.items()},
                                       "lm_eval": {"include_path": str(tasks), "include_defaults": False,
                                                   "metrics": {"math": {"task": "my_sums", "metric": "exact_match"}}}}))
    ch = open_chapter(None, "kit-test", profile=str(profile), eval_size=3, cache_dir=str(tmp_path / "cache"),
                      out_dir=str(tmp_path / "out"))
    res = ch.scorer.score_role("instruct", ["ppl", "math"])
    assert len(res["items"]["math"]) == 4 and res["scores"]["math"] == pytest.approx(sum(res["items"]["math"]) / 4)
    assert res["prompt_text"]["math"].startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 1 plus 2?")
    assert res["prompt_text"]["ppl"].startswith("<|begin_of_text|>") and math.isfinite(res["scores"]["ppl"])
    assert ch.scorer.settings["lm_eval"]["metrics"]["math"]["task"] == "my_sums"     # part of every cache key


def test_lm_eval_items_are_one_filters_documents(foreign, tmp_path, monkeypatch):
    """A task with two filters logs each document twice; the items are one filter's, one per document,
    and the score is their mean."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from foreign import write_sums_task
    from reprolib.evals.lmeval import score_with_tasks

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    _, roles, _ = foreign
    model, tok = AutoModelForCausalLM.from_pretrained(roles["instruct"]).eval(), AutoTokenizer.from_pretrained(roles["instruct"])
    tasks = write_sums_task(tmp_path, "sums_two_filters", filters=True)
    spec = {"math": {"task": "sums_two_filters", "metric": "exact_match", "filter": "last-number"}}
    out = score_with_tasks(model, tok, spec, include_path=tasks, include_defaults=False)
    assert len(out["items"]["math"]) == 4 and out["scores"]["math"] == pytest.approx(sum(out["items"]["math"]) / 4)


def test_profile_lm_eval_section_is_validated(foreign, tmp_path):
    import yaml

    from reprolib.errors import ConfigError
    from reprolib.zoo.profiles import load_profile_evals

    _, roles, _ = foreign
    bad = tmp_path / "bad.yaml"
    for spec, needle in (({"metrics": {"gsm8k": {"task": "gsm8k", "metric": "exact_match"}}}, "not one of reprolib's"),
                         ({"metrics": {"math": {"task": "gsm8k"}}}, "needs 'task' and 'metric'"),
                         ({"include_path": str(tmp_path / "nope"), "metrics": {}}, "not a folder")):
        bad.write_text(yaml.safe_dump({"roles": {r: str(p) for r, p in roles.items()}, "lm_eval": spec}))
        with pytest.raises(ConfigError, match=needle):
            load_profile_evals(bad)


def test_open_chapter_finds_the_seeds_present(foreign, tmp_path):
    _, _, profile = foreign
    ch = open_chapter("lata", "lata", profile=str(profile), seeded_roles=("math",), n_seeds=3,
                      out_dir=str(tmp_path), cache_dir=str(tmp_path / "c"), eval_size=3)
    assert ch.seeds == [0]                          # the profile has no math_s1 / math_s2
    assert ch.out == tmp_path / "lata" / "paper" and ch.table("table3")["line"] == 632
    assert "paper profile" in ch.banner().data


def test_training_hook_adds_a_loss_term(tiny_zoo):
    """The hook: no term gives exactly the plain training; a pull towards the start weights keeps
    the fine-tuned model closer to them; the zoo's SFT encoding is the chat-template encoding."""
    from reprolib.kit.training import encode, finetune
    from reprolib.zoo import data as D
    from reprolib.zoo.train import encode_pairs

    models = Models("tiny", root=tiny_zoo.root.parent, progress=False)
    tok = models.tokenizer()
    pairs = [(e.prompt, e.answer) for e in D.math_problems(8, 0, "train")]
    assert encode(tok, pairs) == encode_pairs(tok, pairs)
    start = {k: v.clone() for k, v in models.state_dict("instruct").items()}
    kw = dict(steps=3, lr=1e-2, seed=0, batch=4, progress=False)
    plain, _ = finetune(models, "instruct", pairs, **kw)
    zero, _ = finetune(models, "instruct", pairs, extra_loss=lambda m, b: 0.0 * sum(p.sum() for p in m.parameters()), **kw)
    assert all(torch.equal(plain[k], zero[k]) for k in plain)

    def pull(model, batch):
        assert set(batch) == {"input_ids", "attention_mask", "labels", "step"}
        return 1e3 * sum(((p - start[n]) ** 2).sum() for n, p in model.named_parameters())

    held, stats = finetune(models, "instruct", pairs, extra_loss=pull, **kw)
    drift = lambda sd: sum(float((sd[k] - start[k]).norm()) for k in start if k in sd)  # noqa: E731
    assert drift(held) < 0.5 * drift(plain) and stats.steps == 3
