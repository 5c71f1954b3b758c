"""Four generated binary text-classification tasks for the τJp chapter's text track (seed 004,
Tables 3 and 8: task addition on GLUE's MRPC, RTE, CoLA and SST-2 with T5-small).

Ours stand in for the *kinds* of the GLUE tasks, built offline from the language zoo's word lists
(names, items, adjectives), so the base has seen every word but never these tasks. They are sized
to what the mini zoo's 1M-parameter base learns in ~100 fine-tuning steps: pairs whose only
difference is one item that must be compared across sentences stayed at chance for 150 steps
(measured), so MRPC and RTE mix such pairs with pairs carrying a lexical cue (a denial):

=======  ==================================================================================  =================================
task     an example                                                                          label words (class 0, class 1)
=======  ==================================================================================  =================================
mrpc     paraphrase: two sentences about one hand-over ("Ava gave Ben 3 apples." / "Ben got   ``not_equivalent``, ``equivalent``
         3 apples from Ava."); not equivalent when the second changes the item or denies it
rte      entailment: a premise of one possession, a hypothesis about it; entailed when it      ``entailment``, ``not_entailment``
         follows ("has some apples"), not when the item differs or it is denied ("has no …")
cola     acceptability of a short sentence; unacceptable ones break agreement, number,         ``unacceptable``, ``acceptable``
         word order or drop the verb
sst2     sentiment of a review sentence, with negation ("was not dull" is positive) and        ``negative``, ``positive``
         contrast ("… was dull, but the soup was superb" follows the last clause)
=======  ==================================================================================  =================================

The label words are T5's label strings for these GLUE tasks; the heads read each word's first token
(``reprolib.text.model.label_heads``). CoLA and SST-2 use the instruction lines of the zoo's own
``acceptability`` / ``sentiment`` pre-training text (other sentence families), so the base holds a
weak prior there, as T5 does; MRPC and RTE are new to it.

A prompt is ``"<fields>\\n<question>\\n"``: the features are read at its final newline, where the
pre-training text ``prompt\\nanswer`` puts the answer's first token.

:func:`make_texts` → (prompts, labels); :func:`make_task` → (token ids int64 [n, L] right-padded
with −1, labels int64 [n]), tokenised with the language zoo's tokenizer (``add_special_tokens=False``).
Labels alternate 0, 1, 0, … (balanced). Splits ``train`` / ``val`` / ``test`` are fixed by a hash of
each item's identity (its text): one in five items is test, one in five of the rest val
(:func:`split_of`), so no test or validation prompt is ever trained on, whatever ``n`` and ``seed``.
Each (task, split, seed) draws from its own random stream: the same arguments give the same bytes.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from reprolib.zoo.data import ITEMS, NAMES, NEGATIVE, POSITIVE, SUBJECTS, _draw, _held_out

TASKS = {"mrpc": 2, "rte": 2, "cola": 2, "sst2": 2}
LABEL_WORDS = {"mrpc": ("not_equivalent", "equivalent"), "rte": ("entailment", "not_entailment"),
               "cola": ("unacceptable", "acceptable"), "sst2": ("negative", "positive")}
SPLITS = ("train", "val", "test")
MAX_TOKENS = 96      # a longer prompt is an error, not truncated (the mini tokenizer: ≤ 41 tokens; tiny's splits more, ≤ 72)
PAD = -1


def split_of(*identity: object) -> str:
    """An item's split: ``test`` for one identity in five (the zoo's ``_held_out`` hash), ``val`` for
    one in five of the rest (a second hash), else ``train``."""
    if _held_out(*identity):
        return "test"
    return "val" if _held_out("val", *identity) else "train"


def _stream_seed(task: str, split: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"text:{task}:{split}:{seed}".encode()).digest()[:8], "little")


def _balanced(n: int, seed: int, split: str, task: str, make) -> list[tuple[str, int]]:
    """n (prompt, label) of ``split``, labels alternating 0, 1, …: ``make(rng, label)`` proposes an
    item of that label (or None), kept when its prompt belongs to ``split``."""
    state = {"count": 0}

    def draw(rng: random.Random):
        label = state["count"] % 2
        prompt = make(rng, label)
        if prompt is None or split_of(task, prompt) != split:
            return None
        state["count"] += 1
        return prompt, label

    return _draw(n, _stream_seed(task, split, seed), draw)


# ----------------------------------------------------------------------------- mrpc (paraphrase)

# one hand-over (giver g, receiver r, count k, item it) in five wordings, and five that deny it
HANDOVERS = ["{g} gave {r} {k} {it}.", "{g} handed {k} {it} to {r}.", "{r} got {k} {it} from {g}.",
             "{r} received {k} {it} from {g}.", "{k} {it} went from {g} to {r}."]
DENIALS = ["{g} did not give {r} {k} {it}.", "{g} never handed {k} {it} to {r}.", "{r} got no {it} from {g}.",
           "{r} did not receive {k} {it} from {g}.", "No {it} went from {g} to {r}."]


def _mrpc(rng: random.Random, label: int) -> str:
    """Equivalent: the same hand-over in another wording. Not equivalent: another wording of it with
    another item, or a denial of it (half each): the item needs comparing across the sentences, the
    denial has a lexical cue, as real paraphrase data mixes both."""
    g, r = rng.sample(NAMES, 2)
    k, (it, other) = rng.randint(2, 9), rng.sample(ITEMS, 2)
    i, j = rng.sample(range(len(HANDOVERS)), 2)
    first = HANDOVERS[i].format(g=g, r=r, k=k, it=it)
    if label == 1:
        second = HANDOVERS[j].format(g=g, r=r, k=k, it=it)
    elif rng.random() < 0.5:
        second = HANDOVERS[j].format(g=g, r=r, k=k, it=other)
    else:
        second = DENIALS[j].format(g=g, r=r, k=k, it=it)
    return f"{first}\n{second}\nSame meaning?\n"


# ----------------------------------------------------------------------------- rte (entailment)

def _rte(rng: random.Random, label: int) -> str:
    """Premise: one possession. Entailed: "has some <its item>" or "has <its count> <its item>". Not
    entailed: "has some <another item>" (needs comparing) or "has no <its item>" (a contradiction cue)."""
    a = rng.choice(NAMES)
    k, (it, other) = rng.randint(2, 9), rng.sample(ITEMS, 2)
    verb = rng.choice(["has", "keeps", "owns"])
    if label == 0:
        hypothesis = rng.choice([f"{a} has some {it}.", f"{a} has {k} {it}."])
    else:
        hypothesis = rng.choice([f"{a} has some {other}.", f"{a} has no {it}."])
    return f"Premise: {a} {verb} {k} {it}.\nHypothesis: {hypothesis}\nDoes it follow?\n"


# ----------------------------------------------------------------------------- cola (acceptability)

VERBS = [("likes", "like"), ("buys", "buy"), ("counts", "count"), ("finds", "find"), ("keeps", "keep")]


def _cola_sentence(rng: random.Random) -> list[str]:
    """A well-formed sentence as a word list (final full stop separate)."""
    n, m = rng.sample(NAMES, 2)
    sing, plur = rng.choice(VERBS)
    it, k = rng.choice(ITEMS), rng.randint(2, 9)
    frame = rng.randrange(4)
    if frame == 0:
        words = [n, "and", m, plur, "the", it]
    elif frame == 1:
        words = [n, sing, str(k), it]
    elif frame == 2:
        words = ["The", it, "are", "on", "the", "table"]
    else:
        words = [n, "gave", m, "the", it, "today"]
    return words + ["."]


def _cola(rng: random.Random, label: int) -> str:
    """Unacceptable: one corruption of a well-formed sentence — verb agreement ("Ava like 3 apples"),
    number after a numeral or before "are" ("Ava likes 3 apple"), two neighbouring words swapped, or
    the verb dropped."""
    words = _cola_sentence(rng)
    if label == 0:
        verbs = {**dict(VERBS), **{p: s for s, p in VERBS}, "are": "is", "gave": "give"}
        body = words[:-1]
        v = next(i for i, w in enumerate(body) if w in verbs)
        it = next(i for i, w in enumerate(body) if w in ITEMS)
        countable = body[it - 1].isdigit() or (it + 1 < len(body) and body[it + 1] == "are")
        kind = rng.choice(["agree", "number", "order", "drop"] if countable else ["agree", "order", "drop"])
        if kind == "agree":
            body[v] = verbs[body[v]]
        elif kind == "number":
            body[it] = body[it][:-1]                     # "3 apples" → "3 apple", "apples are" → "apple are"
        elif kind == "order":
            i = rng.randrange(1, len(body) - 1)
            body[i], body[i + 1] = body[i + 1], body[i]
        else:
            del body[v]
        words = body + ["."]
    sentence = " ".join(words[:-1]) + "."
    return f"Sentence: {sentence}\nIs this sentence acceptable or unacceptable?\n"


# ----------------------------------------------------------------------------- sst2 (sentiment)

def _sst2(rng: random.Random, label: int) -> str:
    good, bad = rng.choice(POSITIVE), rng.choice(NEGATIVE)
    s, s2 = rng.sample(SUBJECTS, 2)
    name = rng.choice(NAMES)
    frame = rng.randrange(4)
    if frame == 0:                                   # plain
        sentence = f"{name} said the {s} was {good if label else bad}."
    elif frame == 1:                                 # negated: "not dull" is positive
        sentence = f"The {s} was not {bad if label else good}."
    elif frame == 2:                                 # contrast: the last clause decides
        first, last = (bad, good) if label else (good, bad)
        sentence = f"The {s} was {first}, but the {s2} was {last}."
    else:                                            # intensified
        sentence = f"{name} thought the {s} was really {good if label else bad}."
    return f"Sentence: {sentence}\nIs the sentiment positive or negative?\n"


GENERATORS = {"mrpc": _mrpc, "rte": _rte, "cola": _cola, "sst2": _sst2}


def _check(task: str, split: str, n: int) -> None:
    from reprolib.vision.tasks import check_request

    check_request("text", task, TASKS, split, SPLITS, n)


def make_texts(task: str, n: int, seed: int = 0, split: str = "train") -> tuple[list[str], np.ndarray]:
    """``n`` prompts of ``task`` from ``split`` and their labels (int64, alternating 0, 1)."""
    _check(task, split, n)
    items = _balanced(n, seed, split, task, GENERATORS[task])
    return [p for p, _ in items], np.array([y for _, y in items], dtype=np.int64)


def encode(tokenizer, prompts: list[str]) -> np.ndarray:
    """Token ids int64 [n, L] (L the longest prompt), right-padded with −1; no special tokens."""
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    longest = max(len(x) for x in ids)
    if longest > MAX_TOKENS:
        raise ValueError(f"a prompt has {longest} tokens, more than MAX_TOKENS = {MAX_TOKENS}: "
                         f"{prompts[max(range(len(ids)), key=lambda i: len(ids[i]))]!r}")
    out = np.full((len(ids), longest), PAD, dtype=np.int64)
    for i, x in enumerate(ids):
        out[i, :len(x)] = x
    return out


def make_task(task: str, n: int, seed: int = 0, split: str = "train", *, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples of ``task`` from ``split``: (token ids int64 [n, L] right-padded with −1, labels
    int64 [n]), tokenised with ``tokenizer`` (the language zoo's, e.g. ``TextZoo.tokenizer()``)."""
    prompts, labels = make_texts(task, n, seed, split)
    return encode(tokenizer, prompts), labels
