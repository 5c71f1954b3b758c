"""lm-eval over the zoo's local task YAMLs gives the same numbers as reprolib's in-process evals."""

from __future__ import annotations

import math

import pytest

from reprolib.errors import EvalError
from reprolib.evals.generate import generate, math_exact_match
from reprolib.evals.lmeval import run_lm_eval, write_tasks
from reprolib.evals.ppl import perplexity, rolling_windows
from reprolib.zoo import data as D


@pytest.fixture(scope="module")
def instruct(tiny_zoo):
    return tiny_zoo.load("instruct"), tiny_zoo.tokenizer()


def test_rolling_windows_score_every_token_once():
    ids = list(range(10, 30))
    windows = list(rolling_windows(ids, prefix=0, max_len=8))
    assert windows[0] == ([0] + ids[:7], 8)
    assert sum(n for _, n in windows) == len(ids)
    assert all(len(w) <= 8 for w, _ in windows)
    assert windows[1][0] == ids[7:15] and windows[1][1] == 8  # full context ending before its targets


def test_lm_eval_agrees_with_reprolib(instruct):
    model, tok = instruct
    texts = D.english_paragraphs("test")[:3]
    problems = D.math_problems(6, seed=0, split="test")
    results = run_lm_eval(model, tok, texts=texts, max_length=32, batch_size=4)
    ppl, records = perplexity(model, tok, texts, max_len=32)
    nll = sum(r["nll"] for r in records)
    assert sum(r["tokens"] for r in records) > 3 * 32  # several windows per text
    assert results["zoo_ppl_english"]["byte_perplexity"] == pytest.approx(math.exp(nll / sum(r["bytes"] for r in records)), rel=1e-4)
    assert results["zoo_ppl_english"]["word_perplexity"] == pytest.approx(math.exp(nll / sum(r["words"] for r in records)), rel=1e-4)
    # the tiny instruct answers every prompt with "" — compare generations on a random-init model,
    # whose greedy outputs depend on the prompt, with lm-eval's full context window
    from reprolib.zoo.train import make_model

    import torch

    model = make_model(tok, hidden=32, layers=2, heads=2, ffn=64, seed=1).eval()
    with torch.no_grad():  # large random weights: sharp, prompt-dependent next-token choices
        for p in model.parameters():
            p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
    math_results, samples = run_lm_eval(model, tok, math=problems, batch_size=4, samples=True)
    results.update(math_results)
    ours = generate(model, tok, [e.prompt for e in problems], max_new_tokens=16)
    assert len(set(ours)) > 1, "outputs must depend on the prompt for the comparison to mean anything"
    theirs = [s["resps"][0][0].strip() for s in sorted(samples["zoo_math"], key=lambda s: s["doc_id"])]
    assert theirs == ours
    assert results["zoo_math"]["exact_match"] == pytest.approx(math_exact_match(model, tok, problems)[0])


def test_task_files_are_written(tmp_path, instruct):
    _, tok = instruct
    names = write_tasks(tmp_path, tok, texts=["a b c"], math=D.math_problems(2, 0, "test"))
    assert names == ["zoo_ppl_english", "zoo_math"]
    yaml_text = (tmp_path / "zoo_math.yaml").read_text()
    assert "group_select: -1" in yaml_text and 'until: ["<|end|>"]' in yaml_text
    with pytest.raises(EvalError, match="needs the tokenizer"):
        write_tasks(tmp_path, None, math=D.math_problems(2, 0, "test"))


@pytest.fixture(scope="module")
def sharp_foreign(tmp_path_factory):
    """A foreign (Llama-3 template, BOS added by the tokenizer, no pad) random model with large
    weights, whose greedy outputs depend on the prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from foreign import make_foreign_family

    path = make_foreign_family(tmp_path_factory.mktemp("foreign"), roles=("instruct",))["instruct"]
    model, tok = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
    return model, tok


def test_lm_eval_agrees_on_a_foreign_model(sharp_foreign):
    model, tok = sharp_foreign
    texts = D.english_paragraphs("test")[:2]
    problems = D.math_problems(6, seed=0, split="test")
    results = run_lm_eval(model, tok, texts=texts, max_length=64, batch_size=4)   # several windows per text
    _, samples = run_lm_eval(model, tok, math=problems, batch_size=4, samples=True)   # full context for maths
    _, records = perplexity(model, tok, texts, max_len=64)
    nll = sum(r["nll"] for r in records)
    assert results["zoo_ppl_english"]["byte_perplexity"] == pytest.approx(math.exp(nll / sum(r["bytes"] for r in records)), rel=1e-4)
    ours = generate(model, tok, [e.prompt for e in problems], max_new_tokens=16)
    assert len(set(ours)) > 1
    by_doc = sorted(samples["zoo_math"], key=lambda s: s["doc_id"])
    assert all(s["arguments"][0][0].startswith("<|begin_of_text|><|start_header_id|>user") for s in by_doc)
    assert [s["resps"][0][0].strip() for s in by_doc] == ours
    assert tok.pad_token is None  # lm-eval worked on a copy


def test_run_tasks_on_a_user_named_local_task(sharp_foreign, tmp_path, monkeypatch):
    """A user's own lm-eval task YAML over local jsonl, named like any harness task."""
    from reprolib.evals.lmeval import run_tasks

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    model, tok = sharp_foreign
    from foreign import write_sums_task

    tasks = write_sums_task(tmp_path)
    results, samples = run_tasks(model, tok, ["my_sums"], include_path=tasks, include_defaults=False,
                                 batch_size=4, chat=True, samples=True)
    assert set(results) == {"my_sums"} and 0.0 <= results["my_sums"]["exact_match"] <= 1.0
    assert samples["my_sums"][0]["arguments"][0][0].startswith("<|begin_of_text|><|start_header_id|>user")
