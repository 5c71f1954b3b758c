"""Perplexity on held-out text, by rolling windows (lm-eval's ``loglikelihood_rolling`` convention:
every token after the first is scored once, windows of the model's context length)."""

from __future__ import annotations

import math
from typing import Sequence

import torch


@torch.no_grad()
def perplexity(model, tokenizer, texts: Sequence[str], max_len: int = 128) -> tuple[float, list[dict]]:
    """Token-level perplexity exp(Σ NLL / Σ tokens) over ``texts``; records per text."""
    model.eval()
    total_nll, total_tokens, records = 0.0, 0, []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        nll, count = 0.0, 0
        for start in range(0, max(len(ids) - 1, 1), max_len):
            window = ids[start:start + max_len + 1]
            if len(window) < 2:
                break
            x = torch.tensor([window])
            logits = model(input_ids=x[:, :-1]).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="sum")
            nll += float(loss)
            count += len(window) - 1
        total_nll += nll
        total_tokens += count
        records.append({"text": text[:80], "tokens": count, "nll": nll})
    return math.exp(total_nll / max(total_tokens, 1)), records
