"""The τJp text claims (Tables 3, 4, 8, 9): the paper's own numbers through every claim function
(reproduced except exactly where the transcription lists a contradiction), pinned estimates, and
claims on synthetic runs where they hold and where they fail."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from reprolib.chapters import taujp_text as X
from reprolib.claims import NOT_REPRODUCED, REPRODUCED, Evidence
from reprolib.published import load_published

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_claims import assert_paper_verdicts  # noqa: E402

PAPER = load_published("taujp")


def _paper():
    X.CLAIMS.resolve()
    return {v.claim: v for v in X.CLAIMS.run(X.paper_evidence(PAPER, ["glue", "toxicity"]))}


def test_paper_numbers_reproduce_every_text_claim_except_the_listed_contradictions():
    verdicts = _paper()
    assert set(verdicts) == set(X.CLAIMS.claims)
    contradicted = {k for k in PAPER["claim_contradictions"] if k.split("/")[0] in X.CLAIMS.claims}
    assert contradicted == {"table3_outperforms", "table8_outperforms"}
    assert_paper_verdicts(verdicts, contradicted)
    parts = {p.claim: p.estimate for v in verdicts.values() for p in v.parts or [v]}
    assert parts["table3_outperforms"] == pytest.approx(87.5 - 95.4)            # MRPC Norm.: TIES above ours
    assert parts["table3_sst2/mitigates"] == pytest.approx(98.5 - 61.3)
    assert parts["table4_toxicity/ppl"] == pytest.approx(29.9 - 29.4)            # at the bound, as the note says
    assert parts["table9_perplexity/linear_hurts_more"] == pytest.approx(37.3 - 1.3)
    assert parts["table9_perplexity/ours_limited"] == pytest.approx(1.3 / 29.4)


def test_every_text_claim_is_in_the_transcription_with_its_page():
    X.CLAIMS.resolve()
    ids = {c["id"] for c in PAPER["claims"]}
    assert set(X.CLAIMS.claims) <= ids
    assert all(c.sentence and c.line > 0 and c.anchor.startswith(X.PAGE) for c in X.CLAIMS.claims.values())
    from reprolib.chapters import taujp as C

    assert not set(C.CLAIMS.claims) & set(X.CLAIMS.claims)          # each claim on one page


def _glue(ours_sst2=95.0, ties_mrpc=80.0) -> Evidence:
    rows = []
    for seed in (0, 1, 2):
        for method, coef, base in (("nonlinear", "grid", 70.0), ("linear", "grid", 75.0), ("ties", "grid", 72.0),
                                   ("ours", "grid", 82.0)):
            for task in X.GLUE_TASKS:
                norm = base + 10
                if task == "sst2":
                    norm = 60.0 if method == "linear" else ours_sst2 if method == "ours" else norm
                if (method, task) == ("ties", "mrpc"):
                    norm = ties_mrpc + 10
                rows.append({"seed": seed, "method": method, "coef": coef, "task": task, "abs": base, "norm": norm})
    return Evidence(pd.DataFrame(rows))


def test_glue_claims_hold_and_fail_on_synthetic_tables():
    ev = {"glue": _glue()}
    assert X.table3_outperforms(ev).verdict == REPRODUCED and X.table3_sst2(ev).verdict == REPRODUCED
    assert X.table3_outperforms({"glue": _glue(ties_mrpc=95.0)}).verdict == NOT_REPRODUCED   # TIES wins MRPC's Norm.
    parts = {p.claim: p.verdict for p in X.table3_sst2({"glue": _glue(ours_sst2=55.0)}).parts}
    assert parts == {"table3_sst2/degrades": REPRODUCED, "table3_sst2/mitigates": NOT_REPRODUCED}


def _tox(ours_ppl_grid=25.3, ours_ppl_one=26.0, ours_score=0.01) -> Evidence:
    rows = [{"method": "pretrained", "coef": "-", "toxic_rate": 2.0, "toxic_score": 0.05, "ppl": 25.0}]
    for coef, values in (("grid", {"nonlinear": (1.5, 0.04, 25.2), "linear": (1.0, 0.03, 25.4), "ties": (1.8, 0.04, 25.1),
                                   "ours": (0.5, ours_score, ours_ppl_grid)}),
                         ("1.0", {"nonlinear": (0.0, 0.02, 60.0), "linear": (0.0, 0.005, 50.0), "ties": (0.5, 0.03, 40.0),
                                  "ours": (0.5, ours_score, ours_ppl_one)})):
        rows += [{"method": m, "coef": coef, "toxic_rate": r, "toxic_score": s, "ppl": p} for m, (r, s, p) in values.items()]
    return Evidence(pd.DataFrame([{**r, "seed": seed} for seed in (0, 1, 2) for r in rows]))


def test_toxicity_claims_hold_and_fail_on_synthetic_tables():
    assert X.table4_toxicity({"toxicity": _tox()}).verdict == REPRODUCED
    assert X.table9_perplexity({"toxicity": _tox()}).verdict == REPRODUCED
    parts = {p.claim: p.verdict for p in X.table4_toxicity({"toxicity": _tox(ours_ppl_grid=25.6)}).parts}
    assert parts["table4_toxicity/ppl"] == NOT_REPRODUCED and parts["table4_toxicity/toxic_rate"] == REPRODUCED
    parts = {p.claim: p.verdict for p in X.table9_perplexity({"toxicity": _tox(ours_ppl_one=30.0)}).parts}
    assert parts["table9_perplexity/ours_limited"] == NOT_REPRODUCED            # +5 on 25 is 20 %
    assert parts["table9_perplexity/linear_hurts_more"] == REPRODUCED
    parts = {p.claim: p.verdict for p in X.table9_perplexity({"toxicity": _tox(ours_score=0.001)}).parts}
    assert parts["table9_perplexity/linear_least_toxic"] == NOT_REPRODUCED      # ours is less toxic than linear FT


class _StubRuns:
    """What :func:`reprolib.chapters.taujp_variants.per_task` reads of AdditionRuns: two tasks, one seed."""

    seeds, tasks, methods = [0], ("cola", "sst2"), ("nonlinear", "ties", "ours")

    def result(self, seed):
        ones, half = [1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0]
        addition = {"1.0": {"alpha": 1.0, "correct": {"cola": half, "sst2": ones}},
                    "grid": {"alpha": 0.5, "correct": {"cola": ones, "sst2": half}}}
        return {"pretrained": {"cola": [0.0, 0.0, 1.0, 0.0], "sst2": half},
                "single": {"nonlinear": {"cola": ones, "sst2": [1.0, 1.0, 1.0, 0.0]}, "ours": {"cola": half, "sst2": ones}},
                "addition": {"nonlinear": addition, "ties": addition, "ours": addition}}


def test_per_task_cells_are_tables_3_and_8s_abs_and_norm_with_items():
    """Abs. is the task's accuracy after addition; Norm. divides it by the task's own fine-tuned accuracy
    (TIES by the non-linear models', as the paper normalises a merge by its ingredients); the per-item
    values average to the cells, so the claims' bootstrap resamples what the table shows."""
    import numpy as np

    from reprolib.chapters.taujp_variants import per_task

    ev = per_task(_StubRuns())
    rows = ev.rows.set_index(["method", "coef", "task"])
    assert rows.loc[("pretrained", "-", "cola"), "abs"] == 25.0 and np.isnan(rows.loc[("pretrained", "-", "cola"), "norm"])
    assert rows.loc[("individual", "-", "sst2"), "abs"] == 75.0
    assert rows.loc[("nonlinear", "grid", "sst2"), "norm"] == pytest.approx(100 * 0.5 / 0.75)
    assert rows.loc[("ties", "1.0", "sst2"), "norm"] == pytest.approx(100 * 1.0 / 0.75)       # non-linear singles
    assert rows.loc[("ours", "grid", "cola"), "norm"] == pytest.approx(200.0)                  # ours' own singles
    for (row, items) in zip(ev.records(), ev.items):
        assert np.mean(items["abs"]) == pytest.approx(row["abs"])
        if "norm" in items:
            assert np.mean(items["norm"]) == pytest.approx(row["norm"])
    assert set(ev.item_counts().values()) == {4}
