"""A small, deterministic trainer for the mini zoo's Llama models (plain PyTorch).

Budgets are in optimiser steps, never wall-clock, so a busy machine produces the same bytes.
Batches are drawn from a generator seeded by the run's seed; the thread count is fixed by the
caller (``torch.set_num_threads``) because it can change float reduction order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from reprolib.zoo.tokenizer import END, chat_prompt, raw_prompt


@dataclass
class TrainStats:
    steps: int
    tokens: int
    flops: float          # 6 · parameters · trained tokens (forward + backward)
    seconds: float
    final_loss: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "tokens": self.tokens, "flops": self.flops, "seconds": round(self.seconds, 1),
                "tokens_per_s": round(self.tokens_per_s), "final_loss": round(self.final_loss, 4)}


def make_model(tokenizer, hidden: int = 128, layers: int = 8, heads: int = 4, ffn: int = 384,
               max_len: int = 256, seed: int = 0):
    """A Llama with tied embeddings, initialised from ``seed``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_len,
                      tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def token_stream(tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """All texts tokenised and joined with the end token, as one long id tensor."""
    end = tokenizer.convert_tokens_to_ids(END)
    ids: list[int] = []
    for ids_one in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(ids_one)
        ids.append(end)
    return torch.tensor(ids, dtype=torch.long)


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], chat: bool = True, max_len: int = 256) -> list[tuple[list[int], int]]:
    """(prompt, answer) → (ids, index where the answer starts); answer ends with the end token."""
    fmt = chat_prompt if chat else raw_prompt
    prompts = tokenizer([fmt(p) for p, _ in pairs], add_special_tokens=False)["input_ids"]
    answers = tokenizer([a + END for _, a in pairs], add_special_tokens=False)["input_ids"]
    return [((p + a)[:max_len], min(len(p), max_len)) for p, a in zip(prompts, answers)]


def _lr_at(step: int, steps: int, lr: float, warmup: int, schedule: str) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "cosine":
        progress = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    return lr


def train(model, tokenizer, *, steps: int, lr: float, seed: int, batch: int = 32, seq_len: int = 128,
          stream: torch.Tensor | None = None, pairs: list[tuple[list[int], int]] | None = None,
          replay_frac: float = 0.0, replay_len: int | None = None, warmup: int = 20, schedule: str = "constant", weight_decay: float = 0.0,
          desc: str = "train", progress: bool = True, extra_loss=None) -> TrainStats:
    """Train on LM windows of ``stream`` and/or answer-only SFT ``pairs``.

    With pairs, a fraction ``replay_frac`` of each batch's rows are windows of ``stream`` (replay of
    general text, loss on every token, ``replay_len`` tokens each, default ``seq_len``); the rest
    are SFT examples with loss on answer tokens only. Without pairs every row is a ``seq_len``
    stream window (pre-training).

    ``extra_loss(model, batch)`` (the training hook, e.g. τJp's regulariser) returns a scalar added
    to the language-model loss at every step; ``batch`` holds ``input_ids``, ``attention_mask``,
    ``labels`` and ``step``. Without it the loss, and the bytes trained, are exactly the plain ones.
    """
    if pairs is None and stream is None:
        raise ValueError("train: give a token stream, SFT pairs or both")
    g = torch.Generator().manual_seed(seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id  # masked out anyway
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    n_replay = 0 if pairs is None else int(round(batch * replay_frac))
    n_sft = 0 if pairs is None else batch - n_replay
    n_lm = batch if pairs is None else n_replay
    window_len = seq_len if pairs is None or replay_len is None else replay_len
    n_params = _params(model)
    model.train()
    tokens, loss_value, t0 = 0, float("nan"), time.perf_counter()
    for step in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        rows, labels = [], []
        if n_sft:
            for i in torch.randint(len(pairs), (n_sft,), generator=g).tolist():
                ids, start = pairs[i]
                rows.append(ids)
                labels.append([-100] * start + ids[start:])
        if n_lm:
            for s in torch.randint(len(stream) - window_len - 1, (n_lm,), generator=g).tolist():
                window = stream[s:s + window_len].tolist()
                rows.append(window)
                labels.append(window)
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        label_ids = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, (r, lab) in enumerate(zip(rows, labels)):
            input_ids[j, :len(r)] = torch.tensor(r)
            label_ids[j, :len(lab)] = torch.tensor(lab)
            mask[j, :len(r)] = 1
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, warmup, schedule)
        out = model(input_ids=input_ids, attention_mask=mask, labels=label_ids)
        loss = out.loss
        if extra_loss is not None:
            loss = loss + extra_loss(model, {"input_ids": input_ids, "attention_mask": mask, "labels": label_ids,
                                             "step": step})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int(mask.sum())
        loss_value = float(loss.detach())
    model.eval()
    return TrainStats(steps, tokens, 6.0 * n_params * tokens, time.perf_counter() - t0, loss_value)
