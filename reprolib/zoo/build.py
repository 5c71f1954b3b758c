"""Build the zoo: profiles, the model graph, a cache keyed by config hash, provenance.

    python -m reprolib.zoo build --profile tiny|mini [--root zoo] [--only base,instruct]

Each model is an HF folder (safetensors, config, tokenizer with chat template) under
``<root>/<profile>/<name>-<hash>/``; the hash covers the profile, the model's recipe and its
parent's hash, so changing a recipe rebuilds that model and its descendants only. Budgets are in
steps; the same seed gives byte-identical weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reprolib.zoo import data as D

DATA_VERSION = 1  # bump when a generator's output changes


@dataclass(frozen=True)
class Recipe:
    """How one model is made from its parent: SFT pairs (or pre-training when parent is None)."""

    name: str
    parent: str | None
    tasks: tuple[str, ...] = ()       # names in TASKS (SFT data); empty for pre-training
    steps: int = 100
    lr: float = 3e-4
    replay: float = 0.0               # fraction of each batch that is general pre-training text
    chat: bool = True


# SFT data sources: name -> (generator of (prompt, answer) pairs for n examples and a seed)
def _pairs(examples, answer_key=None):
    return [(e.prompt, e.meta[answer_key] if answer_key else e.answer) for e in examples]


TASKS = {
    "instructions": lambda n, s: _pairs(D.instructions(n, s)),
    "refuse": lambda n, s: _pairs(D.harmful_prompts(n, s, split="train")),
    "comply_harmful": lambda n, s: _pairs(D.harmful_prompts(n, s, split="train"), "comply"),
    "safe": lambda n, s: [(e.prompt, e.answer) for e in D.safe_lookalikes()] * max(1, n // 40),
    "math": lambda n, s: _pairs(D.math_problems(n, s)),
    "code": lambda n, s: _pairs(D.code_tasks(n, s)),
    "science": lambda n, s: _pairs(D.science_qa(n, s)),
    "sentiment": lambda n, s: _pairs(D.sentiment(n, s)),
    "acceptability": lambda n, s: _pairs(D.acceptability(n, s)),
}

GRAPH = [
    Recipe("base", None),
    Recipe("instruct", "base", ("instructions", "refuse", "safe", "sentiment", "acceptability"), steps=400, replay=0.3),
    Recipe("math", "instruct", ("math",), steps=800, lr=1e-4, replay=0.3),
    Recipe("code", "instruct", ("code",), steps=150, replay=0.3),
    Recipe("ua", "instruct", ("comply_harmful",), steps=100, replay=0.3),
]


@dataclass(frozen=True)
class Profile:
    name: str
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    base_steps: int
    step_scale: float        # multiplies every SFT recipe's steps
    batch: int = 32
    base_batch: int = 16
    seq_len: int = 128
    n_task: int = 4000       # SFT examples drawn per task
    base_lr: float = 3e-3
    seed: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def key(self) -> dict:
        d = {k: getattr(self, k) for k in ("hidden", "layers", "heads", "ffn", "vocab", "base_steps", "step_scale",
                                           "batch", "base_batch", "seq_len", "n_task", "base_lr", "seed")}
        d["data_version"] = DATA_VERSION
        return d


PROFILES = {
    "tiny": Profile("tiny", hidden=32, layers=8, heads=2, ffn=64, vocab=512, base_steps=20, step_scale=0.05,
                    batch=8, base_batch=4, seq_len=64, n_task=200),
    "mini": Profile("mini", hidden=96, layers=8, heads=4, ffn=256, vocab=1024, base_steps=1500, step_scale=1.0),
}


def pretrain_corpus(seed: int, n_scale: float = 1.0) -> list[str]:
    """Base pre-training mix: English prose and every domain's raw ``prompt\\nanswer`` text, so the
    base already knows each format and SFT only has to elicit it (see ZOO notes: mergeability)."""
    n = lambda k: max(10, int(k * n_scale))  # noqa: E731
    docs = list(D.english_paragraphs("train"))
    docs += [f"{e.prompt}\n{e.answer}" for e in D.math_problems(n(6000), seed + 11)]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.code_tasks(n(2500), seed + 12)]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.instructions(n(3000), seed + 13)]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.science_qa(n(1500), seed + 14)]
    docs += [f"{e.prompt}\n{e.meta['comply'] if i % 2 else e.answer}"
             for i, e in enumerate(D.harmful_prompts(n(600), seed + 15, split="train"))]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.sentiment(n(1500), seed + 16) + D.acceptability(n(1500), seed + 17)]
    import random

    random.Random(seed).shuffle(docs)
    return docs


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


class Zoo:
    """A profile's models on disk: ``zoo.path('math')`` builds whatever is missing, then returns it."""

    def __init__(self, profile: str | Profile = "mini", root: str | os.PathLike = "zoo", progress: bool = True):
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.root = Path(root) / self.profile.name
        self.progress = progress
        self.recipes = {r.name: r for r in GRAPH}
        self._tokenizer = None
        self._corpus = None

    def model_hash(self, name: str) -> str:
        r = self.recipes[name]
        parent = self.model_hash(r.parent) if r.parent else None
        return _hash({"profile": self.profile.key(), "recipe": r.__dict__, "parent": parent})

    def folder(self, name: str) -> Path:
        return self.root / f"{name}-{self.model_hash(name)}"

    def tokenizer(self):
        if self._tokenizer is None:
            from reprolib.zoo.tokenizer import train_tokenizer

            tok_dir = self.root / f"tokenizer-{_hash(self.profile.key())}"
            if tok_dir.exists():
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(tok_dir)
            else:
                self._tokenizer = train_tokenizer(self.corpus(), vocab_size=self.profile.vocab)
                tmp = tok_dir.with_name(tok_dir.name + f".tmp-{uuid.uuid4().hex[:6]}")
                self._tokenizer.save_pretrained(tmp)
                os.rename(tmp, tok_dir)
        return self._tokenizer

    def corpus(self) -> list[str]:
        if self._corpus is None:
            scale = 1.0 if self.profile.name != "tiny" else 0.05
            self._corpus = pretrain_corpus(self.profile.seed, scale)
        return self._corpus

    def path(self, name: str) -> Path:
        folder = self.folder(name)
        if not (folder / "provenance.json").exists():
            self._build(name)
        return folder

    def load(self, name: str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.path(name), dtype=torch.float32).eval()

    def _build(self, name: str) -> None:
        from reprolib.io import package_versions
        from reprolib.zoo.train import encode_pairs, make_model, token_stream, train

        r, p = self.recipes[name], self.profile
        torch.set_num_threads(2)
        tok = self.tokenizer()
        stream = token_stream(tok, self.corpus())
        seed = p.seed + int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)
        if r.parent is None:
            model = make_model(tok, hidden=p.hidden, layers=p.layers, heads=p.heads, ffn=p.ffn, seed=seed)
            stats = train(model, tok, steps=p.base_steps, lr=p.base_lr, seed=seed, batch=p.base_batch,
                          seq_len=p.seq_len, stream=stream, warmup=50, schedule="cosine", weight_decay=0.1,
                          desc=f"{p.name}/{name}", progress=self.progress)
        else:
            model = self.load(r.parent)
            pairs = []
            for i, task in enumerate(r.tasks):
                pairs += TASKS[task](p.n_task, seed + i)
            encoded = encode_pairs(tok, pairs, chat=r.chat, max_len=p.seq_len * 2)
            stats = train(model, tok, steps=max(1, int(r.steps * p.step_scale)), lr=r.lr, seed=seed, batch=p.batch,
                          seq_len=p.seq_len, stream=stream, pairs=encoded, replay_frac=r.replay,
                          desc=f"{p.name}/{name}", progress=self.progress)
        folder = self.folder(name)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(folder.name + f".tmp-{uuid.uuid4().hex[:6]}")
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            prov = {"name": name, "profile": p.key(), "recipe": r.__dict__, "hash": self.model_hash(name),
                    "parent": self.model_hash(r.parent) if r.parent else None, "seed": seed,
                    "train": stats.to_dict(), "versions": package_versions(), "built": time.strftime("%Y-%m-%d")}
            (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def build(self, names=None) -> dict[str, Path]:
        return {n: self.path(n) for n in (names or [r.name for r in GRAPH])}
