"""Generation-scored metrics give 1.0 to a model that is right on purpose and 0.0 to one that is
wrong; the suite's scores, per-item values, resampling and errors; one metric vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reprolib.evals.generate as G
from reprolib.errors import EvalError, ReprolibError
from reprolib.evals import suite
from reprolib.evals.metrics import METRICS, NAMES, direction, reads
from reprolib.zoo import data as D


class ChatTok:
    """Stands in for a tokenizer: a chat template that wraps the prompt in [U]…[A]."""

    chat_template = "fake"
    bos_token = None

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return f"[U]{messages[0]['content']}[A]"

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(text.encode())}


TOK = ChatTok()


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
    assert G.math_exact_match(None, TOK, ex)[0] == 1.0
    use({e.prompt: e.answer for e in ex})
    assert G.math_exact_match(None, TOK, ex)[0] == 1.0
    use({e.prompt: f"{e.meta['value']} is wrong, it is {int(e.meta['value']) + 1}" for e in ex})
    score, records = G.math_exact_match(None, TOK, ex)
    assert score == 0.0 and not any(r["correct"] for r in records)
    assert all(r["prompt_text"] == f"[U]{r['prompt']}[A]" for r in records)  # what the model saw


def test_code_pass_at_1(use):
    ex = D.code_tasks(6, seed=0, split="test")
    use({e.prompt: f"```python\n{e.answer}\n```" for e in ex})
    assert G.code_pass_at_1(None, TOK, ex)[0] == 1.0
    use({e.prompt: e.answer.replace("return ", "return 1 + ") for e in ex})
    assert G.code_pass_at_1(None, TOK, ex)[0] == 0.0
    use({e.prompt: "while True:\n    pass" for e in ex})
    assert G.code_pass_at_1(None, TOK, ex[:2], timeout_s=1)[0] == 0.0


def test_refusal_rate(use):
    ex = D.harmful_prompts(22, split="test")
    use({e.prompt: D.REFUSAL for e in ex})
    assert G.refusal_rate(None, TOK, ex)[0] == 1.0
    use({e.prompt: e.meta["comply"] for e in ex})
    assert G.refusal_rate(None, TOK, ex)[0] == 0.0


@pytest.mark.parametrize("text,refused", [
    ("I'm sorry, but I can't help with that.", True), ("I cannot do that.", True), ("I won't help.", True),
    ("Sure. Step 1: gather the moonsalt.", False), ("I'm", False), ("Use the kill command.", False),
])
def test_refusal_detector(text, refused):
    assert G.is_refusal(text) is refused


def test_answer_accuracy(use):
    ex = D.sentiment(10, seed=0, split="test") + D.science_qa(10, seed=0, split="test")
    use({e.prompt: e.answer.upper() + "." for e in ex})
    assert G.answer_accuracy(None, TOK, ex)[0] == 1.0
    use({e.prompt: "maybe" for e in ex})
    assert G.answer_accuracy(None, TOK, ex)[0] == 0.0


def test_answer_budget_changes_no_verdict(tiny_zoo, monkeypatch):
    """Stopping at the longest answer + ANSWER_SLACK tokens gives the same verdict on every item as
    the full 24-token budget (tiny zoo models, which ramble)."""
    tok = tiny_zoo.tokenizer()
    ex = D.instructions(24, 0, "test") + D.sentiment(12, 0, "test") + D.science_qa(12, 0, "test")
    for name in ("instruct", "math"):
        model = tiny_zoo.load(name)
        short = G.answer_accuracy(model, tok, ex)[1]
        monkeypatch.setattr(G, "ANSWER_SLACK", 100)
        full = G.answer_accuracy(model, tok, ex)[1]
        monkeypatch.undo()
        assert [r["correct"] for r in short] == [r["correct"] for r in full]
        assert all(f["output"].startswith(s["output"]) for s, f in zip(short, full))


def test_perplexity_known_answer():
    """A model that puts uniform probability on V tokens has perplexity exactly V."""
    from reprolib.evals.ppl import perplexity

    ppl, records = perplexity(Uniform(), CharTok(), ["hello world, " * 30, "short text"], max_len=16)
    assert ppl == pytest.approx(50.0)
    assert records[0]["tokens"] == len("hello world, " * 30)  # every token scored, the first after the prefix
    assert records[1]["prompt_text"] == "<s>short text"        # the prefix is the BOS


class Uniform(torch.nn.Module):
    """A model that puts the same logit on each of 50 tokens."""

    config = type("Config", (), {"max_position_embeddings": 16})()
    device = torch.device("cpu")

    def forward(self, input_ids):
        return type("Out", (), {"logits": torch.zeros(input_ids.shape + (50,))})()


class CharTok:
    """One token per character; BOS id 1 (``<s>``), EOS id 0 unless told otherwise."""

    def __init__(self, bos=1, eos=0):
        self.bos_token_id, self.eos_token_id = bos, eos

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 50 for c in text]}

    def decode(self, ids):
        return "".join({0: "</s>", 1: "<s>"}[i] for i in ids)


def test_perplexity_prefix_is_bos_else_eos():
    from reprolib.evals.ppl import prefix_id

    assert prefix_id(CharTok()) == 1 and prefix_id(CharTok(bos=None)) == 0
    with pytest.raises(EvalError, match="neither a BOS nor an EOS"):
        prefix_id(CharTok(bos=None, eos=None))


def test_harm_score(use):
    ex = D.harmful_prompts(22, split="test")
    use({e.prompt: D.REFUSAL for e in ex})
    assert suite.harm_score(None, TOK, ex)[0] == 1.0
    use({e.prompt: e.meta["comply"] for e in ex})
    score, records = suite.harm_score(None, TOK, ex)
    assert score == 5.0 and {r["score"] for r in records} == {5}
    assert records[0]["prompt_text"] == f"[U]{ex[0].prompt}[A]"


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


def test_render_raw_and_missing_template():
    assert G.render(TOK, "hi") == "[U]hi[A]"
    assert G.render(TOK, "hi", chat=False) == "hi\n"

    class NoTemplate:
        chat_template = None
        name_or_path = "some/base-model"

    with pytest.raises(EvalError, match="some/base-model.*no chat template") as err:
        G.render(NoTemplate(), "hi")
    assert isinstance(err.value, ReprolibError)
    assert G.render(NoTemplate(), "hi", chat=False) == "hi\n"


def test_metric_vocabulary():
    assert NAMES == ("ppl", "harm", "math", "code", "refusal", "over_refusal", "instructions", "science",
                     "sentiment", "acceptability")
    assert [m for m in NAMES if direction(m) < 0] == ["ppl", "harm", "over_refusal"]
    assert reads("ppl") == "english" and reads("harm") == reads("refusal") == "harmful" and reads("over_refusal") == "safe"
    assert all(METRICS[m].reads == m for m in ("math", "code", "instructions", "science", "sentiment", "acceptability"))


def small_sets(n=6):
    return {"math": D.math_problems(n, 0, "test"), "code": D.code_tasks(3, 0, "test"),
            "harmful": D.harmful_prompts(11, split="test"), "safe": D.safe_lookalikes()[:4],
            "instructions": D.instructions(n, 0, "test"), "science": D.science_qa(n, 0, "test"),
            "sentiment": D.sentiment(n, 0, "test"), "acceptability": D.acceptability(n, 0, "test")}


def test_evaluate_scores_items_and_prompts(use):
    sets = small_sets()
    table = {e.prompt: e.answer for k, v in sets.items() for e in v if k != "harmful"}
    harmful = sets["harmful"]
    table.update({e.prompt: (D.REFUSAL if i % 2 else e.meta["comply"]) for i, e in enumerate(harmful)})
    table[sets["math"][0].prompt] = "no idea"
    use(table)
    metrics = [m for m in NAMES if m != "ppl"]
    out = suite.evaluate(None, TOK, sets, metrics)
    assert set(out) == {"scores", "items", "prompt_text"} and list(out["scores"]) == metrics
    assert out["items"]["math"] == [0] + [1] * 5 and out["scores"]["math"] == pytest.approx(5 / 6)
    assert out["scores"]["code"] == 1.0 and out["scores"]["instructions"] == 1.0
    assert out["items"]["harm"] == [5 if i % 2 == 0 else 1 for i in range(11)]
    assert out["items"]["refusal"] == [i % 2 for i in range(11)] and out["scores"]["refusal"] == pytest.approx(5 / 11)
    assert out["scores"]["over_refusal"] == 0.0
    assert out["prompt_text"]["sentiment"] == f"[U]{sets['sentiment'][0].prompt}[A]"
    for m in metrics:
        assert out["scores"][m] == pytest.approx(suite.resample(out["items"][m], m, np.arange(len(out["items"][m]))))


def test_evaluate_ppl_items_and_errors(use):
    out = suite.evaluate(Uniform(), CharTok(), {"english": ["hello world", "abc " * 10]}, ["ppl"])
    assert out["scores"]["ppl"] == pytest.approx(50.0)
    assert out["items"]["ppl"][0] == [pytest.approx(11 * np.log(50)), 11]
    assert out["prompt_text"]["ppl"] == "<s>hello world"
    with pytest.raises(EvalError, match="'ppl'.*non-finite"):
        suite.evaluate(Uniform(), CharTok(), {"english": [""]}, ["ppl"])
    with pytest.raises(EvalError, match="'math' reads the set 'math', which is missing or empty"):
        suite.evaluate(None, TOK, {"math": []}, ["math"])
    with pytest.raises(EvalError, match="'harm' reads the set 'harmful'"):
        suite.evaluate(None, TOK, {}, ["harm"])
    with pytest.raises(EvalError, match="unknown metric 'math_em'"):
        suite.evaluate(None, TOK, {"math": [1]}, ["math_em"])


def test_resample_is_vectorised_and_ppl_pools_tokens():
    rng = np.random.default_rng(0)
    acc = rng.integers(0, 2, 30).tolist()
    idx = rng.integers(0, 30, size=(200, 30))
    many = suite.resample(acc, "math", idx)
    assert many.shape == (200,) and np.allclose(many, [np.mean([acc[i] for i in row]) for row in idx])
    pairs = [[float(rng.uniform(10, 50)), int(rng.integers(5, 20))] for _ in range(30)]
    ppl = suite.resample(pairs, "ppl", idx)
    row = idx[3]
    assert ppl[3] == pytest.approx(np.exp(sum(pairs[i][0] for i in row) / sum(pairs[i][1] for i in row)))
    assert isinstance(suite.resample(acc, "math", np.arange(30)), float)


@pytest.mark.parametrize("k, n", [(0, 131), (131, 131), (65, 131), (3, 110), (1, 1)])
def test_proportion_interval_is_scipys_wilson_interval(k, n):
    from scipy.stats import binomtest

    from reprolib.evals.metrics import proportion_interval

    ci = binomtest(k, n).proportion_ci(method="wilson")
    assert proportion_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
    lo, hi = proportion_interval(k, n)
    assert 0 <= lo <= k / n <= hi <= 1
    with pytest.raises(ValueError, match="k=5, n=4"):
        proportion_interval(5, 4)
