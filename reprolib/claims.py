"""Claims as tests over results: the generic statistics and the claim registry.

A claim is one sentence of a paper (quoted, with its line in the seed text) and a function that
tests it: a per-seed *statistic* of the runs the paper uses as evidence (e.g. "the share of the
(setting, task) pairs on which LATA has the best score"), claimed to lie above (``better='higher'``)
or below (``'lower'``) a margin.

Intervals cover training seeds *and* test items. Each run's scores are kept with their per-item
values (:class:`Evidence`); a replicate resamples the test items with replacement — the same item
indices for every run and seed, since all of them are scored on the same items (a paired
bootstrap) — and recomputes the statistic per seed; the replicate's estimate is the mean over
seeds plus a Student-t draw scaled by the seeds' standard error (s/√n · t_{n−1}), which carries the
training-seed noise as the usual t-interval does. The interval is the 2.5–97.5 % percentile of
the replicates. Without per-item values (the paper's own numbers) it reduces to the t-interval over
seeds; with one seed it covers the test items only.

The verdict: **reproduced** when the whole interval lies on the claimed side of the margin, **not
reproduced** when it lies wholly on the other side or on the margin itself (claims are strict:
"over half" is not met by exactly half), **inconclusive** otherwise. A claim with parts
is reproduced when every part is and not reproduced when any part is not.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np

from reprolib.errors import ConfigError

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
N_BOOT = 400


@dataclass
class Verdict:
    claim: str                 # id, as in reprolib/papers/published/<paper>.yaml
    text: str                  # what is tested, in words
    verdict: str               # reproduced | not reproduced | inconclusive
    estimate: float            # mean over seeds of the per-seed statistic
    ci: tuple[float, float]    # 95 % interval over seeds and test items
    n: int                     # training seeds
    values: list[float] = field(default_factory=list)   # the statistic per seed
    parts: list["Verdict"] = field(default_factory=list)
    margin: float = 0.0
    better: str = "higher"

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- evidence


@dataclass
class Evidence:
    """The runs a claim reads: ``rows`` (one per run and seed: labels, ``seed`` and one column per
    metric) and, aligned with it, ``items``: per run, metric → per-item values (0/1, 1–5, or
    ``[nll, tokens]`` pairs for ``ppl``). Paper numbers have no items."""

    rows: "object"                                # pandas DataFrame
    items: list[dict[str, list]] = field(default_factory=list)

    def __post_init__(self):
        if self.items and len(self.items) != len(self.rows):
            raise ValueError(f"Evidence: {len(self.items)} item records for {len(self.rows)} rows")
        self.rows = self.rows.reset_index(drop=True)

    @classmethod
    def concat(cls, parts: Iterable["Evidence"]) -> "Evidence":
        import pandas as pd

        parts = list(parts)
        items = [i for p in parts for i in (p.items or [{} for _ in range(len(p.rows))])]
        return cls(pd.concat([p.rows for p in parts], ignore_index=True), items)

    def item_counts(self) -> dict[str, int]:
        """Metric → number of test items (the same for every run that has items for it)."""
        counts: dict[str, int] = {}
        for i, run in enumerate(self.items):
            for metric, values in run.items():
                n = len(values)
                if counts.setdefault(metric, n) != n:
                    raise ValueError(f"Evidence: metric {metric!r} has {n} items in row {i} but {counts[metric]} elsewhere; "
                                     "a paired bootstrap needs the same test items in every run")
        return counts

    def records(self) -> list[dict]:
        """The rows as plain dicts (what a statistic reads: fast to copy and to scan)."""
        return self.rows.to_dict("records")

    def replicates(self, n_boot: int, rng: np.random.Generator):
        """``n_boot`` copies of the records whose metric values are recomputed from resampled items."""
        from reprolib.evals.suite import resample

        counts = {m: n for m, n in self.item_counts().items() if m in self.rows}
        idx = {m: rng.integers(0, n, size=(n_boot, n)) for m, n in counts.items()}
        records = self.records()
        columns = {}                                   # metric -> {row: B resampled values}
        for metric, ix in idx.items():
            columns[metric] = {r: resample(run[metric], metric, ix) for r, run in enumerate(self.items)
                               if metric in run and len(run[metric])}
        for b in range(n_boot):
            out = [dict(rec) for rec in records]
            for metric, by_row in columns.items():
                for r, values in by_row.items():
                    out[r][metric] = float(values[b])
            yield out


def printed_evidence(rows: Iterable[dict], n_seeds: int = 3, floats: Iterable[str] = ()) -> Evidence:
    """A paper's printed numbers as if they were our results, so that they go through the same
    claim functions: ``rows`` (one per printed row, labels and scores in our column names) repeated
    over ``n_seeds`` identical seeds (the ``seed`` column), without per-item values — zero-width
    intervals, so the verdict is the side of the margin the statistic lies on. ``floats`` are the
    score columns, cast to float (a score not printed, None, becomes NaN)."""
    import pandas as pd

    rows = list(rows)
    frame = pd.DataFrame([{**r, "seed": s} for s in range(n_seeds) for r in rows])
    return Evidence(frame.astype({c: float for c in floats}))


# ----------------------------------------------------------------------------- verdicts


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean (the mean itself, twice, for one value or no spread)."""
    from scipy.stats import t

    mean = statistics.fmean(values)
    if len(values) < 2 or statistics.stdev(values) == 0:
        return mean, mean
    half = float(t.ppf(0.5 + level / 2, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def decide(lo: float, hi: float, better: str, margin: float) -> str:
    """Claims are strict ("above the margin"): an interval wholly at or below the margin fails one."""
    if better == "higher":
        return REPRODUCED if lo > margin else NOT_REPRODUCED if hi <= margin else INCONCLUSIVE
    return REPRODUCED if hi < margin else NOT_REPRODUCED if lo >= margin else INCONCLUSIVE


def _per_seed(stat, rows, claim: str) -> dict:
    values = {int(s): float(v) for s, v in stat(rows).items()}
    bad = [s for s, v in values.items() if not math.isfinite(v)]
    if bad or not values:
        raise ValueError(f"claim {claim!r}: the statistic is {'missing' if not values else 'NaN'} for seed(s) {bad}; "
                         "a missing score in one of the runs it reads (see the run's row in its table)")
    return values


def verdict_on(claim: str, text: str, stat: Callable, evidence: Evidence, better: str = "higher",
                   margin: float = 0.0, n_boot: int = N_BOOT, level: float = 0.95, seed: int = 0) -> Verdict:
    """Verdict on "``stat`` (a function of the records → {seed: value}) lies above / below ``margin``",
    with the interval over seeds and test items described in the module docstring."""
    if better not in ("higher", "lower"):
        raise ValueError(f"parameter 'better' must be 'higher' or 'lower', got {better!r}")
    values = _per_seed(stat, evidence.records(), claim)
    seeds = sorted(values)
    estimate = statistics.fmean(values[s] for s in seeds)
    n = len(seeds)
    if not any(evidence.items):          # no per-item values (the paper's numbers): the t-interval over seeds
        lo, hi = t_interval([values[s] for s in seeds], level)
    else:
        rng = np.random.default_rng(int(hashlib.sha256(f"{seed}:{claim}".encode()).hexdigest()[:8], 16))
        draws = []
        for rows in evidence.replicates(n_boot, rng):
            v = _per_seed(stat, rows, claim)
            mean = statistics.fmean(v[s] for s in seeds)
            if n > 1:
                mean += statistics.stdev(v[s] for s in seeds) / math.sqrt(n) * rng.standard_t(n - 1)
            draws.append(mean)
        lo, hi = (float(x) for x in np.percentile(draws, [50 * (1 - level), 50 * (1 + level)]))
    return Verdict(claim, text, decide(lo, hi, better, margin), estimate, (lo, hi), n, [values[s] for s in seeds],
                   margin=margin, better=better)


def seed_verdict(claim: str, text: str, fn: Callable[[list[dict]], float], evidence: Evidence, better: str = "higher",
                 margin: float = 0.0) -> Verdict:
    """:func:`verdict_on` for a statistic given as ``fn`` of one seed's records (applied per seed)."""
    return verdict_on(claim, text, lambda records: by_seed(records, fn), evidence, better, margin)


def all_of(claim: str, text: str, parts: list[Verdict]) -> Verdict:
    """A claim made of parts: reproduced if all are, not reproduced if any is not."""
    verdicts = [p.verdict for p in parts]
    verdict = (NOT_REPRODUCED if NOT_REPRODUCED in verdicts else
               REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE)
    return Verdict(claim, text, verdict, math.nan, (math.nan, math.nan), min(p.n for p in parts), [], parts)


def share(flags) -> float:
    """Share of True in ``flags`` (NaN for none)."""
    flags = list(flags)
    return sum(bool(f) for f in flags) / len(flags) if flags else math.nan


def present(value) -> bool:
    """A score is present (not None, not NaN)."""
    return value is not None and value == value


def group_by(records: list[dict], *keys) -> dict:
    """Records grouped by the values of ``keys`` (a tuple key for several), in first-seen order."""
    out: dict = {}
    for r in records:
        out.setdefault(r[keys[0]] if len(keys) == 1 else tuple(r[k] for k in keys), []).append(r)
    return out


def only(records: list[dict], where: str, **labels) -> dict:
    """The one record with ``labels``; a missing or repeated run is an error naming ``where`` and the seed
    (a statistic that silently took the first match would compare the wrong runs)."""
    rows = [r for r in records if all(r.get(k) == v for k, v in labels.items())]
    if len(rows) != 1:
        seed = records[0]["seed"] if records else "?"
        raise ValueError(f"{where} (seed {seed}): expected one run with {labels}, found {len(rows)}")
    return rows[0]


def by_seed(records: list[dict], fn) -> dict:
    """{seed: fn(records of that seed)}: the shape every statistic returns. A statistic reads plain
    records (``Evidence.records()``), not data frames: the bootstrap calls it hundreds of times."""
    return {s: fn(g) for s, g in sorted(group_by(records, "seed").items())}


# ----------------------------------------------------------------------------- the registry


@dataclass
class Claim:
    """One sentence of a paper and the function that tests it over the named evidence."""

    id: str
    paper: str
    sentence: str                   # quoted from the seed text
    line: int                       # its line in the seed text
    evidence: tuple[str, ...]       # tables / figures whose runs the test reads
    test: Callable                  # (dict[name, Evidence]) -> Verdict
    how: str                        # how the sentence is tested, in words (for the page)
    anchor: str = ""                # page#section where its table or figure is shown
    optional: tuple[str, ...] = ()  # evidence used when present (an extra part)


class ClaimRegistry:
    """A chapter's claims by id, with their sentences and lines read from the paper's transcription."""

    def __init__(self, paper: str):
        self.paper = paper
        self.claims: dict[str, Claim] = {}

    def _published(self) -> dict:
        from reprolib.published import load_published

        return {c["id"]: c for c in load_published(self.paper)["claims"]}

    def register(self, claim_id: str, evidence: tuple[str, ...], how: str, anchor: str = "", optional=()):
        def wrap(fn):
            if claim_id in self.claims:
                raise ValueError(f"claim {claim_id!r} registered twice")
            self.claims[claim_id] = Claim(claim_id, self.paper, "", 0, tuple(evidence), fn, how, anchor, tuple(optional))
            return fn
        return wrap

    def resolve(self) -> "ClaimRegistry":
        """Fill each claim's sentence and line from the transcription (an unknown id is an error)."""
        published = self._published()
        for claim in self.claims.values():
            if claim.id not in published:
                raise ConfigError(f"claim {claim.id!r} is not in reprolib/papers/published/{self.paper}.yaml")
            claim.sentence, claim.line = published[claim.id]["text"], published[claim.id]["line"]
        return self

    def run(self, evidence: dict[str, Evidence], only: Iterable[str] | None = None) -> list[Verdict]:
        """The verdict of every claim whose evidence is all present (or of the ids in ``only``)."""
        out = []
        for claim in self.claims.values():
            if only is not None and claim.id not in only:
                continue
            if all(name in evidence for name in claim.evidence):
                names = claim.evidence + tuple(n for n in claim.optional if n in evidence)
                verdict = claim.test({name: evidence[name] for name in names})
                if verdict is not None:          # None: the evidence lacks what the claim compares
                    out.append(verdict)
        return out


def verdict_table(verdicts: list[Verdict]):
    """One row per verdict (and per part), for the book."""
    import pandas as pd

    rows = []
    for v in verdicts:
        for i, x in enumerate([v] + v.parts):
            side = "" if math.isnan(x.estimate) else f"{'>' if x.better == 'higher' else '<'} {x.margin:g}"
            rows.append({"claim": v.claim if i == 0 else f"  └ {x.claim.split('/')[-1]}", "tested": x.text,
                         "claimed": side, "verdict": x.verdict,
                         "mean": None if math.isnan(x.estimate) else x.estimate,
                         "95% CI (seeds + items)": "" if math.isnan(x.ci[0]) else f"[{x.ci[0]:.3g}, {x.ci[1]:.3g}]",
                         "seeds": x.n, "per seed": ", ".join(f"{y:.3g}" for y in x.values)})
    return pd.DataFrame(rows)
