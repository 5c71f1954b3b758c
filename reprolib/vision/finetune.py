"""Fine-tuning a task on the vision zoo's θ0 in the paper's three regimes (seed 004, Sec. 4–5):

- ``nonlinear``: ordinary fine-tuning of the backbone (the head frozen);
- ``linear``: fine-tuning the linearised backbone f_lin(x; θ) = f(x; θ0) + (θ − θ0)·∇θ f(x; θ0) (Eq. 5);
- ``linear_taujp``: the same plus Eq. 10's penalty λ ‖(θ − θ0)·∇θ f(x_t; θ0)‖² on other tasks' inputs:
  one other task per step (``schedule="cyclical"``, Eq. 11, what the paper's experiments use) or every
  other task at every step (``"strict"``, Eq. 10), each on a batch of ``reg_batch`` of that task's
  images (the paper: 1/8 of the task batch for vision).

f is the **backbone** (the image encoder: its feature vector), as in Ortiz-Jimenez et al.'s
implementation the paper follows, which linearises CLIP's image encoder and applies the frozen
head after it. τJp and the penalty are therefore measured on features, independent of any head;
the logits a linearised classifier returns are the frozen head applied to f_lin (a linear head
commutes with the linearisation).

Each returns the task vector θ − θ0 over the backbone (the head is frozen and shared) and the loss
per step. Batches and the cycle are seeded: the same seed gives the same bytes.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from reprolib import taujp as T
from reprolib.vision.model import Classifier, TinyViT

REGIMES = ("nonlinear", "linear", "linear_taujp")
VERSION = 2          # bump when fine-tuning changes what it computes (the vision zoo's task vectors are rebuilt)
SCHEDULES = ("cyclical", "strict")


def finetune(backbone: TinyViT, head: nn.Linear, images: Tensor, labels: Tensor, regime: str, *, steps: int, lr: float,
             seed: int, batch: int = 32, others: list[Tensor] = (), penalty: float = 0.0, reg_batch: int = 4,
             schedule: str = "cyclical", batched: bool = True, init: dict[str, Tensor] | None = None,
             callback=None) -> tuple[dict[str, Tensor], list[float]]:
    """Fine-tune a copy of ``backbone`` on (images, labels) with ``head`` frozen; returns (τ, losses).

    ``batched``: the strict schedule's penalty as one JVP over every other task's batch (the same sum,
    :func:`reprolib.taujp.penalty`); False computes it task by task. ``init``: start from θ0 + init
    (continued training of an existing task vector, Fig. 3) instead of θ0. ``callback(step, τ)`` is
    called before the first step and after every step (τ detached), e.g. to trace a metric."""
    if regime not in REGIMES:
        raise ValueError(f"parameter 'regime' = {regime!r} is not one of {REGIMES}")
    if schedule not in SCHEDULES:
        raise ValueError(f"parameter 'schedule' = {schedule!r} is not one of {SCHEDULES}")
    if regime == "linear_taujp" and (not others or penalty <= 0):
        raise ValueError("regime 'linear_taujp' needs the other tasks' images ('others') and a 'penalty' > 0")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    encoder = copy.deepcopy(backbone).train()
    theta0 = {k: v.detach().clone() for k, v in encoder.named_parameters()}
    if regime != "nonlinear":
        encoder = T.LinearizedModel(encoder)
    if init is not None:
        init = T._check_tangent(theta0, init, "init")
        with torch.no_grad():
            trainable = encoder.named_parameters() if regime == "nonlinear" else encoder.theta.items()
            for k, v in trainable:
                v += init[k.replace("__", ".")]
    net = Classifier(encoder, copy.deepcopy(head))
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    # Eq. 11 over the others: this task is number len(others) of len(others) + 1, so the cycle visits 0 … len(others) − 1
    cycle = T.cyclical_tasks(len(others), len(others) + 1, steps) if regime == "linear_taujp" else None
    def task_vector():
        if regime == "nonlinear":
            return {k: v.detach() - theta0[k] for k, v in encoder.named_parameters()}
        return {k: v.detach() for k, v in encoder.task_vector().items()}

    losses = []
    if callback is not None:
        callback(0, task_vector())
    for step in range(steps):
        idx = torch.randint(0, len(images), (batch,), generator=generator)
        loss = nn.functional.cross_entropy(net(images[idx]), labels[idx])
        if cycle is not None:
            visit = [next(cycle)] if schedule == "cyclical" else range(len(others))
            picks = [others[t][torch.randint(0, len(others[t]), (reg_batch,), generator=generator)] for t in visit]
            loss = loss + penalty * T.penalty(encoder, picks, batched=batched)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(step + 1, task_vector())
    return task_vector(), losses


def finetune_mtl(backbone: TinyViT, heads: dict[str, nn.Linear], data: dict[str, tuple[Tensor, Tensor]], *, steps: int,
                 lr: float, seed: int, batch: int = 32) -> tuple[dict[str, Tensor], list[float]]:
    """Multi-task learning (Table 7's MTL): ordinary (non-linear) fine-tuning of one copy of ``backbone``
    on every task at once, each task's images scored by its own frozen head; each step draws ``batch``
    images of every task and minimises the mean of the tasks' losses, so every task sees as many
    examples as in its own fine-tuning with the same ``steps``. Returns (τ_MTL, losses)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    encoder = copy.deepcopy(backbone).train()
    theta0 = {k: v.detach().clone() for k, v in encoder.named_parameters()}
    opt = torch.optim.AdamW(encoder.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = torch.zeros(())
        for task, (images, labels) in data.items():
            idx = torch.randint(0, len(images), (batch,), generator=generator)
            loss = loss + nn.functional.cross_entropy(heads[task](encoder(images[idx])), labels[idx]) / len(data)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return {k: v.detach() - theta0[k] for k, v in encoder.named_parameters()}, losses
