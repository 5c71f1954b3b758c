"""reprolib.claims: verdicts with intervals over seeds and test items, parts, the registry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reprolib import claims
from reprolib.claims import Evidence, verdict_on


def _rows(values, metric="math"):
    return pd.DataFrame([{"seed": s, "method": "A", metric: v} for s, v in enumerate(values)])


def _mean_stat(metric="math"):
    return lambda records: claims.by_seed(records, lambda g: sum(r[metric] for r in g) / len(g))


def _of(g, method):
    return next(r["math"] for r in g if r["method"] == method)


@pytest.mark.parametrize("values,better,margin,expected", [
    ([0.10, 0.12, 0.11], "higher", 0.0, claims.REPRODUCED),
    ([-0.10, -0.12, -0.11], "higher", 0.0, claims.NOT_REPRODUCED),
    ([-0.2, 0.3, 0.05], "higher", 0.0, claims.INCONCLUSIVE),
    ([0.01, 0.012, 0.011], "lower", 0.02, claims.REPRODUCED),
    ([0.05, 0.06, 0.055], "lower", 0.02, claims.NOT_REPRODUCED),
    ([0.0, 0.0, 0.0], "higher", 0.0, claims.NOT_REPRODUCED),       # exactly on the margin: not above it
    ([0.02, 0.02, 0.02], "lower", 0.02, claims.NOT_REPRODUCED),    # ... nor below it
    ([0.3, 0.3, 0.3], "higher", 0.0, claims.REPRODUCED),           # identical seeds: a zero-width interval
])
def test_verdicts_without_items(values, better, margin, expected):
    v = verdict_on("c", "t", _mean_stat(), Evidence(_rows(values)), better, margin)
    assert v.verdict == expected and v.n == len(values) and v.values == pytest.approx(values)


def test_interval_without_items_is_the_t_interval():
    from scipy import stats

    values = [0.1, 0.25, 0.18, 0.3]
    v = verdict_on("c", "t", _mean_stat(), Evidence(_rows(values)))
    ref = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert v.estimate == pytest.approx(np.mean(values))
    assert v.ci == pytest.approx(ref)


def test_item_noise_widens_the_interval_and_is_paired():
    """Two methods scored on the same 40 items: their difference is certain when they differ on one
    item (paired), but a single method's score is uncertain (item noise), even with 3 equal seeds."""
    rng = np.random.default_rng(0)
    a = (rng.random(40) < 0.5).astype(int)
    b = a.copy()
    b[0] = 1 - a[0] if a[0] == 0 else a[0]        # b ≥ a everywhere, better on one item at most
    b[1] = 1
    a[1] = 0
    rows, items = [], []
    for s in range(3):
        for name, x in (("a", a), ("b", b)):
            rows.append({"seed": s, "method": name, "math": x.mean()})
            items.append({"math": x.tolist()})
    ev = Evidence(pd.DataFrame(rows), items)
    level = verdict_on("level", "t", lambda r: claims.by_seed(r, lambda g: _of(g, "a")), ev, "higher", 0.5)
    assert level.ci[1] - level.ci[0] > 0.2                    # ~±0.15 binomial noise on 40 items
    gap = verdict_on("gap", "t", lambda r: claims.by_seed(r, lambda g: _of(g, "b") - _of(g, "a")), ev)
    assert gap.ci[0] >= 0 and gap.verdict in (claims.REPRODUCED, claims.INCONCLUSIVE)
    again = verdict_on("gap", "t", lambda r: claims.by_seed(r, lambda g: _of(g, "b") - _of(g, "a")), ev)
    assert again.ci == gap.ci                                 # seeded: the same interval every time


def test_perplexity_items_are_resampled_as_a_ratio():
    items = [[math.log(10) * 5, 5], [math.log(10) * 50, 50]]        # both texts at perplexity 10
    ev = Evidence(pd.DataFrame([{"seed": 0, "ppl": 10.0}]), [{"ppl": items}])
    v = verdict_on("p", "t", _mean_stat("ppl"), ev, "lower", 11)
    assert v.ci == pytest.approx((10.0, 10.0)) and v.verdict == claims.REPRODUCED


def test_nan_statistic_names_the_claim():
    with pytest.raises(ValueError, match="claim 'c'.*NaN"):
        verdict_on("c", "t", _mean_stat(), Evidence(_rows([0.1, float("nan"), 0.2])))
    with pytest.raises(ValueError, match="better"):
        verdict_on("c", "t", _mean_stat(), Evidence(_rows([0.1, 0.2, 0.3])), better="up")


def test_unpaired_items_are_an_error():
    ev = Evidence(pd.DataFrame([{"seed": 0, "math": 0.5}, {"seed": 0, "math": 0.5}]),
                  [{"math": [0, 1]}, {"math": [0, 1, 1]}])
    with pytest.raises(ValueError, match="same test items"):
        verdict_on("c", "t", _mean_stat(), ev)


def test_all_of_combines_parts():
    ev = lambda xs: Evidence(_rows(xs))  # noqa: E731
    yes = verdict_on("a", "t", _mean_stat(), ev([1, 1.1, 0.9]))
    no = verdict_on("b", "t", _mean_stat(), ev([-1, -1.1, -0.9]))
    maybe = verdict_on("c", "t", _mean_stat(), ev([-1, 1, 0.1]))
    assert claims.all_of("x", "t", [yes, yes]).verdict == claims.REPRODUCED
    assert claims.all_of("x", "t", [yes, maybe]).verdict == claims.INCONCLUSIVE
    assert claims.all_of("x", "t", [yes, maybe, no]).verdict == claims.NOT_REPRODUCED
    table = claims.verdict_table([claims.all_of("x", "t", [yes, no])])
    assert list(table["verdict"]) == [claims.NOT_REPRODUCED, claims.REPRODUCED, claims.NOT_REPRODUCED]


def test_registry_reads_sentences_and_rejects_unknown_ids():
    reg = claims.ClaimRegistry("lata")
    reg.register("table3_best_utility", ("t",), how="h")(lambda ev: None)
    reg.resolve()
    c = reg.claims["table3_best_utility"]
    assert c.line == 674 and c.sentence.startswith("Across all settings, LATA yields the best utility")
    bad = claims.ClaimRegistry("lata")
    bad.register("no_such_claim", ("t",), how="h")(lambda ev: None)
    from reprolib.errors import ConfigError

    with pytest.raises(ConfigError, match="no_such_claim"):
        bad.resolve()
    with pytest.raises(ValueError, match="twice"):
        reg.register("table3_best_utility", ("t",), how="h")(lambda ev: None)
