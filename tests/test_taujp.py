"""τJp (issue 14, part 1 groundwork): the JVP against explicit per-parameter gradients, the linearised
model against f and a finite difference, the regulariser, the cyclical schedule, the
disentanglement error, bad input, and memory on a 10M-parameter model."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from reprolib import taujp as T


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4)).double()


def _direction(params, seed: int, scale: float = 0.1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: scale * torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()}


def _brute_force_jvp(model, params0, tangent, x) -> torch.Tensor:
    """τ·∇θ f(x; θ0) from explicit gradients: for every example and output, ∂f/∂θ by autograd, dotted with τ."""
    out = torch.zeros(x.shape[0], 4, dtype=torch.float64)
    for i in range(x.shape[0]):
        for k in range(4):
            params = {n: p.clone().requires_grad_(True) for n, p in params0.items()}
            y = torch.func.functional_call(model, params, (x[i:i + 1],))[0, k]
            grads = torch.autograd.grad(y, list(params.values()))
            out[i, k] = sum((g * tangent[n]).sum() for g, n in zip(grads, params))
    return out


def test_jvp_and_taujp_equal_the_brute_force_computation():
    model = _mlp()
    p0 = T.params_of(model)
    tau_a, tau_b = _direction(p0, 1), _direction(p0, 2)
    x_a, x_b = torch.randn(6, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    out, change = T.jvp(model, p0, tau_a, x_b)
    assert torch.allclose(out, model(x_b))
    brute_ab, brute_ba = _brute_force_jvp(model, p0, tau_a, x_b), _brute_force_jvp(model, p0, tau_b, x_a)
    assert torch.allclose(change, brute_ab, atol=1e-5)
    expected = 0.5 * (brute_ab.pow(2).sum(-1).mean() + brute_ba.pow(2).sum(-1).mean())
    assert T.taujp(model, p0, tau_a, tau_b, x_a, x_b) == pytest.approx(float(expected), abs=1e-5)
    summed = 0.5 * (brute_ab.pow(2).sum() + brute_ba.pow(2).sum())
    assert T.taujp(model, p0, tau_a, tau_b, x_a, x_b, reduction="sum") == pytest.approx(float(summed), abs=1e-5)
    zero = {k: torch.zeros_like(v) for k, v in p0.items()}
    assert T.taujp(model, p0, zero, zero, x_a, x_b) == 0.0


def test_the_linearised_model_is_f_at_theta0_and_its_first_order_expansion():
    model = _mlp(3)
    lin = T.LinearizedModel(model).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    assert torch.allclose(lin(x), model(x))                       # θ = θ0
    d = _direction(lin.params0, 4, scale=1.0)
    eps = 1e-6
    with torch.no_grad():
        for k, v in lin.params0.items():
            lin.theta[k.replace(".", "__")].copy_(v + eps * d[k])
        moved = {k: v + eps * d[k] for k, v in lin.params0.items()}
        f_moved = torch.func.functional_call(model, moved, (x,))
        finite_difference = (f_moved - model(x)) / eps
        assert torch.allclose((lin(x) - model(x)) / eps, finite_difference, atol=1e-5)
        # far from θ0 the linear model departs from f (the expansion is first order only)
        for k, v in lin.params0.items():
            lin.theta[k.replace(".", "__")].copy_(v + d[k])
        assert not torch.allclose(lin(x), torch.func.functional_call(model, {k: v + d[k] for k, v in lin.params0.items()}, (x,)),
                                  atol=1e-3)


def test_penalty_is_zero_at_theta0_and_trains_the_task_vector():
    model = _mlp(5)
    lin = T.LinearizedModel(model).double()
    others = [torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)]
    assert float(T.penalty(lin, others).detach()) == 0.0
    with torch.no_grad():
        for k, v in lin.params0.items():
            lin.theta[k.replace(".", "__")].add_(0.1 * torch.randn_like(v))
    before = float(T.penalty(lin, others).detach())
    assert [p.requires_grad for p in lin.parameters()].count(True) == len(lin.params0)   # θ only; f's weights stay θ0
    opt = torch.optim.SGD(lin.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        loss = T.penalty(lin, others)
        loss.backward()
        assert all(p.grad is not None for p in lin.theta.parameters())
        opt.step()
    assert float(T.penalty(lin, others).detach()) < 0.5 * before


def test_cyclical_penalty_visits_every_other_task_once_per_cycle():
    visits = list(T.cyclical_tasks(task=2, n_tasks=8, steps=21))
    cycle = 7
    for start in range(0, 21, cycle):
        assert sorted(visits[start:start + cycle]) == [0, 1, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="no other task"):
        next(T.cyclical_tasks(0, 1, 1))


def test_disentanglement_error_is_zero_for_separate_tasks_and_counts_disagreements():
    model = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.eye(2, dtype=torch.float64))
    p0 = T.params_of(model)

    def predict(params, x):
        return torch.func.functional_call(model, params, (x,)).argmax(-1)

    x_a, x_b = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    # τ_A only moves what x_A sees (column 0), τ_B only column 1: disentangled
    tau_a = {"weight": torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)}
    tau_b = {"weight": torch.tensor([[0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)}
    grid = T.disentanglement_error(predict, p0, tau_a, tau_b, x_a, x_b, [0.0, 1.0])
    assert [r["error"] for r in grid] == [0.0, 0.0, 0.0, 0.0]
    assert T.taujp(model, p0, tau_a, tau_b, x_a, x_b) == 0.0
    # τ_B now also flips x_A's prediction when both are added: one disagreement at (1, 1)
    tau_b = {"weight": torch.tensor([[0.0, 2.0], [-3.0, 0.0]], dtype=torch.float64)}
    grid = {(r["alpha_a"], r["alpha_b"]): r["error"] for r in T.disentanglement_error(predict, p0, tau_a, tau_b, x_a, x_b, [0.0, 1.0])}
    assert grid[(1.0, 1.0)] == 1.0 and grid[(0.0, 0.0)] == 0.0
    assert T.taujp(model, p0, tau_a, tau_b, x_a, x_b) > 0


def test_bad_task_vectors_are_refused_by_name():
    model = _mlp()
    p0 = T.params_of(model)
    x = torch.randn(2, 5, dtype=torch.float64)
    wrong = dict(_direction(p0, 1))
    wrong["0.weight"] = torch.zeros(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"tau_a: tensor '0.weight' has shape \(3, 3\)"):
        T.taujp(model, p0, wrong, _direction(p0, 2), x, x)
    missing = dict(_direction(p0, 1))
    del missing["2.bias"]
    with pytest.raises(ValueError, match=r"tau_b: tensors do not match .*missing \['2.bias'\]"):
        T.taujp(model, p0, _direction(p0, 1), missing, x, x)
    with pytest.raises(ValueError, match="reduction"):
        T.taujp(model, p0, _direction(p0, 1), _direction(p0, 2), x, x, reduction="max")


MEMORY_SCRIPT = r"""
import resource, torch
from torch import nn
from reprolib import taujp as T
torch.manual_seed(0)
torch.set_num_threads(2)
model = nn.Sequential(nn.Linear(256, 1792), nn.GELU(), nn.Linear(1792, 1792), nn.GELU(), nn.Linear(1792, 1792),
                      nn.GELU(), nn.Linear(1792, 1792), nn.GELU(), nn.Linear(1792, 10))
