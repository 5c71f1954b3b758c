"""Causal-LM fine-tuning of an HF language model in the τJp paper's three regimes (seed 004, Sec. 4.2,
B.1), the language counterpart of ``reprolib.vision.finetune``:

- ``nonlinear``: ordinary fine-tuning of every weight (Ilharco et al., 2023);
- ``linear``: fine-tuning the linearised LM f_lin(x; θ) = f(x; θ0) + (θ − θ0)·∇θ f(x; θ0), f = the
  logits (Eq. 3 / 5; Ortiz-Jimenez et al., 2023), :class:`LinearizedLM`;
- ``linear_taujp``: the same plus Eq. 10's penalty λ ‖(θ − θ0)·∇θ f(x_ctrl; θ0)‖² on control inputs
  x_ctrl (no labels). In the toxicity track the only other "task" is English prose (the control the
  perplexity reads), so T_orth has one member and Eq. 11's cyclical schedule visits it at every step.
  Each step draws ``reg_batch`` control windows of ``control_len`` tokens (the paper: 1/4 of the task
  batch for NLP); the squared norm is over every logit of a window, averaged over the windows
  (``reprolib.taujp.penalty``).

All three run through the zoo's trainer (``reprolib.zoo.train.train``: AdamW (0.9, 0.95), no weight
decay, clip 1, 20-step linear warm-up then a constant rate, batches from a generator seeded by
``seed``), the loss on every token of a text after the first (the texts are ``[EOS] text [EOS]``, EOS
standing in for the BOS the zoo's tokenizer lacks, as ``reprolib.evals.ppl`` does). Same seed, same
batches in every regime, same bytes on every run.
"""

from __future__ import annotations

import copy
import time
from types import SimpleNamespace
from typing import Sequence

import torch
from torch import Tensor, nn

from reprolib import taujp as T

REGIMES = ("nonlinear", "linear", "linear_taujp")


def causal_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token cross-entropy over the labelled positions (labels −100 are ignored), as HF's
    causal-LM loss: position t's logits predict label t + 1."""
    return nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                       ignore_index=-100)


class LinearizedLM(nn.Module):
    """An HF causal LM's linearisation (:class:`reprolib.taujp.LinearizedModel` over the logits) with
    the HF call signature the trainer uses: ``(input_ids, attention_mask, labels)`` → ``.logits``,
    ``.loss``. The attention mask is not passed on: the trainer pads on the right, and causal attention
    keeps padding from reaching the positions before it (padded positions carry no label)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.lin = T.LinearizedModel(T.forward_ad_ready(model))

    def task_vector(self) -> dict[str, Tensor]:
        return self.lin.task_vector()

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None):
        logits = self.lin(input_ids)
        return SimpleNamespace(logits=logits, loss=None if labels is None else causal_lm_loss(logits, labels))


def text_pairs(tokenizer, texts: Sequence[str], max_len: int = 128) -> list[tuple[list[int], int]]:
    """``[EOS] text [EOS]`` ids (cut at ``max_len``) with the loss from the first text token on: the
    trainer's (ids, start) pairs."""
    eos = tokenizer.eos_token_id
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [(([eos] + one + [eos])[:max_len], 1) for one in ids]


def control_windows(tokenizer, texts: Sequence[str], length: int) -> Tensor:
    """Every non-overlapping ``length``-token window of the texts joined by EOS (the penalty's inputs)."""
    from reprolib.zoo.train import token_stream

    stream = token_stream(tokenizer, texts)
    n = len(stream) // length
    if n < 1:
        raise ValueError(f"control texts give {len(stream)} tokens, fewer than one window of {length}")
    return stream[:n * length].reshape(n, length)


def finetune_lm(model: nn.Module, tokenizer, texts: Sequence[str], regime: str, *, steps: int, lr: float, seed: int,
                batch: int = 16, control: Tensor | None = None, penalty: float = 0.0, reg_batch: int = 4,
                max_len: int = 128, progress: bool = False) -> tuple[dict[str, Tensor], dict]:
    """Fine-tune a copy of ``model`` on ``texts`` (causal LM) in ``regime``; returns (τ = θ − θ0 over the
    model's named parameters, a record: ``first_loss``, ``final_loss`` (mean of the last 10 steps' task
    loss), ``penalty`` (mean of the last 10 steps' λ-weighted penalty, linear_taujp), ``seconds``,
    ``seconds_per_step``, ``tokens``). ``control``: the penalty's input windows (:func:`control_windows`)."""
    from reprolib.zoo.train import train

    if regime not in REGIMES:
        raise ValueError(f"parameter 'regime' = {regime!r} is not one of {REGIMES}")
    if regime == "linear_taujp" and (control is None or len(control) == 0 or penalty <= 0):
        raise ValueError("regime 'linear_taujp' needs control windows ('control') and a 'penalty' > 0")
    torch.manual_seed(seed)
    net = copy.deepcopy(model)
    theta0 = {k: v.detach().clone() for k, v in net.named_parameters()}
    if regime != "nonlinear":
        net = LinearizedLM(net)
    task_losses, penalties = [], []
    generator = torch.Generator().manual_seed(seed + 7_654_321)        # the control windows' draws

    def penalty_term(lin: LinearizedLM) -> Tensor:
        """λ ‖τ·∇θ f(x_ctrl; θ0)‖² on ``reg_batch`` control windows drawn for this step (Eq. 10 / 11)."""
        x = control[torch.randint(0, len(control), (reg_batch,), generator=generator)]
        value = penalty * T.penalty(lin.lin, [x])
        penalties.append(float(value.detach()))
        return value

    class Recording(nn.Module):                      # the trainer's model: records each step's task loss
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **kw):
            out = self.inner(**kw)
            task_losses.append(float(out.loss.detach()))
            return out

    wrapped = Recording(net)
    hook = (lambda m, _batch: penalty_term(m.inner)) if regime == "linear_taujp" else None
    t0 = time.perf_counter()
    stats = train(wrapped, tokenizer, steps=steps, lr=lr, seed=seed, batch=batch, pairs=text_pairs(tokenizer, texts, max_len),
                  desc=f"toxicity {regime}", progress=progress, extra_loss=hook)
    seconds = time.perf_counter() - t0
    if regime == "nonlinear":
        tau = {k: v.detach() - theta0[k] for k, v in net.named_parameters()}
    else:
        tau = {k: v.detach().clone() for k, v in net.task_vector().items()}
    tail = lambda xs: float(sum(xs[-10:]) / max(len(xs[-10:]), 1)) if xs else None   # noqa: E731
    return tau, {"first_loss": task_losses[0], "final_loss": tail(task_losses), "penalty": tail(penalties),
                 "seconds": round(seconds, 2), "seconds_per_step": round(seconds / steps, 4), "tokens": stats.tokens}
