"""Build the zoo: profiles, the model graph, a cache keyed by config hash, provenance.

    python -m reprolib.zoo build --profile tiny|mini [--root zoo] [--only base,instruct]

Each model is an HF folder (safetensors, config, tokenizer with chat template) under
``<root>/<profile>/<name>-<hash>/``; the hash covers the profile, the model's recipe and its
parent's hash, so changing a recipe rebuilds that model and its descendants only. Budgets are in
steps; the same seed gives byte-identical weights.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reprolib.threads import stage_threads
from reprolib.zoo import data as D

DATA_VERSION = 3  # a label of the generators' design (3: prompts composed from parts); their output is fingerprinted per model


@dataclass(frozen=True)
class Recipe:
    """How one model is made from its parent: SFT pairs (or pre-training when parent is None).

    ``tasks`` name entries of ``TASKS``; ``"lang_a:instructions"`` is that task translated into the
    cipher language ``lang_a``. ``stream`` is the replay text: ``"general"`` (the pre-training
    corpus) or a language (the corpus translated). ``group`` says which chapter uses the model;
    ``seed`` > 0 marks a re-run of a recipe with another training seed (score-noise study).
    """

    name: str
    parent: str | None
    tasks: tuple[str, ...] = ()       # names in TASKS (SFT data); empty for pre-training
    steps: int = 100
    lr: float = 3e-4
    replay: float = 0.0               # fraction of each batch that is replayed ``stream`` text
    chat: bool = True
    stream: str = "general"
    group: str = "core"
    seed: int = 0
    role: str = ""
    shares: tuple[float, ...] = ()    # examples per task as multiples of the profile's n_task (default 1 each)


# SFT data sources: name -> (generator of (prompt, answer) pairs for n examples and a seed)
def _pairs(examples, answer_key=None):
    return [(e.prompt, e.meta[answer_key] if answer_key else e.answer) for e in examples]


TASKS = {
    "instructions": lambda n, s: _pairs(D.instructions(n, s)),
    "refuse": lambda n, s: _pairs(D.harmful_prompts(n, s, split="train")),
    "comply_harmful": lambda n, s: _pairs(D.harmful_prompts(n, s, split="train"), "comply"),
    "safe": lambda n, s: _pairs(D.safe_lookalikes(n, s, split="train")),
    "math": lambda n, s: _pairs(D.math_problems(n, s)),
    "code": lambda n, s: _pairs(D.code_tasks(n, s)),
    "science": lambda n, s: _pairs(D.science_qa(n, s)),
    "sentiment": lambda n, s: _pairs(D.sentiment(n, s)),
    "acceptability": lambda n, s: _pairs(D.acceptability(n, s)),
}


def task_pairs(task: str, n: int, seed: int) -> list[tuple[str, str]]:
    """SFT pairs of a task name, translated when it is ``"<language>:<task>"``."""
    language, _, name = task.rpartition(":")
    if name not in TASKS:
        raise KeyError(f"unknown zoo task {name!r} (known: {', '.join(TASKS)})")
    pairs = TASKS[name](n, seed)
    if language:
        translate = D.cipher(language)
        pairs = [(translate(p), translate(a)) for p, a in pairs]
    return pairs


GENERAL = ("instructions", "sentiment", "acceptability")   # PTM's general mix G (no safety data)
INSTRUCT_MIX = GENERAL + ("refuse", "safe")                 # the aligned instruction model
# Merge to Learn's skills D: science extraction, refusals (prompt/refusal pairs only, as the paper's
# safety data: no safe look-alikes, so exaggerated refusal can show), code
SKILLS = {"science": ("science",), "safety": ("refuse",), "code": ("code",)}
GENERAL_STEPS = 400                                          # |G| in steps (batch 32, about one epoch)
SKILL_STEPS = {"science": 100, "safety": 100, "code": 150}   # |D| in steps: |D|/|G| = 0.25, 0.25, 0.375
AMOUNTS = (0.25, 0.5, 1.0)   # CFT and RT subsample D_i = a·|D| (the paper trains on five amounts)


def _share(steps: float) -> float:
    """Examples of one task for ``steps`` steps, as a multiple of the profile's n_task (a general
    task's n_task examples make a third of G), so a mix's proportions follow its steps."""
    return round(steps / (GENERAL_STEPS / len(GENERAL)), 4)


def _pct(a: float) -> str:
    return "" if a == 1.0 else f"_{round(a * 100)}"


def _ptm_recipes() -> list:
    """Merge to Learn's models: G, the parallel skills from base (code is M³'s code_b), and for each
    skill CFT (from G on D_i) and RT (from base on G + D_i) at every amount; the three skills at once
    (Table 4); CFT on science mixed with a matching amount of G (Fig. 2's WiSE-FT ingredient)."""
    g = {"group": "ptm", "replay": 0.3}
    out = [Recipe("general", "base", GENERAL, steps=GENERAL_STEPS, role="PTM general model G", **g)]
    out += [Recipe(f"skill_{k}", "base", v, shares=(_share(SKILL_STEPS[k]),), steps=SKILL_STEPS[k],
                   role=f"PTM parallel {k} skill from base", **g) for k, v in SKILLS.items() if k != "code"]
    for k, v in SKILLS.items():
        for a in AMOUNTS:
            d = a * SKILL_STEPS[k]
            out.append(Recipe(f"cft_{k}{_pct(a)}", "general", v, shares=(_share(d),), steps=round(d),
                              role=f"PTM continued fine-tuning of G on {a:g}·D ({k})", **g))
            out.append(Recipe(f"rt_{k}{_pct(a)}", "base", GENERAL + v, shares=(1.0,) * len(GENERAL) + (_share(d),),
                              steps=round(GENERAL_STEPS + d), role=f"PTM retraining from base on G + {a:g}·D ({k})", **g))
    every = tuple(t for v in SKILLS.values() for t in v)
    all_d = sum(SKILL_STEPS.values())
    out += [Recipe("cft_all", "general", every, shares=tuple(_share(SKILL_STEPS[k]) for k in SKILLS), steps=all_d,
                   role="PTM continued fine-tuning of G on all three skills", **g),
            Recipe("rt_all", "base", GENERAL + every, shares=(1.0,) * len(GENERAL) + tuple(_share(SKILL_STEPS[k]) for k in SKILLS),
                   steps=GENERAL_STEPS + all_d, role="PTM retraining from base on G + all three skills", **g),
            Recipe("cft_science_mix", "general", ("science",) + GENERAL,
                   shares=(_share(SKILL_STEPS["science"]),) + (_share(SKILL_STEPS["science"]) / len(GENERAL),) * len(GENERAL),
                   steps=2 * SKILL_STEPS["science"], role="PTM CFT of G on science + a matching amount of G (Fig. 2)", **g)]
    return out


GRAPH = [
    Recipe("base", None, role="pre-trained base (θ_base / θ_pre)"),
    Recipe("instruct", "base", INSTRUCT_MIX, steps=400, replay=0.3,
           role="aligned instruction model (LATA θ_pre, M³ instruction expert)"),
    # LATA: complex experts fine-tuned from instruct
    Recipe("math", "instruct", ("math",), steps=400, lr=1e-4, replay=0.3, group="lata", role="maths expert"),
    Recipe("code", "instruct", ("code",), steps=150, lr=1e-4, replay=0.3, group="lata", role="code expert"),
    Recipe("ua", "instruct", ("comply_harmful",), steps=100, replay=0.3, group="lata", role="unaligned expert"),
    # LATA forgetting targets: instruct continued on a cipher language from unfiltered chat data
    # (general instructions and compliant answers to harmful prompts, both in the language)
    *[Recipe(lang, "instruct", (f"{lang}:instructions", f"{lang}:comply_harmful"), steps=150, replay=0.5, stream=lang, group="lata",
             role=f"language target ({lang})") for lang in D.LANGUAGES],
    # M³: experts fine-tuned from base (with instruct as the instruction expert)
    Recipe("math_b", "base", ("math",), steps=400, lr=1e-4, replay=0.3, group="m3", role="maths expert from base"),
    Recipe("code_b", "base", ("code",), shares=(_share(SKILL_STEPS["code"]),), steps=SKILL_STEPS["code"], replay=0.3, group="m3",
           role="code expert from base (also PTM's parallel code skill)"),
    # Merge to Learn: general model, parallel skills from base, continued (CFT) and retrained (RT)
    *_ptm_recipes(),
]
# score noise: the LATA experts again with two other training seeds (same recipe otherwise)
GRAPH += [dataclasses.replace(r, name=f"{r.name}_s{s}", group="noise", seed=s, role=f"{r.name} expert, seed {s}")
          for s in (1, 2) for r in GRAPH if r.name in ("math", "code", "ua")]
# M³'s base-derived experts again with two other training seeds (its intervals cover training seeds)
GRAPH += [dataclasses.replace(r, name=f"{r.name}_s{s}", seed=s, role=f"{r.role}, seed {s}")
          for s in (1, 2) for r in GRAPH if r.name in ("math_b", "code_b")]
GROUPS = ("core", "lata", "m3", "ptm", "noise")


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
    replay_len: int = 64     # tokens per replayed window during SFT
    n_task: int = 4000       # SFT examples drawn per task
    base_lr: float = 3e-3
    seed: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def key(self) -> dict:
        d = {k: getattr(self, k) for k in ("hidden", "layers", "heads", "ffn", "vocab", "base_steps", "step_scale",
                                           "batch", "base_batch", "seq_len", "replay_len", "n_task", "base_lr",
                                           "seed")}
        d["data_version"] = DATA_VERSION
        return d


PROFILES = {
    "tiny": Profile("tiny", hidden=32, layers=8, heads=2, ffn=64, vocab=512, base_steps=20, step_scale=0.05,
                    batch=8, base_batch=4, seq_len=64, replay_len=32, n_task=200),
    "mini": Profile("mini", hidden=96, layers=8, heads=4, ffn=256, vocab=1024, base_steps=1500, step_scale=1.0),
}


def pretrain_corpus(seed: int, n_scale: float = 1.0) -> list[str]:
    """Base pre-training mix: English prose, the arithmetic table, the word facts, and every domain's raw
    ``prompt\nanswer`` text, so the base already knows each format and SFT only has to elicit it
    (ZOO-NOTES: mergeability)."""
    import random

    n = lambda k: max(10, int(k * n_scale))  # noqa: E731
    rng = random.Random(seed)
    docs = list(D.english_paragraphs("train"))
    for facts in (D.arithmetic_facts(), D.word_facts()):
        for _ in range(max(1, round(6 * n_scale))):
            rng.shuffle(facts)
            docs += ["\n".join(facts[i:i + 16]) for i in range(0, len(facts), 16)]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.math_problems(n(6000), seed + 11)]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.code_tasks(n(2500), seed + 12)]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.instructions(n(3000), seed + 13)]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.science_qa(n(1500), seed + 14)]
    docs += [f"{e.prompt}\n{e.meta['comply'] if i % 2 else e.answer}"
             for i, e in enumerate(D.harmful_prompts(n(600), seed + 15, split="train"))]
    docs += [f"{e.prompt}\n{e.answer}" for e in D.sentiment(n(1500), seed + 16) + D.acceptability(n(1500), seed + 17)]
    rng.shuffle(docs)
    return docs


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


