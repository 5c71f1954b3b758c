"""The training hook chapters use (τJp's regularised fine-tuning): fine-tune a role's checkpoint with
the zoo's trainer and an extra loss term.

Prompts are rendered with the tokenizer's own chat template and answers end with its EOS, so the
same call trains a zoo model (where this is byte-for-byte the zoo's SFT format) or a paper
checkpoint.
"""

from __future__ import annotations

from typing import Callable


def encode(tokenizer, pairs, max_len: int = 256) -> list[tuple[list[int], int]]:
    """(prompt, answer) → (ids, index where the answer starts), in the tokenizer's chat format."""
    from reprolib.evals.generate import render

    prompts = tokenizer([render(tokenizer, p) for p, _ in pairs], add_special_tokens=False)["input_ids"]
    answers = tokenizer([a + tokenizer.eos_token for _, a in pairs], add_special_tokens=False)["input_ids"]
    return [((p + a)[:max_len], min(len(p), max_len)) for p, a in zip(prompts, answers)]


def finetune(models, role: str, pairs, *, steps: int, lr: float, seed: int, extra_loss: Callable | None = None,
             batch: int = 32, progress: bool = True, **train_kw):
    """Fine-tune ``role`` on answer-only SFT ``pairs`` for ``steps`` optimiser steps, adding
    ``extra_loss(model, batch)`` to the loss at each step (see ``reprolib.zoo.train.train``).
    Returns (the trained float32 state dict, the training statistics)."""
    from reprolib.zoo.train import train

    model, tok = models.load(role), models.tokenizer(role)
    stats = train(model, tok, steps=steps, lr=lr, seed=seed, batch=batch, pairs=encode(tok, pairs),
                  extra_loss=extra_loss, progress=progress, **train_kw)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, stats
