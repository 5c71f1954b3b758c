"""lm-eval over the zoo's local task YAMLs gives the same numbers as reprolib's in-process evals."""

from __future__ import annotations

import math

import pytest

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


def test_task_files_are_written(tmp_path):
    names = write_tasks(tmp_path, texts=["a b c"], math=D.math_problems(2, 0, "test"))
    assert names == ["zoo_ppl_english", "zoo_math"]
    assert "group_select: -1" in (tmp_path / "zoo_math.yaml").read_text()
