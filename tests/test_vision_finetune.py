"""Fine-tuning on the vision zoo's θ0 in the three regimes (τJp groundwork): the loss falls, the task
vector covers the backbone only, the same seed gives the same bytes, and the τJp penalty lowers the
τJp between the task vector and another task's inputs."""

from __future__ import annotations

import copy

import pytest
import torch

from reprolib import taujp as T
from reprolib.vision import tasks as V
from reprolib.vision.finetune import finetune, finetune_mtl
from reprolib.vision.model import Classifier
from reprolib.vision.zoo import VisionZoo


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    backbone, heads = VisionZoo("tiny", root=tmp_path_factory.mktemp("vz"), progress=False).pretrained()
    data = {t: tuple(map(torch.from_numpy, V.make_task(t, 96, 0, "train"))) for t in ("shapes", "digits", "textures")}
    return backbone, heads, data


@pytest.mark.parametrize("regime", ["nonlinear", "linear"])
def test_each_regime_learns_and_touches_the_backbone_only(start, regime):
    backbone, heads, data = start
    x, y = data["shapes"]
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    tau, losses = finetune(backbone, heads["shapes"], x, y, regime, steps=40, lr=3e-3, seed=0)
    assert sum(losses[-5:]) < sum(losses[:5])
    assert set(tau) == {k for k, _ in backbone.named_parameters()} and any(v.abs().sum() > 0 for v in tau.values())
    again, _ = finetune(backbone, heads["shapes"], x, y, regime, steps=40, lr=3e-3, seed=0)
    assert all(torch.equal(tau[k], again[k]) for k in tau)                  # same seed, same bytes
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())   # θ0 itself is left as it was


def test_the_taujp_penalty_lowers_taujp_with_the_other_tasks(start):
    backbone, heads, data = start
    x, y = data["shapes"]
    others = [data["digits"][0], data["textures"][0]]
    plain, _ = finetune(backbone, heads["shapes"], x, y, "linear", steps=40, lr=3e-3, seed=1)
    regular, _ = finetune(backbone, heads["shapes"], x, y, "linear_taujp", steps=40, lr=3e-3, seed=1, others=others,
                          penalty=10.0)
    model = Classifier(backbone, heads["digits"])
    p0 = T.params_of(model)
    zero = {k: torch.zeros_like(v) for k, v in p0.items()}

    def on_digits(tau):          # ‖τ·∇θ f(x_digits; θ0)‖² (the half of τJp that τ_shapes contributes)
        full = {**zero, **{f"backbone.{k}": v for k, v in tau.items()}}
        return 2 * T.taujp(model, p0, full, zero, x, data["digits"][0])

    assert on_digits(regular) < 0.5 * on_digits(plain)
    with pytest.raises(ValueError, match="needs the other tasks"):
        finetune(backbone, heads["shapes"], x, y, "linear_taujp", steps=1, lr=1e-3, seed=0)
    with pytest.raises(ValueError, match="'regime' = 'lora'"):
        finetune(backbone, heads["shapes"], x, y, "lora", steps=1, lr=1e-3, seed=0)


def test_the_strict_penalty_reads_every_other_task_each_step(start, monkeypatch):
    """Eq. 10 (strict) penalises every other task at every step, Eq. 11 (cyclical) one per step, in turn."""
    from reprolib.vision import finetune as F

    backbone, heads, data = start
    x, y = data["shapes"]
    others = [data["digits"][0], data["textures"][0], data["shapes"][0][:5]]
    seen = []
    real = F.T.penalty
    monkeypatch.setattr(F.T, "penalty", lambda lin, picks, batched: seen.append([len(p) for p in picks]) or real(lin, picks, batched))
    kw = dict(steps=4, lr=1e-3, seed=2, others=others, penalty=5.0, reg_batch=3)
    _, strict = finetune(backbone, heads["shapes"], x, y, "linear_taujp", schedule="strict", **kw)
    assert seen == [[3, 3, 3]] * 4
    seen.clear()
    _, cyclical = finetune(backbone, heads["shapes"], x, y, "linear_taujp", schedule="cyclical", **kw)
    assert seen == [[3]] * 4
    assert strict[0] == cyclical[0] and strict[1:] != cyclical[1:]     # at θ0 the penalty is 0; then they differ
    with pytest.raises(ValueError, match="'schedule' = 'often'"):
        finetune(backbone, heads["shapes"], x, y, "linear_taujp", schedule="often", **kw)


def test_the_batched_penalty_is_the_sum_of_the_per_task_penalties(start):
    """One JVP over the concatenated batches gives Eq. 10's sum of per-task means (value and gradient),
    also for batches of different sizes."""
    backbone, _, data = start
    lin = T.LinearizedModel(copy.deepcopy(backbone))      # it freezes the model it wraps
    with torch.no_grad():
        for v in lin.theta.values():
            v += 0.01 * torch.randn_like(v)
    xs = [data["digits"][0][:3], data["textures"][0][:5], data["shapes"][0][:4]]
    loop, batched = T.penalty(lin, xs), T.penalty(lin, xs, batched=True)
    assert torch.allclose(loop, batched, rtol=1e-5) and float(loop.detach()) > 0
    g_loop = torch.autograd.grad(loop, list(lin.theta.values()))
    g_batched = torch.autograd.grad(T.penalty(lin, xs, batched=True), list(lin.theta.values()))
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(g_loop, g_batched))


@pytest.mark.parametrize("regime", ["nonlinear", "linear"])
def test_continued_training_starts_from_the_given_task_vector(start, regime):
    backbone, heads, data = start
    x, y = data["shapes"]
    first, _ = finetune(backbone, heads["shapes"], x, y, regime, steps=5, lr=3e-3, seed=0)
    seen = []
    same, _ = finetune(backbone, heads["shapes"], x, y, regime, steps=0, lr=3e-3, seed=0, init=first,
                       callback=lambda step, tau: seen.append(step))
    assert all(torch.allclose(same[k], first[k], atol=1e-7) for k in first) and seen == [0]
    more, _ = finetune(backbone, heads["shapes"], x, y, regime, steps=3, lr=3e-3, seed=0, init=first,
                       callback=lambda step, tau: seen.append(step))
    assert seen == [0, 0, 1, 2, 3] and any(not torch.allclose(more[k], first[k]) for k in first)
    with pytest.raises(ValueError, match="init: tensor"):
        finetune(backbone, heads["shapes"], x, y, regime, steps=1, lr=1e-3, seed=0,
                 init={k: v[..., :1] for k, v in first.items()})


def test_multi_task_learning_learns_every_task_with_its_own_head(start):
    from reprolib.vision.arithmetic import Outputs

    backbone, heads, data = start
    tau, losses = finetune_mtl(backbone, heads, data, steps=40, lr=3e-3, seed=0, batch=16)
    again, _ = finetune_mtl(backbone, heads, data, steps=40, lr=3e-3, seed=0, batch=16)
    assert all(torch.equal(tau[k], again[k]) for k in tau)
    assert sum(losses[-5:]) < sum(losses[:5])
    out = Outputs(backbone, heads, {"mtl": tau}, data, linear=False)
    assert all(out.accuracy(t, {"mtl": 1.0}) > out.accuracy(t, {}) for t in data)   # on the training images
