"""A small byte-level BPE tokenizer for the mini zoo, with a chat template.

Byte-level BPE (vocabulary ~1K) makes small numbers and common words single tokens, which the
measured zoo notes found learns much faster than characters. The chat format is::

    <|user|>
    {prompt}<|end|>
    <|assistant|>
    {answer}<|end|>
"""

from __future__ import annotations

from typing import Iterable

USER, ASSISTANT, END, PAD = "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, END, USER, ASSISTANT]
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|>\n{{ m['content'] }}<|end|>\n"
    "{% elif m['role'] == 'assistant' %}<|assistant|>\n{{ m['content'] }}<|end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def chat_prompt(prompt: str) -> str:
    """The text a chat model sees before it answers."""
    return f"{USER}\n{prompt}{END}\n{ASSISTANT}\n"


def raw_prompt(prompt: str) -> str:
    """The plain ``prompt\\nanswer`` format of pre-training text."""
    return f"{prompt}\n"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """Train a byte-level BPE on ``texts``; return a ``transformers.PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=END, bos_token=None,
                                   unk_token=None, additional_special_tokens=[USER, ASSISTANT])
    fast.chat_template = CHAT_TEMPLATE
    return fast
