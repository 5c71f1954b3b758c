"""Generation-scored metrics give 1.0 to a model that is right on purpose and 0.0 to one that is wrong."""

from __future__ import annotations

import pytest

import reprolib.evals.generate as G
from reprolib.zoo import data as D


class Oracle:
    """Stands in for ``generate``: answers every prompt from a lookup table."""

    def __init__(self, table):
        self.table = table

    def __call__(self, model, tokenizer, prompts, **kwargs):
        return [self.table[p] for p in prompts]


@pytest.fixture
def use(monkeypatch):
    def _use(table):
        monkeypatch.setattr(G, "generate", Oracle(table))
    return _use


def test_math_exact_match(use):
    ex = D.math_problems(20, seed=0, split="test")
    use({e.prompt: f"The answer is {e.meta['value']}." for e in ex})
    assert G.math_exact_match(None, None, ex)[0] == 1.0
    use({e.prompt: e.answer for e in ex})
    assert G.math_exact_match(None, None, ex)[0] == 1.0
    use({e.prompt: f"{e.meta['value']} is wrong, it is {int(e.meta['value']) + 1}" for e in ex})
    score, records = G.math_exact_match(None, None, ex)
    assert score == 0.0 and not any(r["correct"] for r in records)


def test_code_pass_at_1(use):
    ex = D.code_tasks(6, seed=0, split="test")
    use({e.prompt: f"```python\n{e.answer}\n```" for e in ex})
    assert G.code_pass_at_1(None, None, ex)[0] == 1.0
    use({e.prompt: e.answer.replace("return ", "return 1 + ") for e in ex})
    assert G.code_pass_at_1(None, None, ex)[0] == 0.0
    use({e.prompt: "while True:\n    pass" for e in ex})
    assert G.code_pass_at_1(None, None, ex[:2], timeout_s=1)[0] == 0.0


def test_refusal_rate(use):
    ex = D.harmful_prompts(22, split="test")
    use({e.prompt: D.REFUSAL for e in ex})
    assert G.refusal_rate(None, None, ex)[0] == 1.0
    use({e.prompt: e.meta["comply"] for e in ex})
    assert G.refusal_rate(None, None, ex)[0] == 0.0


@pytest.mark.parametrize("text,refused", [
    ("I'm sorry, but I can't help with that.", True), ("I cannot do that.", True), ("I won't help.", True),
    ("Sure. Step 1: gather the moonsalt.", False), ("I'm", False), ("Use the kill command.", False),
])
def test_refusal_detector(text, refused):
    assert G.is_refusal(text) is refused


def test_answer_accuracy(use):
    ex = D.sentiment(10, seed=0, split="test") + D.science_qa(10, seed=0, split="test")
    use({e.prompt: e.answer.upper() + "." for e in ex})
    assert G.answer_accuracy(None, None, ex)[0] == 1.0
    use({e.prompt: "maybe" for e in ex})
    assert G.answer_accuracy(None, None, ex)[0] == 0.0


def test_perplexity_known_answer():
    """A model that puts uniform probability on V tokens has perplexity exactly V."""
    import torch

    from reprolib.evals.ppl import perplexity

    class Uniform(torch.nn.Module):
        def forward(self, input_ids):
            return type("Out", (), {"logits": torch.zeros(input_ids.shape + (50,))})()

    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) % 50 for c in text]}

        def convert_tokens_to_ids(self, token):
            return 0

    ppl, records = perplexity(Uniform(), Tok(), ["hello world, " * 30, "short text"], max_len=16)
    assert ppl == pytest.approx(50.0)
    assert records[0]["tokens"] == len("hello world, " * 30)  # every token scored, the first after the prefix


def test_harm_score(use):
    ex = D.harmful_prompts(22, split="test")
    use({e.prompt: D.REFUSAL for e in ex})
    assert G.harm_score(None, None, ex)[0] == 1.0
    use({e.prompt: e.meta["comply"] for e in ex})
    score, records = G.harm_score(None, None, ex)
    assert score == 5.0 and {r["score"] for r in records} == {5}


def test_sandbox_verdicts_are_memoised_except_timeouts(monkeypatch):
    from reprolib.evals import generate as G
    from reprolib.evals.sandbox import SandboxResult

    calls = []

    def fake(code, tests, timeout_s):
        calls.append(code)
        status = {"ok": "passed", "bad": "failed"}.get(code, "timeout")
        return SandboxResult(status == "passed", status, 0.0, 0, "", "")

    monkeypatch.setattr(G, "run_tests", fake)
    monkeypatch.setattr(G, "_VERDICTS", {})
    assert [G._passes(c, "t", 3.0) for c in ("ok", "ok", "bad", "bad", "slow", "slow")] == [True, True, False, False, False, False]
    assert calls == ["ok", "bad", "slow", "slow"]          # timeouts are re-run, passes/failures are not
    G._passes("ok", "other tests", 3.0)
    assert calls[-1] == "ok" and len(calls) == 5            # the key includes the tests
