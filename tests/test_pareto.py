"""Pareto fronts on hand-made point sets whose fronts are known."""

import pytest

from reprolib.kit.pareto import dominates, front_curve, pareto_front


def test_one_point_is_its_own_front():
    assert pareto_front([(0.3, 0.4)]) == [0]
    assert pareto_front([]) == []


def test_chain_and_dominated_points():
    points = [(0.1, 0.9), (0.5, 0.5), (0.9, 0.1), (0.4, 0.4), (0.05, 0.05)]
    assert pareto_front(points) == [0, 1, 2]               # (0.4, 0.4) and (0.05, 0.05) are dominated by (0.5, 0.5)


def test_ties_on_one_objective():
    # same x: only the higher y survives; same y: only the higher x
    assert pareto_front([(0.5, 0.2), (0.5, 0.7), (0.3, 0.7)]) == [1]
    assert pareto_front([(0.5, 0.7), (0.5, 0.7), (0.2, 0.9)]) == [0, 1, 2]


def test_duplicates():
    # copies of a front point stay on the front; copies of a dominated point are all dominated
    points = [(0.8, 0.8), (0.8, 0.8), (0.2, 0.2), (0.2, 0.2)]
    assert pareto_front(points) == [0, 1]
    assert pareto_front([(0.4, 0.4)] * 3) == [0, 1, 2]
    assert front_curve(points) == [(0.8, 0.8)]


def test_minimised_objective():
    # general skill up, exaggerated refusal down (PTM Figs. 4–5)
    points = [(0.6, 0.10), (0.6, 0.30), (0.7, 0.40), (0.5, 0.05)]
    assert pareto_front(points, maximize=(True, False)) == [0, 2, 3]
    assert front_curve(points, maximize=(True, False)) == [(0.5, 0.05), (0.6, 0.10), (0.7, 0.40)]


def test_dominance_is_strict_and_errors_name_the_point():
    assert dominates((1, 1), (1, 0)) and not dominates((1, 1), (1, 1)) and not dominates((1, 0), (0, 1))
    with pytest.raises(ValueError, match="point 1"):
        pareto_front([(0.1, 0.2), (float("nan"), 0.3)])
    with pytest.raises(ValueError, match="point 0 has 3 values"):
        pareto_front([(0.1, 0.2, 0.3)])


def test_recorded_training_cost(tiny_zoo, tmp_path, monkeypatch):
    """Training compute comes from each model's recorded provenance, never typed in: PTM's skill
    model against retraining (general + skill from the base) and continued fine-tuning."""
    from reprolib.models import Models
    from reprolib.zoo.build import SKILL_STEPS

    models = Models("tiny", root=tiny_zoo.root.parent, progress=False)
    p = tiny_zoo.profile
    ptm, rt, cft = (models.training(r) for r in ("skill_science", "rt_science", "cft_science"))
    assert ptm["steps"] == cft["steps"] == max(1, int(SKILL_STEPS["science"] * p.step_scale))
    assert rt["steps"] == max(1, int((400 + SKILL_STEPS["science"]) * p.step_scale))
    assert 0 < ptm["flops"] < rt["flops"] and ptm["tokens"] > 0
    assert models.training("base")["steps"] == p.base_steps
    monkeypatch.setattr(models, "path", lambda role: tmp_path)   # a checkpoint folder without provenance
    assert models.training("base") is None
