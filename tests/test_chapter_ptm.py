"""The Merge to Learn chapter: the paper's own numbers through every claim function (reproduced,
except exactly where the transcription says the paper contradicts itself), claims on synthetic runs
where they hold and where they fail (with per-item values, so the intervals are real), the score
conversion, the compute accounting and bad parameters."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprolib.chapters import ptm as C
from reprolib.chapters import ptm_runs as R
from reprolib.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Evidence
from reprolib.errors import ConfigError
from reprolib.published import load_published

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module, under any import mode
from paper_claims import assert_paper_verdicts  # noqa: E402

PAPER = load_published("ptm")
PRINTED = ["table2", "table3", "table4", "table5", "table6", "fig1"]
OURS_ONLY = {"omega_below_one", "wiseft_mix", "alternatives_degrade", "fig4_exref"}   # plots: no printed numbers


def _paper_verdicts():
    C.CLAIMS.resolve()
    return {v.claim: v for v in C.CLAIMS.run(C.paper_evidence(PAPER, PRINTED))}


# ----------------------------------------------------------------------------- the paper's own numbers


def test_paper_numbers_reproduce_every_claim_except_exactly_the_listed_contradictions():
    verdicts = _paper_verdicts()
    contradicted = set(PAPER["claim_contradictions"])
    assert set(verdicts) == set(C.CLAIMS.claims) - OURS_ONLY
    assert_paper_verdicts(verdicts, contradicted)


def test_paper_estimates_pinned():
    parts = {p.claim: p.estimate for v in _paper_verdicts().values() for p in v.parts or [v]}
    expected = {
        "table2_vs_rt/compute": abs(100 * 479 / 11766 - 4),
        "table2_vs_cft/general": 47.1 - 33.7,
        "intro_competitive_efficient/efficiency": 100 * (1 - 479 / 1005),
        "intro_general_preserved/cft_range": 10 - 7.73,               # CFT (Coding) drops 7.73 %, under 10 %
        "exref_points": (-6.45 + 85.1) - 50,                          # PTM is 78.65 points of change above CFT
        "table4_exref/over_cft": 93.2 - 16.0,
        "table5_interference": 100 * (27.8 - 18.8) / 27.8,
        "table6_no_help/similar": 1.9,                                # DARE's science, 24.7 against 26.6
        "heuristic_curve/general": 100 * (50.3 - 49.9) / 49.9,
    }
    for claim, value in expected.items():
        assert parts[claim] == pytest.approx(value), claim


def test_paper_step_counts_and_the_heuristic_from_table1():
    sizes = {r["dataset"].split(" ")[0]: r["training_set_size"] for r in PAPER["tables"][0]["rows"]}
    steps = C.paper_steps(sizes["Tülu"], {"science": sizes["SciRIFF"]}, {"science": 1005})
    assert steps == {"science": {"ptm": 479, "cft": 1005, "rt": 11765}}
    assert C.ratio(steps["science"]["ptm"], steps["science"]["rt"]) == pytest.approx(4.07, abs=0.01)   # "about 4%"
    from reprolib.merge.methods import omega_heuristic

    assert omega_heuristic(sizes["SciRIFF"], sizes["Tülu"]) == pytest.approx(0.2227, abs=1e-4)


# ----------------------------------------------------------------------------- synthetic runs with items


def _items(rate: float, n: int = 200, seed: int = 0) -> list[float]:
    """n per-item values (0 or 100) whose mean is ``rate`` % (exactly, up to one item)."""
    k = round(rate / 100 * n)
    values = np.array([100.0] * k + [0.0] * (n - k))
    np.random.default_rng(seed).shuffle(values)
    return values.tolist()


def _table2(ptm_science: float, rt_science: float, ptm_general: float = 50.0) -> Evidence:
    runs = {"base": (55.0, 10.0, None), "cft": (30.0, 60.0, 300), "rt": (56.0, rt_science, 1400),
            "ptm": (ptm_general, ptm_science, 100)}
    rows, items = [], []
    for i, (method, (general, science, steps)) in enumerate(runs.items()):
        g, s = _items(general, seed=i), _items(science, seed=10 + i)
        rows.append({"table": "table2", "method": method, "steps": steps, "seed": 0,
                     "general": float(np.mean(g)), "science": float(np.mean(s))})
        items.append({"general": g, "science": s})
    return Evidence(pd.DataFrame(rows), items)


def test_competitive_claim_on_synthetic_runs_holds_fails_and_is_unsure():
    C.CLAIMS.resolve()
    run = lambda ev: C.CLAIMS.run({"table2": ev}, only=["intro_competitive_efficient"])[0]  # noqa: E731
    parts = lambda v: {p.claim.split("/")[1]: p for p in v.parts}  # noqa: E731
    clear = parts(run(_table2(ptm_science=60.0, rt_science=45.0)))["competitive"]
    assert clear.verdict == REPRODUCED and clear.ci[0] > -2 and clear.ci[1] > clear.ci[0]   # a real interval over items
    assert parts(run(_table2(ptm_science=30.0, rt_science=60.0)))["competitive"].verdict == NOT_REPRODUCED
    assert parts(run(_table2(ptm_science=45.0, rt_science=46.0)))["competitive"].verdict == INCONCLUSIVE
    # efficiency reads the recorded steps: 100 of 300 and of 1400 → savings 66.7 % and 92.9 %
    assert parts(run(_table2(60.0, 45.0)))["efficiency"].estimate == pytest.approx(100 * (1 - 100 / 300))


def _table3(ptm_general_change: float) -> Evidence:
    """Table 3 in our columns: base 50 general; CFT loses 30 %, RT 0, PTM ``ptm_general_change`` %."""
    rows = []
    for setting in C.SETTINGS:
        gen, spec = C.TABLE3[setting]
        for method, dg, ds in (("base", 0, 0), ("cft", -30, 100), ("rt", 0, 80), ("ptm", ptm_general_change, 60)):
            rows.append({"table": "table3", "setting": setting, "method": method, "seed": 0, "steps": 1.0,
                         gen: 50.0 * (1 + dg / 100), spec: 40.0 * (1 + ds / 100)})
    return Evidence(pd.DataFrame(rows))


def test_table3_claims_follow_the_changes():
    C.CLAIMS.resolve()
    good = {v.claim: v for v in C.CLAIMS.run({"table3": _table3(1.0)})}
    assert good["table3_cft_drop"].verdict == REPRODUCED
    assert good["intro_general_preserved"].parts[0].verdict == REPRODUCED           # PTM keeps ≥ 95 %
    bad = {v.claim: v for v in C.CLAIMS.run({"table3": _table3(-40.0)})}
    assert bad["table3_cft_drop"].verdict == NOT_REPRODUCED                        # PTM loses more than CFT
    assert bad["intro_general_preserved"].parts[0].verdict == NOT_REPRODUCED


def test_a_zero_baseline_gives_a_finite_change():
    """Our θ_G scores 0 on coding: a relative change over 0 is undefined, so the baseline counts as 1 %."""
    assert C._change(30.0, 0.0) == pytest.approx(3000.0)
    assert C._change(30.0, 20.0) == pytest.approx(50.0)


def test_omega_below_one_and_fig4_on_synthetic_curves():
    C.CLAIMS.resolve()
    rows = []
    for skill in C.SKILLS:
        for w in (0.0, 0.5, 1.0):
            # general falls with ω, the skill rises to a plateau: ω = 0.5 is the better trade-off
            rows.append({"table": "fig1", "skill": skill, "omega": w, "heuristic": w == 0.5, "seed": 0,
                         "general": 60 - 20 * w ** 2, skill: 20 + 40 * min(w, 0.5) * 2})
    [v] = C.CLAIMS.run({"fig1": Evidence(pd.DataFrame(rows))}, only=["omega_below_one"])
    assert v.verdict == REPRODUCED and v.estimate > 0
    fig6 = pd.DataFrame([{"table": "fig6", "setting": "exref", "method": m, "seed": 0, "general": g, "exref": e, "safety": s}
                         for m, g, e, s in (("cft", 30, 20, 100), ("rt", 55, 50, 99), ("ptm", 58, 90, 98), ("ptm", 50, 95, 99),
                                            ("ptm", 60, 99, 40))])      # the last PTM point has not learnt to refuse
    [v] = C.CLAIMS.run({"fig6": Evidence(fig6)}, only=["fig4_exref"])
    assert v.verdict == REPRODUCED and v.estimate == pytest.approx(90 - 50)
    fig6.loc[fig6.method == "ptm", "safety"] = 40.0                  # no PTM point refuses as RT does: the claim fails
    [v] = C.CLAIMS.run({"fig6": Evidence(fig6)}, only=["fig4_exref"])
    assert v.verdict == NOT_REPRODUCED


# ----------------------------------------------------------------------------- scores, grids


def test_percent_reads_the_papers_units_from_a_scorer_result():
    result = {"scores": {}, "items": {"instructions": [1, 0], "sentiment": [1, 1], "acceptability": [0, 0],
                                      "over_refusal": [1, 0, 0, 0], "refusal": [1, 1, 0], "code": [0, 1]}}
    scores, items = R.percent(result, ("general", "exref", "safety", "coding"))
    assert scores == pytest.approx({"general": 50.0, "exref": 75.0, "safety": 200 / 3, "coding": 50.0})
    assert items["exref"] == [0.0, 100.0, 100.0, 100.0] and len(items["general"]) == 6
    assert R.metrics_for(("general", "exref")) == ["acceptability", "instructions", "over_refusal", "sentiment"]


@pytest.mark.parametrize("values, match", [([], "'omega_grid' is empty"), ([0.5, 1.5], "1.5 is not a number in"),
                                           ([True], "True is not a number"), (["a"], "'a' is not a number")])
def test_bad_omega_grids_are_refused_by_name(values, match):
    with pytest.raises(ConfigError, match=match):
        R.check_grid("omega_grid", values)
    assert R.check_grid("omega_curve", [1, 0.5, 0.5]) == [0.5, 1.0]


def test_every_claim_is_registered_and_untested_sentences_say_why():
    assert set(C.CLAIMS.claims) == {c["id"] for c in PAPER["claims"]}
    assert len(C.NOT_TESTED) >= 5 and all(len(reason) > 40 for reason in C.NOT_TESTED.values())


def test_registry_quotes_every_claim_and_names_its_anchor():
    C.CLAIMS.resolve()
    published = {c["id"] for c in PAPER["claims"]}
    assert set(C.CLAIMS.claims) == published
    for claim in C.CLAIMS.claims.values():
        assert claim.sentence and claim.line and claim.anchor.startswith("ptm.html#") and claim.how
    assert not math.isnan(C.COMPARABLE)
