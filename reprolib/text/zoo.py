"""The text zoo of the τJp chapter (seed 004, Tables 3 and 8): θ0, the frozen heads of the four GLUE-like
tasks (``reprolib.text.tasks``) and their task vectors in the paper's three fine-tuning regimes.

θ0 is the language zoo's pre-trained ``base`` (built by ``python -m reprolib.zoo build``, read from
``<root>/<language profile>/base-<hash>/``, never built here), as an encoder
(``reprolib.text.model.TextEncoder``: the normed final hidden state at the prompt's last token); each
task's head is the LM's output-embedding rows of its label words, frozen (the analogue of the paper's
frozen zero-shot heads). Nothing of θ0 is written: a missing base is an error naming its folder.

Task vectors: every task fine-tuned from θ0 with ``reprolib.vision.finetune.finetune`` (generic over
the backbone) in the regimes ``nonlinear``, ``linear`` (the linearised encoder) and ``linear_taujp``
(linear + Eq. 11's cyclical penalty: T_orth = the other three tasks, one per step in ``TASKS``
order, on ``reg_batch`` of that task's training prompts — a quarter of the task batch, as the paper
for NLP — without their labels). A task vector covers every encoder parameter (embeddings, blocks,
final norm); the heads are frozen copies and never move. Files and hashes as the vision zoo's
(``reprolib.taskvectors``): ``<root>/text-<profile>/tv-<hash>/<regime>_s<seed>.safetensors`` and its
``.json``; each hash covers the base's folder (its recipe hash), the label words, a fingerprint of the
task generators' output, the fine-tuning settings the regime reads and the code's versions.

    python -m reprolib.text.zoo --profile mini --seeds 3 [--root zoo]
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reprolib.errors import CheckpointError
from reprolib.taskvectors import TaskVectorStore, config_hash, resolve_profile
from reprolib.taskvectors import main as main_of
from reprolib.text import tasks as X
from reprolib.text.model import TextEncoder, label_heads, load_encoder

VERSION = 1          # bump when the encoder, the heads or the prompts' encoding change what fine-tuning reads


@dataclass(frozen=True)
class TextProfile:
    name: str
    lm_profile: str              # the language-zoo profile whose ``base`` is θ0
    n_train: int = 2000          # training prompts per task
    seed: int = 0                # the task generators' seed
    # fine-tuning (every task, every regime): AdamW, constant rate, the head frozen
    ft_steps: int = 100
    ft_lr: float = 3e-4
    ft_batch: int = 16
    penalty: float = 1e-3        # λ of Eq. 10 (the linear_taujp regime)
    reg_batch: int = 4           # prompts of the other task per penalty step: 1/4 of the batch, as the paper for NLP


FINETUNE_FIELDS = ("ft_steps", "ft_lr", "ft_batch", "penalty", "reg_batch")
REGIMES = ("nonlinear", "linear", "linear_taujp")      # Tables 3 and 8
READS = {"nonlinear": FINETUNE_FIELDS[:3], "linear": FINETUNE_FIELDS[:3], "linear_taujp": FINETUNE_FIELDS}

# mini (measured on one seed, 1 thread, bench/experiments/text_zoo_measure.py): every task well above θ0 and
# chance after 100 steps of batch 16 at 3e-4 in every regime (MRPC and RTE, the pair tasks, reach ~70–75 %;
# at batch 16 / 1e-3 and for linear FT at 1e-3 nothing was learnt); λ from the paper's grid {1e-3, 1e-2,
# 1e-1}, chosen on validation as B.1 (CoLA's own accuracy and four-task addition both pick 1e-3). CPU
# time per step (1 thread): 0.07 s non-linear, 0.17 s linear, 0.22 s linear + τJp, so 4 tasks × 3 regimes
# × 3 seeds ≈ 12 × 100 × 0.465 s ≈ 560 s on one free core.
PROFILES = {
    "tiny": TextProfile("tiny", lm_profile="tiny", n_train=64, ft_steps=4, ft_lr=1e-3, ft_batch=8, reg_batch=2),
    "mini": TextProfile("mini", lm_profile="mini"),
}


def data_fingerprint(n: int = 16) -> str:
    """A hash of what every task generator produces (a sample of each split's prompts and labels)."""
    h = hashlib.sha256()
    for task in X.TASKS:
        for split in X.SPLITS:
            prompts, labels = X.make_texts(task, n, 0, split)
            h.update("\0".join(prompts).encode())
            h.update(labels.tobytes())
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=64)
def _encoded(folder: str, task: str, n: int, seed: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from transformers import AutoTokenizer

    ids, labels = X.make_task(task, n, seed, split, tokenizer=AutoTokenizer.from_pretrained(folder))
    return torch.from_numpy(ids), torch.from_numpy(labels)


class TextZoo(TaskVectorStore):
    """``TextZoo('mini').pretrained()`` → (encoder θ0, {task: frozen head}); ``task_vectors(regime, seed)``
    → {task: τ}, fine-tuned once and cached."""

    REGIMES, ALL_REGIMES, READS, KIND = REGIMES, REGIMES, READS, "text zoo"

    def __init__(self, profile: str | TextProfile = "mini", root: str | os.PathLike = "zoo", progress: bool = True,
                 **overrides):
        self.profile = resolve_profile("text", profile, PROFILES, FINETUNE_FIELDS, overrides)
        self.lm_root = Path(root)
        self.root = Path(root) / f"text-{self.profile.name}"
        self.progress = progress

    # ------------------------------------------------------------------ θ0 (the language zoo's base)

    def base_folder(self) -> Path:
        """The language zoo's base folder; a clear error when it has not been built."""
        from reprolib.zoo.build import PROFILES as LM_PROFILES
        from reprolib.zoo.build import Zoo

        lm = self.profile.lm_profile
        if lm not in LM_PROFILES:
            raise ValueError(f"text profile {self.profile.name!r}: unknown language-zoo profile {lm!r} "
                             f"(known: {', '.join(LM_PROFILES)})")
        folder = Zoo(lm, root=self.lm_root, progress=False).folder("base")
        if not (folder / "provenance.json").exists():
            raise CheckpointError(f"the text zoo starts from the language zoo's base, which is missing: {folder} "
                                  f"(build it with: python -m reprolib.zoo build --profile {lm} --root {self.lm_root} "
                                  "--groups core)")
        return folder

    def key(self) -> str:
        """θ0's hash: the base's folder (named by its recipe hash), the label words, the task data."""
        return config_hash({"base": self.base_folder().name, "label_words": X.LABEL_WORDS, "data": data_fingerprint(),
                            "version": VERSION})

    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.base_folder())

    def pretrained(self) -> tuple[TextEncoder, dict[str, nn.Linear]]:
        folder = self.base_folder()
        encoder = load_encoder(folder)
        return encoder, label_heads(encoder, self.tokenizer(), X.LABEL_WORDS)

    def data(self, split: str, n: int | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{task: (ids, labels)} of ``split`` (``n`` per task; default the profile's ``n_train``), tokenised
        with the base's tokenizer, from the profile's data seed (cached per process; treat as read-only)."""
        return self.eval_sets(split, n or self.profile.n_train, self.profile.seed)

    def eval_sets(self, split: str, n: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{task: (ids, labels)}: ``n`` prompts of every task's ``split`` drawn with ``seed`` (the
        evaluation sets of task arithmetic; the same interface as the vision zoo's)."""
        folder = str(self.base_folder())
        return {t: _encoded(folder, t, n, seed, split) for t in X.TASKS}

    # ------------------------------------------------------------------ task vectors (reprolib.taskvectors)

    def tv_config(self, regime: str) -> dict:
        from reprolib.vision import finetune

        return {"pretrained": self.key(), "regime": regime, "finetune": self.settings(regime),
                "n_train": self.profile.n_train, "data_seed": self.profile.seed,
                "version": [finetune.VERSION, VERSION]}

    def _finetune_all(self, regime: str, seed: int):
        """(task, (τ, losses)) for every task; T_orth = the other tasks (cyclical) in ``linear_taujp``."""
        from reprolib.vision.finetune import finetune

        p = self.profile
        self.settings(regime)                                  # an unknown regime is an error here
        encoder, heads = self.pretrained()
        data = self.data("train")
        for i, task in enumerate(X.TASKS):
            others = [data[t][0] for t in X.TASKS if t != task] if regime == "linear_taujp" else []
            yield task, finetune(encoder, heads[task], *data[task], regime, steps=p.ft_steps, lr=p.ft_lr,
                                 seed=seed * 1000 + i, batch=p.ft_batch, others=others,
                                 penalty=p.penalty if others else 0.0, reg_batch=p.reg_batch)


def main(argv=None) -> None:
    main_of(TextZoo, PROFILES, "python -m reprolib.text.zoo",
            "Fine-tune the text zoo's task vectors (θ0 = the language zoo's base) for the τJp chapter.", argv)


if __name__ == "__main__":
    main()
