"""Perplexity on held-out text with lm-eval's ``loglikelihood_rolling`` windows.

Every token is scored once; the first is predicted from a prefix token (the tokenizer's BOS, else
its EOS, as lm-eval's HFLM does); each later window is a full ``max_len`` of
context ending at the tokens it predicts (``lm_eval.utils.get_rolling_token_windows`` with
``context_len=1``). ``tests/test_lmeval.py`` holds the totals equal to lm-eval's.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import torch

from reprolib.errors import EvalError


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


def prefix_id(tokenizer) -> int:
    """The token the first text token is predicted from: BOS when the tokenizer has one, else EOS."""
    for i in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if i is not None:
            return i
    raise EvalError(f"tokenizer {getattr(tokenizer, 'name_or_path', '') or type(tokenizer).__name__!r} has neither "
                    "a BOS nor an EOS token to predict a text's first token from")


@torch.no_grad()
def perplexity(model, tokenizer, texts: Sequence[str], max_len: int | None = None) -> tuple[float, list[dict]]:
    """Token-level perplexity exp(Σ NLL / Σ tokens) over ``texts``; records per text carry the
    NLL, token, byte and word counts (lm-eval's byte/word perplexity follow from them) and the
    ``prompt_text`` the model saw (prefix token and text)."""
    model.eval()
    max_len = max_len or model.config.max_position_embeddings
    prefix = prefix_id(tokenizer)
    prefix_text = tokenizer.decode([prefix])
    total_nll, total_tokens, records = 0.0, 0, []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        nll, done = 0.0, 0
        for window, n_pred in rolling_windows(ids, prefix, max_len):
            targets = torch.tensor(ids[done:done + n_pred])
            logits = model(input_ids=torch.tensor([window], device=model.device)).logits.float()[0, -n_pred:]
            nll += float(torch.nn.functional.cross_entropy(logits, targets.to(logits.device), reduction="sum"))
            done += n_pred
        total_nll += nll
        total_tokens += len(ids)
        records.append({"text": text[:80], "prompt_text": prefix_text + text, "tokens": len(ids), "nll": nll,
                        "bytes": len(text.encode()), "words": len(re.split(r"\s+", text))})
    return math.exp(total_nll / max(total_tokens, 1)), records
