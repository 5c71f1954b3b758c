"""One evaluation suite: any metrics of :mod:`reprolib.evals.metrics` on any Hugging Face causal LM.

``evaluate`` returns each metric's score, its per-item values (what a bootstrap over test items
resamples, see :func:`resample`) and the first prompt as the model saw it (its own chat template).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from reprolib.errors import EvalError
from reprolib.evals import generate as G
from reprolib.evals.items import Example
from reprolib.evals.judge import Judge, harm_scores
from reprolib.evals.metrics import ACCURACIES, METRICS, reads
from reprolib.evals.ppl import perplexity


def harm_score(model, tokenizer, examples: Sequence[Example], judge: Judge | None = None,
               chat: bool = True) -> tuple[float, list[dict]]:
    """Mean harmfulness 1–5 of the model's answers to harmful prompts (LATA's UA metric; the judge
    defaults to :class:`reprolib.evals.judge.RuleJudge`)."""
    outputs = G.generate(model, tokenizer, [e.prompt for e in examples], max_new_tokens=48, chat=chat)
    score, records = harm_scores(examples, outputs, judge)
    for r in records:
        r["prompt_text"] = G.render(tokenizer, r["prompt"], chat)
    return score, records


def _items(metric: str, records: list[dict]) -> list:
    """Per-item values: [nll, tokens] for ppl, 1–5 for harm, 0/1 otherwise."""
    if metric == "ppl":
        return [[r["nll"], r["tokens"]] for r in records]
    if metric == "harm":
        return [r["score"] for r in records]
    if metric == "refusal":
        return [int(G.is_refusal(r["output"])) for r in records]
    return [int(r["correct"]) for r in records]


def resample(items: Sequence, metric: str, idx) -> float | np.ndarray:
    """The metric's score over the items at ``idx``: one index array (a float back) or a 2-D array
    of B index rows (B scores back, vectorised). ppl is exp(Σ nll / Σ tokens) of the picked texts."""
    idx = np.asarray(idx, dtype=np.int64)
    values = np.asarray(items, dtype=np.float64)
    if metric == "ppl":
        picked = values[idx]                               # (..., n, 2)
        with np.errstate(invalid="ignore", divide="ignore"):  # no tokens: NaN, which evaluate reports
            out = np.exp(picked[..., 0].sum(-1) / picked[..., 1].sum(-1))
    else:
        out = values[idx].mean(-1)
    return float(out) if out.ndim == 0 else out


def evaluate(model, tokenizer, sets: dict[str, list], metrics: Iterable[str], judge: Judge | None = None,
             chat: bool = True, lm_eval: dict | None = None) -> dict:
    """Score ``model`` on ``metrics`` (names in ``reprolib.evals.metrics.METRICS``).

    Each metric reads one set (``reads``: ppl → ``english``, harm and refusal → ``harmful``,
    over_refusal → ``safe``, the others their own name); harm and refusal share one generation.
    ``judge`` scores harm (default ``RuleJudge()``; an ``LLMJudge`` plugs in a model judge).
    Returns ``{"scores": {metric: float}, "items": {metric: [per-item values]},
    "prompt_text": {metric: the first prompt as rendered for the model}}``. Raises EvalError
    naming the metric for an unknown metric, a missing or empty set, or a non-finite score.

    ``lm_eval`` (a paper profile's ``lm_eval`` section: ``{"metrics": {metric: {task, metric, …}},
    "include_path": …}``) scores the metrics it names with lm-eval tasks instead of ``sets``
    (:func:`reprolib.evals.lmeval.score_with_tasks`), e.g. ``math`` with ``gsm8k``.
    """
    metrics = list(dict.fromkeys(metrics))
    by_task = {m: s for m, s in ((lm_eval or {}).get("metrics") or {}).items() if m in metrics}
    if by_task:
        from reprolib.evals.lmeval import score_with_tasks

        rest = evaluate(model, tokenizer, sets, [m for m in metrics if m not in by_task], judge, chat)
        tasks = score_with_tasks(model, tokenizer, by_task, lm_eval.get("include_path"), lm_eval.get("include_defaults", True))
        return {k: {m: {**rest[k], **tasks[k]}[m] for m in metrics} for k in rest}
    for m in metrics:
        if m not in METRICS:
            raise EvalError(f"unknown metric {m!r} (known: {', '.join(METRICS)})")
        if not sets.get(reads(m)):
            raise EvalError(f"metric {m!r} reads the set {reads(m)!r}, which is missing or empty")
    out: dict = {"scores": {}, "items": {}, "prompt_text": {}}
    harmful = None
    for m in metrics:
        data = sets[reads(m)]
        if m == "ppl":
            records = perplexity(model, tokenizer, data)[1]
        elif m in ("harm", "refusal"):
            harmful = harmful or harm_score(model, tokenizer, data, judge, chat)[1]
            records = harmful
        elif m == "over_refusal":
            records = G.refusal_rate(model, tokenizer, data, chat)[1]
        elif m == "math":
            records = G.math_exact_match(model, tokenizer, data, chat)[1]
        elif m == "code":
            records = G.code_pass_at_1(model, tokenizer, data, chat)[1]
        else:
            assert m in ACCURACIES
            records = G.answer_accuracy(model, tokenizer, data, chat)[1]
        items = _items(m, records)
        score = resample(items, m, np.arange(len(items)))
        if not math.isfinite(score):
            raise EvalError(f"metric {m!r} gave a non-finite score ({score}) on {len(items)} items")
        out["scores"][m], out["items"][m], out["prompt_text"][m] = score, items, records[0]["prompt_text"]
    return out
