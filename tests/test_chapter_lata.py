"""The LATA chapter: paper rows → merges, the claims tested on the paper's own numbers, the
matched control, forgetting's per-language Safety Arithmetic λ."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from reprolib.chapters import lata as L
from reprolib.claims import REPRODUCED, NOT_REPRODUCED, Evidence
from reprolib.published import load_published

PAPER = load_published("lata")
ALL_EVIDENCE = [f"table{i}" for i in range(3, 16)] + ["fig4"]
# claims whose evidence is a figure with no printed numbers: they cannot be run on the paper's numbers
NO_PAPER_NUMBERS = {"fig5_late_layers", "ten_percent_layers", "ten_percent_beats_ta"}


def _paper_verdicts():
    L.CLAIMS.resolve()
    return {v.claim: v for v in L.CLAIMS.run(L.paper_evidence(PAPER, ALL_EVIDENCE))}


def test_paper_numbers_reproduce_every_claim_except_where_the_paper_contradicts_itself():
    """Self-consistency: the transcribed tables, taken as our results over 3 identical seeds, go
    through every claim function; each part comes out reproduced, except exactly the parts the
    transcription lists under claim_contradictions (which the page names), which come out not
    reproduced."""
    verdicts = _paper_verdicts()
    contradicted = set(PAPER["claim_contradictions"])
    assert set(verdicts) == set(L.CLAIMS.claims) - NO_PAPER_NUMBERS
    seen = set()
    for v in verdicts.values():
        for part in v.parts or [v]:
            expected = NOT_REPRODUCED if part.claim in contradicted else REPRODUCED
            assert part.verdict == expected, (part.claim, part.estimate)
            assert part.ci[0] == part.ci[1] == part.estimate          # identical seeds, no items: zero width
            seen.add(part.claim)
        whole = NOT_REPRODUCED if any(p.claim in contradicted for p in v.parts or [v]) else REPRODUCED
        assert v.verdict == whole
    assert contradicted <= seen                                          # every listed contradiction is tested


def test_paper_contradictions_pinned():
    verdicts = _paper_verdicts()
    parts = {p.claim: p for v in verdicts.values() for p in v.parts or [v]}
    assert parts["ties_k07_best_gemma"].estimate == 0.0                  # k = 0.7 never lowest ppl (Tables 10-11)
    assert parts["ties_k07_best_llama"].estimate == 0.0
    assert parts["forgetting_harm/below_2"].estimate == pytest.approx(2.57)   # line 871's own German number
    assert parts["tables5_6_robust/utility"].estimate == pytest.approx(10.0031 / 10.0667 - 1)
    assert parts["tables5_6_robust/tasks"].estimate == pytest.approx(9 / 18)   # exactly half: not "over half"
    assert parts["table3_best_utility/tasks"].estimate == pytest.approx(7 / 9)
    assert parts["tables5_6_robust/robust"].verdict == REPRODUCED


def test_every_paper_claim_but_the_abstract_has_a_test():
    ids = {c["id"] for c in PAPER["claims"]}
    assert set(L.CLAIMS.claims) == ids - {"abstract_outperforms"}
    for claim in L.CLAIMS.resolve().claims.values():
        assert claim.sentence and claim.line and claim.how and claim.anchor


def test_llama_appendix_claims_on_one_zoo_repeat_the_gemma_runs():
    """On the zoo, Tables 13-15 are the runs of Tables 8, 10, 12: counted once."""
    def ev(table_ids):
        rows = []
        for t in table_ids:
            for r in next(x for x in PAPER["tables"] if x["id"] == t)["rows"]:
                run = L.run_from_row(r)
                rows.append({**L._row(run, t), "ppl": 1.0})
        return Evidence(pd.DataFrame(rows))

    evidence = {t: ev([t]) for t in ("table8", "table9", "table10", "table11", "table12", "table13", "table14", "table15")}
    assert L.shared_evidence(evidence) == L.REPEATS


def test_matched_control_has_lata_mean_weight_and_no_ranks(family):
    from reprolib.merge import merge_state_dicts
    from reprolib.io import Checkpoint

    sd = {r: {k: v.float() for k, v in Checkpoint(p).state_dict().items()} for r, p in family.items()}
    kw = dict(base=sd["base"], instruct=sd["instruct"], model_params=[{"weight": 1.0}])
    lata, extra = merge_state_dicts("lata", [sd["math"]], params={"scheme": "linear"}, **kw)
    flat, extra_flat = merge_state_dicts("lata", [sd["math"]], params={"scheme": "linear", "flatten": True}, **kw)
    w, wf = extra["layer_weights"][0], extra_flat["layer_weights"][0]
    blocks = [k for k in w if k.startswith("layers.") or "layer" in k and w[k] > 0]
    ranked = {k: v for k, v in w.items() if v > 0}
    assert len(set(wf[k] for k in ranked)) == 1
    assert wf[next(iter(ranked))] == pytest.approx(sum(ranked.values()) / len(ranked))
    for k, v in flat.items():
        if "layers." not in k:                                  # embeddings, norm, head: the target's own
            assert torch.equal(v, sd["instruct"][k])
    assert blocks


def test_safety_arithmetic_uses_the_papers_lambda_per_language():
    lam = {lang: L.forgetting_methods(lang, 0.95, 1.0, 0.8, 0.1)["SA"][1][1]["lambda"] for lang in L.PAPER_LANGUAGES}
    assert lam == {"lang_a": 0.5, "lang_b": 0.3, "lang_c": 0.3, "lang_d": 0.5, "lang_e": 0.5}


@pytest.mark.parametrize("method,registry,params,model_params", [
    ("TA", "task_arithmetic", {}, [{"weight": 1.5}, {"weight": 0.5}]),
    ("DARE", "dare_linear", {"drop_rate": 0.3}, [{"weight": 1.5}, {"weight": 0.5}]),
    ("TIES", "ties", {}, [{"weight": 1.5, "density": 0.7}, {"weight": 0.5, "density": 0.7}]),
    ("DARE + TIES", "dare_ties", {"drop_rate": 0.1}, [{"weight": 1.5, "density": 0.9}, {"weight": 0.5, "density": 0.9}]),
    ("LATA (Ours)", "lata", {"scheme": "linear", "sigma": 0.95, "combine": "ta", "flatten": False}, [{"weight": 1.5}, {"weight": 0.5}]),
    ("LATA + TIES", "lata", {"scheme": "linear", "sigma": 0.95, "combine": "ties", "flatten": False},
     [{"weight": 1.5, "density": 0.7}, {"weight": 0.5, "density": 0.7}]),
    ("LATA + DARE + TIES", "lata", {"scheme": "linear", "sigma": 0.95, "combine": "dare_ties", "flatten": False, "drop_rate": 0.1},
     [{"weight": 1.5, "density": 0.9}, {"weight": 0.5, "density": 0.9}]),
])
def test_paper_rows_map_to_registry_merges(method, registry, params, model_params):
    row = {"tasks": "UA + Math", "method": method, "lambda": {"ua": 1.5, "math": 0.5},
           "p": {"DARE": 0.3, "DARE + TIES": 0.1}.get(method), "k": {"TIES": 0.7, "DARE + TIES": 0.9}.get(method),
           "lata_variant": "linear-drop-by-rank" if method.startswith("LATA") else None}
    run = L.run_from_row(row)
    assert run.tasks == ("ua", "math") and run.label == "UA + Math"
    assert run.merge_args() == (registry, params, model_params)
    from reprolib.merge.registry import get_method

    get_method(registry).resolve(params, model_params)   # every mapped configuration validates


def test_every_published_row_maps_to_a_run():
    from reprolib.merge.registry import get_method

    for table in load_published("lata")["tables"][2:]:
        for row in table["rows"]:
            method, params, model_params = L.run_from_row(row).merge_args()
            get_method(method).resolve(params, model_params)


def test_a_missing_baseline_score_is_an_error_naming_the_run():
    ev = L.paper_evidence(PAPER, ["table3"])
    rows = ev["table3"].rows
    rows.loc[(rows["method"] == "TIES") & (rows["tasks"] == "UA + Code") & (rows["seed"] == 1), "code"] = float("nan")
    with pytest.raises(ValueError, match=r"run table3 / UA \+ Code / TIES \(seed 1\) has no 'code' score"):
        L.CLAIMS.claims["table3_best_utility"].test(ev)