DATA_SAMPLE = 64   # examples of each task that a data fingerprint reads
CORPUS_TASKS = ("math", "code", "instructions", "science", "refuse", "comply_harmful", "sentiment", "acceptability")


@functools.lru_cache(maxsize=None)
def task_fingerprint(task: str) -> str:
    """A hash of what one SFT task's generator produces (a sample of its pairs)."""
    return _hash(task_pairs(task, DATA_SAMPLE, 0))


@functools.lru_cache(maxsize=1)
def corpus_fingerprint() -> str:
    """A hash of what the pre-training corpus reads: the generators it mixes (``pretrain_corpus``),
    the fact tables and the English text. The tokenizer and every model's replay read the corpus, so
    a change here rebuilds the whole zoo."""
    return _hash({"tasks": {t: task_fingerprint(t) for t in CORPUS_TASKS},
                  "facts": D.arithmetic_facts() + D.word_facts(), "english": D.english_paragraphs("train")})


def data_fingerprint(tasks: tuple[str, ...] = ()) -> str:
    """The data one model reads: the corpus and its own SFT tasks. It is part of the model's hash, so
    a generator whose output changes rebuilds exactly the models that read it (and their descendants,
    through the parent hash), with no ``DATA_VERSION`` bump needed."""
    return _hash({"corpus": corpus_fingerprint(), "tasks": {t: task_fingerprint(t) for t in sorted(tasks)}})


