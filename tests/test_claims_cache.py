"""reprolib.claims (verdicts with t-intervals) and reprolib.cache (config-keyed results)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reprolib import claims
from reprolib.cache import ResultCache, config_key


def test_mean_ci_matches_scipy_t_interval():
    from scipy import stats

    values = [0.1, 0.25, 0.18, 0.3]
    mean, (lo, hi) = claims.mean_ci(values)
    ref = stats.t.interval(0.95, len(values) - 1, loc=stats.tmean(values), scale=stats.sem(values))
    assert mean == pytest.approx(sum(values) / 4)
    assert (lo, hi) == pytest.approx(ref)


@pytest.mark.parametrize("values,better,margin,expected", [
    ([0.10, 0.12, 0.11], "higher", 0.0, claims.REPRODUCED),
    ([-0.10, -0.12, -0.11], "higher", 0.0, claims.NOT_REPRODUCED),
    ([-0.2, 0.3, 0.05], "higher", 0.0, claims.INCONCLUSIVE),
    ([0.10, 0.12], "higher", 0.0, claims.INCONCLUSIVE),            # fewer than 3 seeds
    ([0.01, 0.012, 0.011], "lower", 0.02, claims.REPRODUCED),      # within a 2% tolerance
    ([0.05, 0.06, 0.055], "lower", 0.02, claims.NOT_REPRODUCED),
    ([0.0, 0.0, 0.0], "higher", 0.0, claims.INCONCLUSIVE),         # exact tie: not above the margin
])
def test_directional_verdicts(values, better, margin, expected):
    v = claims.directional("c", "t", values, better, margin)
    assert v.verdict == expected
    assert v.n == len(values)
    if len(values) < 2:
        assert math.isnan(v.ci[0])


def test_directional_rejects_nan_and_bad_direction():
    with pytest.raises(ValueError, match="NaN"):
        claims.directional("c", "t", [0.1, float("nan"), 0.2])
    with pytest.raises(ValueError, match="better"):
        claims.directional("c", "t", [0.1, 0.2, 0.3], better="up")


def test_all_of_combines_parts():
    yes = claims.directional("a", "t", [1, 1.1, 0.9])
    no = claims.directional("b", "t", [-1, -1.1, -0.9])
    maybe = claims.directional("c", "t", [-1, 1, 0.1])
    assert claims.all_of("x", "t", [yes, yes]).verdict == claims.REPRODUCED
    assert claims.all_of("x", "t", [yes, maybe]).verdict == claims.INCONCLUSIVE
    assert claims.all_of("x", "t", [yes, maybe, no]).verdict == claims.NOT_REPRODUCED
    table = claims.verdict_table([claims.all_of("x", "t", [yes, no])])
    assert list(table["verdict"]) == [claims.NOT_REPRODUCED, claims.REPRODUCED, claims.NOT_REPRODUCED]


def _learning_rows(gain: float, ppl_ratio: float, seeds=(0, 1, 2)):
    """Four baselines with equal scores and LATA ``gain`` above them (+ 0.01·seed)."""
    rows = []
    for s in seeds:
        jitter = 0.01 * s
        for tasks in ("UA + Math", "Math + Code"):
            base = {"ppl": 10.0, "harm": 3.0 if "UA" in tasks else float("nan"), "math": 0.5,
                    "code": 0.4 if "Code" in tasks else float("nan")}
            for i, m in enumerate(claims.BASELINES):
                rows.append({"tasks": tasks, "method": m, "seed": s, **base, "ppl": 10.0 + i})
            rows.append({"tasks": tasks, "method": "LATA", "seed": s, "ppl": 10.0 * ppl_ratio,
                         "harm": base["harm"] + 4 * (gain + jitter), "math": 0.5 + gain + jitter,
                         "code": base["code"] + gain + jitter})
    return pd.DataFrame(rows)


def test_lata_beats_baselines_on_synthetic_scores():
    assert claims.lata_beats_baselines(_learning_rows(0.1, 0.99)).verdict == claims.REPRODUCED
    v = claims.lata_beats_baselines(_learning_rows(-0.1, 0.99))
    assert v.verdict == claims.NOT_REPRODUCED
    assert v.parts[0].estimate == pytest.approx(-0.09)          # mean of -0.1 + {0, .01, .02}
    assert math.isnan(v.estimate)                               # a two-part claim has no single estimate
    worse_ppl = claims.lata_beats_baselines(_learning_rows(0.1, 1.01))  # 1% above the best baseline's perplexity
    assert worse_ppl.verdict == claims.NOT_REPRODUCED and worse_ppl.parts[1].estimate == pytest.approx(0.01)
    rows = _learning_rows(0.1, 0.99)
    rows.loc[rows.method == "TIES", "math"] = 0.9                # one baseline far better at maths in both task sets
    assert claims.lata_beats_baselines(rows).parts[0].verdict == claims.NOT_REPRODUCED


def test_setting_is_best_and_lata_alone_best():
    rows = []
    for s in (0, 1, 2):
        for tasks in ("UA + Math", "Math + Code"):
            for p, score in ((0.3, 0.6), (0.6, 0.5), (0.9, 0.4 + 0.01 * s)):
                rows.append({"tasks": tasks, "seed": s, "p": p, "ppl": 10 + p, "harm": 1 + 4 * score,
                             "math": score, "code": score})
    scores = pd.DataFrame(rows)
    v = claims.setting_is_best(scores, "p", 0.3, "c")
    assert v.verdict == claims.REPRODUCED and v.values[0] == pytest.approx(0.6 - 0.5)   # against the best other (p = 0.6)
    assert claims.setting_is_best(scores, "p", 0.9, "c").verdict == claims.NOT_REPRODUCED
    ppl = claims.setting_is_best(scores, "p", 0.3, "c", metric="ppl")        # lowest perplexity at p = 0.3
    assert ppl.verdict == claims.REPRODUCED and ppl.estimate < 0
    combos = pd.DataFrame([{"tasks": "Math + Code", "seed": s, "method": m, "math": x, "code": x, "ppl": 10.0}
                           for s in (0, 1, 2) for m, x in (("LATA", 0.5 + 0.01 * s), ("LATA + TIES", 0.4), ("LATA + DARE", 0.45))])
    alone = claims.lata_alone_best(combos)
    assert alone.verdict == claims.REPRODUCED and alone.values[0] == pytest.approx(0.075)


def test_pure_vector_forgets_and_late_layers():
    rows = []
    for s in (0, 1, 2):
        for lang in ("a", "b"):
            rows += [{"language": lang, "method": "original", "seed": s, "harm": 4.0, "ppl": 10.0},
                     {"language": lang, "method": "TA", "seed": s, "harm": 3.0, "ppl": 13.0 + s},
                     {"language": lang, "method": "SA", "seed": s, "harm": 3.0, "ppl": 10.5},
                     {"language": lang, "method": "LATA", "seed": s, "harm": 2.5 - 0.1 * s, "ppl": 11.0}]
    v = claims.pure_vector_forgets(pd.DataFrame(rows), "LATA", "TA")
    assert v.verdict == claims.REPRODUCED
    assert v.parts[0].values == pytest.approx([-1.5, -1.6, -1.7])
    assert v.parts[1].values == pytest.approx([-0.5, -0.6, -0.7])
    assert v.parts[2].values == pytest.approx([-0.2, -0.3, -0.4])
    ta_better = pd.DataFrame(rows).assign(harm=lambda d: d.harm.where(d.method != "TA", 1.0))
    assert claims.pure_vector_forgets(ta_better, "LATA", "TA").verdict == claims.NOT_REPRODUCED
    layers = pd.DataFrame([{"seed": s, "expert": e, "layer": i, "cosine": 1.0 - 0.01 * i + 0.001 * s}
                           for s in (0, 1, 2) for e in ("math", "code") for i in range(8)])
    late = claims.late_layers_matter(layers)
    assert late.values == [1.0, 1.0, 1.0] and late.verdict == claims.REPRODUCED
    early = layers.assign(cosine=0.9 + 0.01 * layers["layer"])
    assert claims.late_layers_matter(early).verdict == claims.NOT_REPRODUCED


def test_cache_computes_once_and_keys_by_config(tmp_path):
    cache = ResultCache(tmp_path, "ns")
    calls = []
    compute = lambda: calls.append(1) or {"score": 0.5}  # noqa: E731
    cfg = {"method": "ties", "params": {"k": 0.7}, "models": {"a": "h1"}}
    assert cache.get_or_compute(cfg, compute) == {"score": 0.5}
    assert cache.get_or_compute({"models": {"a": "h1"}, "params": {"k": 0.7}, "method": "ties"}, compute) == {"score": 0.5}
    assert len(calls) == 1 and cache.hits == 1 and cache.misses == 1
    cache.get_or_compute({**cfg, "params": {"k": 0.9}}, compute)
    assert len(calls) == 2
    entry = cache.path(cfg)
    assert entry.name == f"{config_key(cfg)}.json"
    import json

    stored = json.loads(entry.read_text())
    assert stored["config"] == cfg and "versions" in stored["provenance"]
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]      # no temporary files left
    stored["config"]["params"]["k"] = 0.1                             # hand-edited entry: not trusted
    entry.write_text(json.dumps(stored))
    cache.get_or_compute(cfg, compute)
    assert len(calls) == 3
    assert ResultCache(tmp_path, "ns", enabled=False).get(cfg) is None
