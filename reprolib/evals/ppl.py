"""Perplexity on held-out text with lm-eval's ``loglikelihood_rolling`` windows.

Every token is scored once; the first is predicted from a prefix token (the end token, as
lm-eval's HFLM uses the EOS when there is no BOS); each later window is a full ``max_len`` of
context ending at the tokens it predicts (``lm_eval.utils.get_rolling_token_windows`` with
``context_len=1``). ``tests/test_lmeval.py`` holds the totals equal to lm-eval's.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import torch

from reprolib.zoo.tokenizer import END


def rolling_windows(ids: list[int], prefix: int, max_len: int):
    """(input ids, number of predicted tokens at the end) per window, as lm-eval rolls them."""
    if not ids:
        return
    first = min(max_len, len(ids))
    yield [prefix] + ids[:first - 1], first
    done = first
    while done < len(ids):
        n = min(len(ids) - done, max_len)
        end = done + n
        yield ids[max(0, end - max_len - 1):end - 1], n
        done = end


@torch.no_grad()
def perplexity(model, tokenizer, texts: Sequence[str], max_len: int | None = None) -> tuple[float, list[dict]]:
    """Token-level perplexity exp(Σ NLL / Σ tokens) over ``texts``; records per text carry the
    NLL, token, byte and word counts (lm-eval's byte/word perplexity follow from them)."""
    model.eval()
    max_len = max_len or model.config.max_position_embeddings
    prefix = tokenizer.convert_tokens_to_ids(END)
    total_nll, total_tokens, records = 0.0, 0, []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        nll, done = 0.0, 0
        for window, n_pred in rolling_windows(ids, prefix, max_len):
            targets = torch.tensor(ids[done:done + n_pred])
            logits = model(input_ids=torch.tensor([window])).logits.float()[0, -n_pred:]
            nll += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
            done += n_pred
        total_nll += nll
        total_tokens += len(ids)
        records.append({"text": text[:80], "tokens": len(ids), "nll": nll, "bytes": len(text.encode()),
                        "words": len(re.split(r"\s+", text))})
    return math.exp(total_nll / max(total_tokens, 1)), records
