"""The text track's model: the language zoo's base as a sentence encoder with frozen label-word heads.

:class:`TextEncoder` wraps the decoder body (``LlamaModel``) of the language zoo's base
``LlamaForCausalLM``, without its LM head: token ids [B, L] right-padded with ``PAD`` (−1) →
features [B, hidden], the **final hidden state after the last RMSNorm at each example's last real
token**, the state the LM reads its next-token prediction from. Attention is causal, so a position
never sees the padding to its right: the features of a padded row equal those of the row alone, and
no attention mask is needed (the padding is fed as token 0 and ignored). Attention is eager
(softmax(QKᵀ/√d)V written out: :func:`reprolib.taujp.forward_ad_ready`), so forward-mode AD (the
JVPs of τJp and of the linearised model) runs through it.

:func:`label_heads` builds one frozen ``nn.Linear(hidden, 2)`` per task whose rows are copies of the
LM's output-embedding rows of the task's label words (tied to the input embedding in the zoo's
models), the bias zero: at θ0 a head's logits are exactly the base LM's next-token logits restricted
to the label words, the analogue of CLIP's zero-shot text heads. A label word of several tokens is
represented by its **first** token as it follows the prompt's final newline; two labels of a task
must differ in that token. The heads are copies: fine-tuning the embedding (part of the encoder, so
of every task vector) never moves them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from reprolib import taujp as T

PAD = -1            # the padding id of the text tasks' arrays (never a real token id)


class TextEncoder(nn.Module):
    """A causal LM's decoder body as an encoder: ids [B, L] (right-padded with −1) → the normed final
    hidden state at each row's last real token, [B, hidden]."""

    def __init__(self, causal_lm: nn.Module):
        super().__init__()
        T.forward_ad_ready(causal_lm)
        self.model = causal_lm.model                  # LlamaModel: embeddings, blocks, final norm
        self.config = causal_lm.config
        self.dim = causal_lm.config.hidden_size
        # the LM head's rows (a copy, not a parameter of the encoder): what the label heads are made of
        self.output_embedding = causal_lm.get_output_embeddings().weight.detach().clone()

    def forward(self, ids: Tensor) -> Tensor:
        real = ids != PAD
        lengths = real.sum(-1)
        if bool((lengths == 0).any()):
            raise ValueError("TextEncoder: a row holds no token (every id is the padding −1)")
        if bool((real[:, 1:] & ~real[:, :-1]).any()):
            raise ValueError("TextEncoder: padding (−1) must be on the right of each row")
        hidden = self.model(input_ids=ids.clamp_min(0), use_cache=False).last_hidden_state
        return hidden[torch.arange(len(ids), device=ids.device), lengths - 1]


def load_encoder(folder) -> TextEncoder:
    """The encoder of the HF folder ``folder`` (float32, eval mode, eager attention, from safetensors)."""
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True,
                                              attn_implementation="eager")
    return TextEncoder(lm).eval()


def label_token(tokenizer, word: str) -> int:
    """The id of ``word``'s first token as it follows a newline (the prompt's last token)."""
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    ids = tokenizer("\n" + word, add_special_tokens=False)["input_ids"]
    if ids[:len(newline)] != newline or len(ids) == len(newline):
        raise ValueError(f"label word {word!r} does not tokenise after a newline as expected ({ids})")
    return ids[len(newline)]


def label_heads(encoder: TextEncoder, tokenizer, label_words: Mapping[str, Sequence[str]]) -> dict[str, nn.Linear]:
    """{task: frozen head}: class c's row is the output-embedding row of the task's label word c."""
    embedding = encoder.output_embedding
    heads = {}
    for task, words in label_words.items():
        ids = [label_token(tokenizer, w) for w in words]
        if len(set(ids)) != len(ids):
            raise ValueError(f"task {task!r}: label words {list(words)} share their first token {ids}")
        head = nn.Linear(encoder.dim, len(ids))
        with torch.no_grad():
            head.weight.copy_(embedding[ids])
            head.bias.zero_()
        heads[task] = head.requires_grad_(False)
    return heads
