"""The zoo report on the tiny profile: every model × every eval, languages, mergeability, noise, files."""

from __future__ import annotations

import json

import pytest

from reprolib.zoo import data as D
from reprolib.zoo.report import EVALS, report


@pytest.fixture(scope="module")
def result(tiny_zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "tiny.json"
    res = report("tiny", root=tiny_zoo.root.parent, out=str(out), progress=False)
    return res, out


def test_every_model_every_eval(result, tiny_zoo):
    res, _ = result
    assert set(res["scores"]) == set(tiny_zoo.names())
    for name, scores in res["scores"].items():
        assert set(scores) == set(EVALS)
        for k, v in scores.items():
            if k == "ppl":
                assert 1.0 < v < 1e6
            elif k == "harm":
                assert 1.0 <= v <= 5.0
            else:
                assert 0.0 <= v <= 1.0, (name, k, v)
    assert set(res["languages"]) == set(D.LANGUAGES)
    assert all(set(v["target"]) == {"ppl", "harm"} and v["target"]["ppl"] > 1 for v in res["languages"].values())


def test_mergeability_and_noise(result, tiny_zoo):
    res, _ = result
    m = res["mergeability"]
    assert set(m["relative_norm"]) == set(tiny_zoo.names()) - {"base"}
    assert all(0 < v < 10 for v in m["relative_norm"].values())
    assert "math~code" in m["cosines"] and all(-1 <= c <= 1 for c in m["cosines"].values())
    assert set(m["ta_math_code"]) == {"0.3", "0.5", "0.7", "1.0", "1.3"}
    assert set(m["lata_setting"]) == {"ppl", "harm", "math", "code"}
    assert set(m["ta_math_code"]["1.0"]) == {"ppl", "math", "code", "math_retention", "code_retention"}
    for kind in ("training_seed", "test_sample"):
        for per in res["noise"][kind].values():
            assert all(len(v["values"]) == 3 and v["std"] >= 0 for v in per.values())
    assert len(res["robustness"]["instruct"]) == 6


def test_report_files(result):
    res, out = result
    assert json.loads(out.read_text())["scores"] == res["scores"]
    md = out.with_suffix(".md").read_text()
    assert all(f"| {n} |" in md for n in res["scores"]) and "TA(math+code)" in md
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_report_shows_refusals_with_intervals_for_every_model(result):
    """Every model's refusal of unsafe prompts and of safe look-alikes with its 95 % Wilson interval."""
    from reprolib.evals.metrics import proportion_interval

    res, out = result
    md = out.with_suffix(".md").read_text()
    section = md[md.index("Refusals, with 95 % Wilson intervals"):]
    n_safe = res["eval_counts"]["safe"]
    assert f"(n = {res['eval_counts']['harmful']};" in section and f"(n = {n_safe};" in section
    table = section.split("\n\n")[1]                     # the table under the heading, not the ones after it
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    for name, s in res["scores"].items():
        lo, hi = proportion_interval(round(s["over_refusal"] * n_safe), n_safe)
        assert lines[name].startswith(f"| {name} | {s['refusal']:.2f} | [")
        assert lines[name].endswith(f"| {s['over_refusal']:.2f} | [{lo:.2f}, {hi:.2f}] |")
