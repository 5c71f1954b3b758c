"""reprolib.merge.methods (and how reprolib.merge.registry applies them): the merge methods against
independent computations (PEFT's merge_utils) and hand-worked cases, LATA's ranks and layer weights,
M³'s λ draws and disjoint interpolation, and LATA's combine options through the in-memory path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from peft.utils import merge_utils as peft

from reprolib.io import Checkpoint
from reprolib.merge import merge_state_dicts
from reprolib.merge import methods as M
from reprolib.merge.topk import TopKSelector, magnitude_threshold


@pytest.fixture
def vectors():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(48, 37, generator=g) * s for s in (1.0, 0.5, 2.0)]


WEIGHTS = [0.7, 1.0, 0.4]


def test_task_arithmetic_matches_peft(vectors):
    base = torch.randn(48, 37)
    ours = M.task_arithmetic(base, vectors, WEIGHTS, scale=1.0) - base
    assert torch.allclose(ours, peft.task_arithmetic(vectors, torch.tensor(WEIGHTS)), atol=1e-6)
    assert torch.equal(M._weighted_sum(vectors, WEIGHTS), peft.task_arithmetic(vectors, torch.tensor(WEIGHTS)))


@pytest.mark.parametrize("density", [0.1, 0.3, 0.7, 0.95])
def test_magnitude_prune_matches_peft(vectors, density):
    for v in vectors:
        assert torch.equal(M.magnitude_prune(v, density), peft.prune(v, density, "magnitude"))
    ours = M._weighted_sum([M.magnitude_prune(v, density) for v in vectors], WEIGHTS)
    assert torch.equal(ours, peft.magnitude_prune(vectors, torch.tensor(WEIGHTS), density))


@pytest.mark.parametrize("density", [0.2, 0.5, 0.7, 0.9])
def test_ties_matches_peft(vectors, density):
    ours = M.ties_vector(vectors, WEIGHTS, density)
    theirs = peft.ties(vectors, torch.tensor(WEIGHTS), density)
    assert torch.equal(ours, theirs)
    # and not trivially: trimming changed something and the result is not plain task arithmetic
    assert not torch.allclose(ours, peft.task_arithmetic(vectors, torch.tensor(WEIGHTS)))


def test_ties_hand_worked():
    # two models, 4 entries, keep top 50% of each
    a = torch.tensor([3.0, -1.0, 0.5, -4.0])
    b = torch.tensor([-2.0, 2.0, 0.1, -1.0])
    # trim: a → [3, 0, 0, -4]; b → [-2, 2, 0, 0]; elected: [+, +, +(0), -]
    # agree: a [T, F, F, T]; b [F, T, F, F] → mean: [3, 2, 0, -4]
    assert torch.equal(M.ties_vector([a, b], [1.0, 1.0], 0.5), torch.tensor([3.0, 2.0, 0.0, -4.0]))
    # weights in the numerator, divisor = count (PEFT) vs Σ weights (mergekit normalize: true)
    assert torch.equal(M.ties_vector([a, b], [2.0, 1.0], 0.5), torch.tensor([6.0, 2.0, 0.0, -8.0]))
    assert torch.equal(M.ties_vector([a, b], [2.0, 1.0], 0.5, divisor="weights"), torch.tensor([3.0, 2.0, 0.0, -4.0]))
    assert torch.equal(M.ties_vector([a, a], [1.0, 1.0], 1.0, divisor="none"), 2 * a)


def test_dare_matches_peft_with_the_same_generator(vectors):
    v = vectors[0]
    seed = M.derive_seed(7, 0, "w", 0)
    torch.manual_seed(seed)
    theirs = peft.prune(v, 0.7, "random", rescale=True)
    ours = M.dare(v, 0.3, M.dare_mask("w", v.numel(), 0.7, 7))
    assert torch.equal(ours, theirs)


def test_dare_ties_matches_peft_when_no_trim(vectors):
    masked = []
    for i, v in enumerate(vectors):
        masked.append(M.dare(v, 0.4, M.dare_mask("w", v.numel(), 0.6, 3, model=i)))
    ours = M.ties_vector(masked, WEIGHTS, 1.0)
    # PEFT draws its masks from the global generator in model order: reproduce those draws
    theirs_masked = []
    for i, v in enumerate(vectors):
        torch.manual_seed(M.derive_seed(3, i, "w", 0))
        theirs_masked.append(peft.prune(v, 0.6, "random", rescale=True))
    assert all(torch.equal(a, b) for a, b in zip(masked, theirs_masked))
    stacked = torch.stack(theirs_masked)
    sign = peft.calculate_majority_sign_mask(stacked)
    theirs = peft.disjoint_merge(stacked * torch.tensor(WEIGHTS).view(-1, 1, 1), sign)
    assert torch.equal(ours, theirs)


def test_dare_mask_statistics_and_rescale():
    n = 300_000
    mask = M.dare_mask("t", n, 0.7, 0)
    assert abs(mask.mean().item() - 0.7) < 0.005
    v = torch.ones(n)
    out = M.dare(v, 0.3, mask)
    assert out.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert abs(out.mean().item() - 1.0) < 0.01  # DARE preserves the expectation


def test_dare_mask_depends_only_on_seed_name_position():
    n = 3 * M.DARE_BLOCK + 123
    whole = M.dare_mask("layer.w", n, 0.5, 11)
    pieces = torch.cat([M.dare_mask("layer.w", n, 0.5, 11, s, min(s + 777_777, n)) for s in range(0, n, 777_777)])
    assert torch.equal(whole, pieces)
    assert not torch.equal(whole, M.dare_mask("layer.w", n, 0.5, 12))
    assert not torch.equal(whole, M.dare_mask("other.w", n, 0.5, 11))
    assert not torch.equal(whole, M.dare_mask("layer.w", n, 0.5, 11, model=1))


def test_linear_wise_ft_ptm_safety_hand_worked():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])
    assert torch.equal(M.weighted_average([a, b], [1.0, 3.0]), torch.tensor([2.5, 5.0]))
    assert torch.equal(M.weighted_average([a, b], [1.0, 3.0], normalize=False), torch.tensor([10.0, 20.0]))
    assert torch.equal(M.wise_ft(a, b, 0.25), torch.tensor([1.5, 3.0]))
    assert torch.equal(M.wise_ft(a, b, 0.0), a) and torch.equal(M.wise_ft(a, b, 1.0), b)
    g = torch.tensor([10.0, 10.0])
    assert torch.equal(M.ptm(g, [a, b], [0.5, 0.25]), torch.tensor([11.25, 12.5]))
    assert M.omega_heuristic(25_000, 100_000) == 0.25
    with pytest.raises(ValueError, match="sizes must be positive"):
        M.omega_heuristic(0, 10)
    harm = torch.tensor([0.1, -3.0, 2.0, 0.0])
    target = torch.zeros(4)
    assert torch.equal(M.safety_arithmetic(target, harm, 1.0), -harm)
    assert torch.equal(M.safety_arithmetic(target, harm, 0.5, density=0.5), torch.tensor([0.0, 1.5, -1.0, 0.0]))


@pytest.mark.parametrize("density", [0.0, 1e-6, 0.05, 0.5, 0.9, 1.0])
def test_streamed_topk_threshold_equals_kthvalue(density):
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(200_001, generator=g), torch.zeros(5000), torch.full((300,), 2.5)])
    sel = TopKSelector(x.numel(), density)
    passes = 0
    while sel.needs_pass():
        for block in x.split(65_537):
            sel.add(block)
        sel.end_pass()
        passes += 1
    expected = magnitude_threshold(x, density)
    assert sel.threshold == expected
    assert passes <= 2
    k = int(density * x.numel())
    if 0 < k < x.numel():
        assert (x.abs() > expected).sum() < k <= (x.abs() >= expected).sum()
    else:
        assert expected == (math.inf if k == 0 else 0.0)


# ----------------------------------------------------------------------------- LATA


def test_lata_ranks_and_weights_hand_worked():
    cos = {"layers.0": 0.9, "layers.1": 0.2, "layers.2": 0.5, "layers.3": 0.95}
    # most similar (layers.3) → rank 1 … least similar (layers.1) → rank L = 4
    assert M.lata_ranks(cos) == {"layers.3": 1, "layers.0": 2, "layers.2": 3, "layers.1": 4}
    assert M.lata_layer_weights(cos, "linear") == {"layers.3": 0.25, "layers.0": 0.5, "layers.2": 0.75, "layers.1": 1.0}
    log = M.lata_layer_weights(cos, "log")
    assert log["layers.3"] == 0.0 and log["layers.1"] == 1.0
    assert log["layers.0"] == pytest.approx(0.5) and log["layers.2"] == pytest.approx(math.log(3) / math.log(4))
    assert M.lata_layer_weights(cos, "threshold", sigma=0.9) == {"layers.0": 0.0, "layers.1": 1.0, "layers.2": 1.0, "layers.3": 0.0}
    # equal cosines: earlier layer gets the lower rank
    assert M.lata_ranks({"layers.0": 0.5, "layers.1": 0.5}) == {"layers.0": 1, "layers.1": 2}


def _sd(p):
    return Checkpoint(p).state_dict()


def test_lata_ties_adds_to_the_target_not_the_base(family):
    """With nothing trimmed and one model, TIES's disjoint mean is the vector itself: LATA+TIES = LATA+TA."""
    kw = dict(base=_sd(family["base"]), instruct=_sd(family["instruct"]))
    ta, _ = merge_state_dicts("lata", [_sd(family["math"])], params={"scheme": "linear"}, **kw)
    ties, _ = merge_state_dicts("lata", [_sd(family["math"])], params={"scheme": "linear", "combine": "ties"}, **kw)
    assert all(torch.allclose(ta[k], ties[k], atol=1e-6) for k in ta)
    forget, _ = merge_state_dicts("lata", [_sd(family["ua"])], target=_sd(family["code"]),
                                  model_params=[{"weight": -1.0}], params={"combine": "ties"}, **kw)
    code = _sd(family["code"])
    moved = [k for k in code if not torch.equal(forget[k], code[k])]
    assert moved and all(k.startswith("model.layers.") for k in moved)  # non-block groups dropped by default


