"""Pareto fronts of two (or more) scores, for trade-off curves such as Merge to Learn's general vs
skill performance (Figs. 3 and 6) or exaggerated refusal vs general skill (Figs. 4–5).

A point *dominates* another when it is at least as good on every objective and strictly better on
one; the front is the points no other point dominates. Exact duplicates do not dominate each other,
so every copy of a front point is on the front (and every copy of a dominated point is dominated).
"""

from __future__ import annotations

import math
from typing import Sequence


def _oriented(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[tuple[float, ...]]:
    out = []
    for i, p in enumerate(points):
        if len(p) != len(maximize):
            raise ValueError(f"pareto: point {i} has {len(p)} values, expected {len(maximize)} (one per objective)")
        values = tuple(float(v) for v in p)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"pareto: point {i} = {tuple(p)} is not finite; drop or fill it first")
        out.append(tuple(v if up else -v for v, up in zip(values, maximize)))
    return out


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b`` (both already oriented so that higher is better)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_front(points: Sequence[Sequence[float]], maximize: Sequence[bool] = (True, True)) -> list[int]:
    """Indices of the non-dominated ``points``, in the order of the points (``maximize[k]`` says
    whether objective k is better higher). O(n²), meant for the tens of points of a sweep."""
    oriented = _oriented(points, maximize)
    return [i for i, p in enumerate(oriented) if not any(dominates(q, p) for q in oriented)]


def front_curve(points: Sequence[Sequence[float]], maximize: Sequence[bool] = (True, True)) -> list[tuple[float, float]]:
    """The two-objective front as a line to draw: its distinct points sorted by the first objective."""
    if len(maximize) != 2:
        raise ValueError("front_curve draws two objectives")
    return sorted({tuple(float(v) for v in points[i]) for i in pareto_front(points, maximize)})