n = sum(p.numel() for p in model.parameters())
p0 = T.params_of(model)
tau_a = {k: 0.01 * torch.randn_like(v) for k, v in p0.items()}
tau_b = {k: 0.01 * torch.randn_like(v) for k, v in p0.items()}
value = T.taujp(model, p0, tau_a, tau_b, torch.randn(64, 256), torch.randn(64, 256))
print(n, value, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_taujp_on_a_10m_parameter_model_stays_under_2_gb():
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=300, check=True)
    n_params, value, peak_kib = out.stdout.split()
    assert int(n_params) >= 10_000_000 and float(value) > 0
    assert int(peak_kib) * 1024 < 2 * 1024 ** 3, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"


def test_taujp_runs_on_an_hf_llama_with_its_attention_switched_to_eager(tied_family):
    """Fused attention kernels have no forward-mode derivative: the model is switched to eager
    attention, which gives the same logits, and the JVP still equals a finite difference."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tied_family["base"], dtype=torch.float32, attn_implementation="sdpa").eval()
    x = torch.randint(0, model.config.vocab_size, (2, 6))
    with torch.no_grad():
        before = model(x).logits
    p0 = T.params_of(model)
    experts = [AutoModelForCausalLM.from_pretrained(tied_family[n], dtype=torch.float32) for n in ("math", "code")]
    tau_a, tau_b = ({k: dict(e.named_parameters())[k].detach() - v for k, v in p0.items()} for e in experts)
    value = T.taujp(model, p0, tau_a, tau_b, x, x)
    assert model.config._attn_implementation == "eager" and value > 0
    with torch.no_grad():
        assert torch.allclose(model(x).logits, before, atol=1e-5)
        _, change = T.jvp(model, p0, tau_a, x)
        eps = 1e-3
        moved = torch.func.functional_call(model, {k: v + eps * tau_a[k] for k, v in p0.items()}, (x,)).logits
        assert torch.allclose((moved - before) / eps, change, atol=2e-2, rtol=1e-2)