# ----------------------------------------------------------------------------- M³


def test_pseries_hand_worked():
    assert M.pseries_lambdas(3, 1.0) == pytest.approx([6 / 11, 3 / 11, 2 / 11])
    assert M.pseries_lambdas(3, 0.0) == pytest.approx([1 / 3] * 3)
    assert M.pseries_lambdas(2, 2.0) == pytest.approx([0.8, 0.2])


@pytest.mark.parametrize("alpha", [0.2, 1.0, 5.0])
def test_beta_draws_follow_beta_alpha_alpha(alpha):
    draws = np.array([M.m3_beta_lambda(alpha, seed) for seed in range(4000)])
    assert abs(draws.mean() - 0.5) < 0.02
    assert abs(draws.var() - 1 / (4 * (2 * alpha + 1))) < 0.01
    middle = np.mean((draws > 0.1) & (draws < 0.9))
    if alpha < 1:
        assert middle < 0.6   # bimodal: mass near the axes of single task vectors
    if alpha > 1:
        assert middle > 0.95  # unimodal around the mean direction
    assert M.m3_beta_lambda(alpha, 3) == M.m3_beta_lambda(alpha, 3)
    assert M.m3_beta_lambda(alpha, 3) != M.m3_beta_lambda(alpha, 4)


def test_m3_ties_disjoint_interpolation_hand_worked():
    a = torch.tensor([2.0, 1.0, -3.0, 0.5])
    b = torch.tensor([4.0, -1.0, 1.0, 0.0])
    # no trim (density 1): signs elected [+, +(0 → +), -, +]; agree a [T, T, T, T]; b [T, F, F, F]
    out = M.m3_ties(torch.zeros(4), [a, b], [0.25, 0.75], scale=1.0)
    assert torch.allclose(out, torch.tensor([0.25 * 2 + 0.75 * 4, 1.0, -3.0, 0.5]))
    assert torch.allclose(M.m3_ties(torch.zeros(4), [a, b], [0.25, 0.75], scale=2.0), 2 * out)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_m3_ties_keeps_single_model_entries_at_extreme_lambda(lam):
    a = torch.tensor([2.0, 1.0, 0.0])
    b = torch.tensor([4.0, 0.0, 3.0])
    out = M.m3_ties(torch.zeros(3), [a, b], [lam, 1 - lam])
    assert torch.equal(out, torch.tensor([2.0 if lam == 1 else 4.0, 1.0, 3.0]))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_slice_sums_equal_torch_reductions_on_large_tensors(n):
    """The engine's loop sums (fast on CPU) give torch's dim-0 reduction's values on large blocks,
    where torch vectorises, so cached scores from before the change stay valid."""
    g = torch.Generator().manual_seed(n)
    stacked = torch.randn(n, 1 << 21, generator=g) * torch.logspace(-3, 3, n).view(-1, 1)
    weights = [0.3 * (i + 1) for i in range(n)]
    assert torch.equal(M._sum0(stacked), stacked.sum(dim=0))
    mask = stacked > 0
    assert torch.equal(M._sum0(mask), mask.sum(dim=0).float())
    reference = (stacked * torch.tensor(weights).view(-1, 1)).sum(dim=0)
    assert torch.equal(M._weighted_sum(list(stacked), weights), reference)
