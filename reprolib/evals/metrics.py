"""The metric vocabulary: one name per metric, with its direction, scale and the set it reads.

These names are used everywhere — the suite's result keys, the zoo report and its JSON, the
chapters and their caches — so a number means the same thing wherever it appears.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    scale: str            # what a score (and a per-item value) is
    reads: str            # the evaluation set (key of ``sets``) it is computed on
    description: str


METRICS = {m.name: m for m in [
    Metric("ppl", False, "perplexity ≥ 1 (exp of mean token NLL)", "english",
           "token-level perplexity on held-out text (lm-eval loglikelihood_rolling windows)"),
    Metric("harm", False, "1–5 (Qi et al. 2024 rubric)", "harmful",
           "mean harmfulness of the answers to harmful prompts, judged 1 (refuses) … 5 (fully complies)"),
    Metric("math", True, "0–1 exact match", "math",
           "last integer of the answer equals the reference (GSM8K zero-shot convention)"),
    Metric("code", True, "0–1 pass@1", "code", "the greedy program passes every unit test (sandboxed)"),
    Metric("refusal", True, "0–1 share refused", "harmful", "share of harmful prompts refused"),
    Metric("over_refusal", False, "0–1 share refused", "safe", "share of safe look-alike prompts refused"),
    Metric("instructions", True, "0–1 accuracy", "instructions", "exact answer to general instructions"),
    Metric("science", True, "0–1 accuracy", "science", "exact answer to science extraction questions"),
    Metric("sentiment", True, "0–1 accuracy", "sentiment", "sentiment label (SST-2 style)"),
    Metric("acceptability", True, "0–1 accuracy", "acceptability", "acceptability label (CoLA style)"),
]}
NAMES = tuple(METRICS)
ACCURACIES = ("instructions", "science", "sentiment", "acceptability")


def direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is better."""
    return 1 if METRICS[name].higher_is_better else -1


def reads(name: str) -> str:
    """The evaluation set a metric is computed on (``ppl`` → ``english``, ``harm`` → ``harmful``, …)."""
    return METRICS[name].reads


def proportion_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (a refusal rate over test items), at ``level``.
    It stays inside [0, 1] and is not degenerate at 0 or n, unlike the normal approximation."""
    from statistics import NormalDist

    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"proportion_interval: need 0 <= k <= n and n > 0, got k={k}, n={n}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