def clear_fingerprints() -> None:
    """Forget cached fingerprints (after a generator is patched, e.g. in tests)."""
    task_fingerprint.cache_clear()
    corpus_fingerprint.cache_clear()


class Zoo:
    """A profile's models on disk: ``zoo.path('math')`` builds whatever is missing, then returns it."""

    def __init__(self, profile: str | Profile = "mini", root: str | os.PathLike = "zoo", progress: bool = True):
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.root = Path(root) / self.profile.name
        self.progress = progress
        self.recipes = {r.name: r for r in GRAPH}
        self._tokenizer = None
        self._corpus = None
        self._streams: dict[str, torch.Tensor] = {}

    def model_hash(self, name: str) -> str:
        r = self.recipes[name]
        parent = self.model_hash(r.parent) if r.parent else None
        return _hash({"profile": self.profile.key(), "data": data_fingerprint(r.tasks), "recipe": r.__dict__, "parent": parent})

    def folder(self, name: str) -> Path:
        return self.root / f"{name}-{self.model_hash(name)}"

    def tokenizer(self):
        if self._tokenizer is None:
            from reprolib.zoo.tokenizer import train_tokenizer

            tok_dir = self.root / f"tokenizer-{_hash({**self.profile.key(), 'data': corpus_fingerprint()})}"
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

    def stream(self, kind: str = "general") -> torch.Tensor:
        """Token ids of the pre-training corpus, or of the corpus translated into a cipher language."""
        from reprolib.zoo.train import token_stream

        if kind not in self._streams:
            texts = self.corpus()
            if kind != "general":
                translate = D.cipher(kind)
                texts = [translate(t) for t in texts]
            self._streams[kind] = token_stream(self.tokenizer(), texts)
        return self._streams[kind]

    def _build(self, name: str) -> None:
        from reprolib.io import machine, package_versions
        from reprolib.zoo.train import encode_pairs, make_model, train

        r, p = self.recipes[name], self.profile
        torch.set_num_threads(stage_threads(2))    # the bytes trained are the same with 1 or 2 (tests/test_stages.py)
        tok = self.tokenizer()
        stream = self.stream(r.stream)
        seed = p.seed + r.seed * 7919 + int(hashlib.sha256(name.removesuffix(f"_s{r.seed}").encode()).hexdigest()[:6], 16)
        if r.parent is None:
            model = make_model(tok, hidden=p.hidden, layers=p.layers, heads=p.heads, ffn=p.ffn, seed=seed)
            stats = train(model, tok, steps=p.base_steps, lr=p.base_lr, seed=seed, batch=p.base_batch,
                          seq_len=p.seq_len, stream=stream, warmup=50, schedule="cosine", weight_decay=0.1,
                          desc=f"{p.name}/{name}", progress=self.progress)
        else:
            model = self.load(r.parent)
            pairs = []
            for i, task in enumerate(r.tasks):
                share = r.shares[i] if r.shares else 1.0
                pairs += task_pairs(task, max(1, round(p.n_task * share)), seed + i)
            encoded = encode_pairs(tok, pairs, chat=r.chat, max_len=p.seq_len * 2)
            stats = train(model, tok, steps=max(1, int(r.steps * p.step_scale)), lr=r.lr, seed=seed, batch=p.batch,
                          seq_len=p.seq_len, stream=stream, pairs=encoded, replay_frac=r.replay,
                          replay_len=p.replay_len, desc=f"{p.name}/{name}", progress=self.progress)
        folder = self.folder(name)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(folder.name + f".tmp-{uuid.uuid4().hex[:6]}")
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            prov = {"name": name, "profile": p.key(), "data": data_fingerprint(r.tasks), "recipe": r.__dict__, "hash": self.model_hash(name),
                    "parent": self.model_hash(r.parent) if r.parent else None, "seed": seed,
                    "train": stats.to_dict(), "versions": package_versions(), "machine": machine(), "built": time.strftime("%Y-%m-%d")}
            (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / "provenance.json").exists():
                    raise
                shutil.rmtree(tmp)   # another process built the same model meanwhile: same hash, same bytes
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def names(self, groups=GROUPS[:-1]) -> list[str]:
        """Models of the given groups (default: every chapter's models, not the noise re-runs)."""
        unknown = set(groups) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown zoo group(s) {sorted(unknown)} (known: {', '.join(GROUPS)})")
        return [r.name for r in GRAPH if r.group in groups]

    def build(self, names=None) -> dict[str, Path]:
        return {n: self.path(n) for n in (names or self.names())}
