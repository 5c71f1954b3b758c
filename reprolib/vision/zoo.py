"""The vision zoo's shared starting point: the pre-trained backbone θ0 and the eight frozen heads.

θ0 is pre-trained once on a broad mix, as the paper's CLIP is: images of all eight tasks' training
splits, each rotated by 0°, 90°, 180° or 270°, with the rotation as the label (self-supervised: no
task label is seen, so fine-tuning on a task has something to add). Each task's head is then a
linear probe on θ0's frozen features (its training split), and stays frozen from then on, as the
paper keeps CLIP's zero-shot heads: a task vector lives in the backbone only.

The rotation head is kept too: it is the control task of task negation (``tasks.control_set``).

Then the task vectors: every task fine-tuned from θ0 in the three regimes of
``reprolib.vision.finetune`` (non-linear, linear, linear + τJp penalty), per training seed.

Cached like the language zoo: ``<root>/vision-<profile>/pretrained-<hash>/`` holds ``model.safetensors``,
``heads.safetensors`` and ``provenance.json``; ``tv-<hash>/<regime>_s<seed>.safetensors`` (one hash per
regime, over the settings that regime reads) holds the
eight task vectors of one regime and seed (keys ``<task>.<parameter>``) beside a ``.json`` of its
provenance (losses, seconds, settings), through the task-vector store shared with the text zoo
(``reprolib.taskvectors``). Each hash covers everything its bytes depend on (profile, fine-tuning
settings, θ0's hash, a fingerprint of the task generators' output); files are written to a
temporary name and renamed, and the same seed gives the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reprolib.taskvectors import TaskVectorStore, config_hash, resolve_profile
from reprolib.taskvectors import main as main_of
from reprolib.threads import VECTOR_THREADS, pinned_threads
from reprolib.vision import tasks as V
from reprolib.vision.model import TinyViT


@dataclass(frozen=True)
class VisionProfile:
    name: str
    dim: int
    depth: int
    heads: int
    mlp: int
    pretrain_steps: int
    batch: int = 64
    lr: float = 1e-3
    probe_steps: int = 200
    n_train: int = 2000          # training images per task (pre-training mix and probes)
    seed: int = 0
    # fine-tuning (every task, every regime): AdamW, constant rate, the head frozen
    ft_steps: int = 300
    ft_lr: float = 1e-3
    ft_batch: int = 32
    penalty: float = 0.1         # λ of Eq. 10 (the linear_taujp regime)
    reg_batch: int = 4           # images of the other task per penalty step: 1/8 of the batch, as the paper


FINETUNE_FIELDS = ("ft_steps", "ft_lr", "ft_batch", "penalty", "reg_batch")
REGIMES = ("nonlinear", "linear", "linear_taujp")      # Tables 1–2, Figs. 1–8
# Tables 5–7: T_orth = the tasks learned before (in ``tasks.TASKS`` order; the first task is plain linear FT),
# Eq. 10's strict penalty (every other task at every step), multi-task learning (one vector, key "mtl")
VARIANTS = ("linear_taujp_incremental", "linear_taujp_strict", "mtl")
ALL_REGIMES = REGIMES + VARIANTS
READS = {"nonlinear": FINETUNE_FIELDS[:3], "linear": FINETUNE_FIELDS[:3], "linear_taujp": FINETUNE_FIELDS,
         "linear_taujp_incremental": FINETUNE_FIELDS, "linear_taujp_strict": FINETUNE_FIELDS,
         "mtl": FINETUNE_FIELDS[:3]}   # the settings each regime reads

PROFILES = {
    "tiny": VisionProfile("tiny", dim=16, depth=1, heads=2, mlp=32, pretrain_steps=20, batch=16, probe_steps=20, n_train=64,
                          ft_steps=10, ft_batch=8, reg_batch=2),
    "mini": VisionProfile("mini", dim=64, depth=4, heads=4, mlp=128, pretrain_steps=1500, ft_lr=5e-4, penalty=0.1),
    # a smaller tiny, only for testing Table 7's second model size quickly
    "nano": VisionProfile("nano", dim=8, depth=1, heads=2, mlp=16, pretrain_steps=20, batch=16, probe_steps=20, n_train=64,
                          ft_steps=10, ft_batch=8, reg_batch=2),
    # a smaller model of the same design, the second model size of Table 7
    "micro": VisionProfile("micro", dim=32, depth=2, heads=2, mlp=64, pretrain_steps=1500, ft_lr=5e-4, penalty=0.1),
}


def rotations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at 0°, 90°, 180° and 270° (labels 0–3)."""
    rotated = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
    labels = [torch.full((len(images),), k, dtype=torch.long) for k in range(4)]
    return torch.cat(rotated), torch.cat(labels)


def data_fingerprint(n: int = 16) -> str:
    """A hash of what every task generator produces (a sample of each), part of the zoo's hash."""
    h = hashlib.sha256()
    for task in V.TASKS:
        x, y = V.make_task(task, n, 0, "train")
        h.update(x.tobytes())
        h.update(y.tobytes())
    return h.hexdigest()[:12]


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int, lr: float, seed: int) -> list[float]:
    """Plain AdamW on cross-entropy, batches drawn by a seeded generator; returns the loss per step."""
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@functools.lru_cache(maxsize=2)
def _training_data(n: int, seed: int) -> tuple[dict, torch.Tensor]:
    """Every task's training split and the control images, generated once per process (every regime and
    seed reads the same ones; fine-tuning never writes into them)."""
    data = {t: tuple(map(torch.from_numpy, V.make_task(t, n, seed, "train"))) for t in V.TASKS}
    return data, torch.from_numpy(V.control_set(n, seed, "train")[0])


class VisionZoo(TaskVectorStore):
    """``VisionZoo('mini').pretrained()`` → (backbone θ0, {task: frozen head}, the control task's
    ``rotation`` head included); ``task_vectors(regime, seed)`` → {task: τ}; each built once and cached
    (the task-vector files: :class:`reprolib.taskvectors.TaskVectorStore`)."""

    REGIMES, ALL_REGIMES, READS, KIND = REGIMES, ALL_REGIMES, READS, "vision zoo"

    def __init__(self, profile: str | VisionProfile = "mini", root: str | os.PathLike = "zoo", progress: bool = True,
                 **overrides):
        self.profile = resolve_profile("vision", profile, PROFILES, FINETUNE_FIELDS, overrides)
        self.root = Path(root) / f"vision-{self.profile.name}"
        self.progress = progress

    def eval_sets(self, split: str, n: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{task: (images, labels)}: ``n`` images of every task's ``split`` drawn with ``seed`` (the
        evaluation sets of task arithmetic; the control task is not among them)."""
        return {t: tuple(map(torch.from_numpy, V.make_task(t, n, seed, split))) for t in V.TASKS}

    def key(self) -> str:
        p = {k: v for k, v in asdict(self.profile).items() if k not in FINETUNE_FIELDS}   # θ0 does not read them
        return config_hash({"profile": p, "data": data_fingerprint(), "version": 2})

    def folder(self) -> Path:
        return self.root / f"pretrained-{self.key()}"

    def backbone(self) -> TinyViT:
        p = self.profile
        return TinyViT(dim=p.dim, depth=p.depth, heads=p.heads, mlp=p.mlp)

    def pretrained(self) -> tuple[TinyViT, dict[str, nn.Linear]]:
        from safetensors.torch import load_file

        folder = self.folder()
        if not (folder / "provenance.json").exists():
            with pinned_threads(VECTOR_THREADS):   # the bytes depend on the thread count (reprolib.threads)
                self._build(folder)
        backbone = self.backbone()
        backbone.load_state_dict(load_file(folder / "model.safetensors"))
        weights = load_file(folder / "heads.safetensors")
        heads = {}
        for task, classes in {**V.TASKS, V.CONTROL: 4}.items():
            head = nn.Linear(backbone.dim, classes)
            head.load_state_dict({"weight": weights[f"{task}.weight"], "bias": weights[f"{task}.bias"]})
            heads[task] = head.requires_grad_(False)
        return backbone.eval(), heads

    def _build(self, folder: Path) -> None:
        from safetensors.torch import save_file

        from reprolib.io import machine, package_versions

        p = self.profile
        torch.manual_seed(p.seed)
        t0 = time.perf_counter()
        data = {t: V.make_task(t, p.n_train, p.seed, "train") for t in V.TASKS}
        images = torch.from_numpy(np.concatenate([x for x, _ in data.values()]))
        backbone = self.backbone()
        rotation_head = nn.Linear(p.dim, 4)
        x, y = rotations(images)
        losses = _train(nn.Sequential(backbone, rotation_head), x, y, p.pretrain_steps, p.batch, p.lr, p.seed)
        backbone.eval()
        heads, probe = {f"{V.CONTROL}.weight": rotation_head.weight.detach(), f"{V.CONTROL}.bias": rotation_head.bias.detach()}, {}
        with torch.no_grad():
            features = {t: backbone(torch.from_numpy(x)) for t, (x, _) in data.items()}
        for i, (task, (_, labels)) in enumerate(data.items()):
            head = nn.Linear(p.dim, V.TASKS[task])
            torch.manual_seed(p.seed * 1000 + i)
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)
            target = torch.from_numpy(labels)
            _train(head, features[task], target, p.probe_steps, p.batch, 1e-2, p.seed * 1000 + i)
            with torch.no_grad():
                probe[task] = float((head(features[task]).argmax(-1) == target).float().mean())
            heads[f"{task}.weight"], heads[f"{task}.bias"] = head.weight.detach(), head.bias.detach()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(folder.name + f".tmp-{uuid.uuid4().hex[:6]}")
        try:
            tmp.mkdir()
            save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, tmp / "model.safetensors")
            save_file({k: v.contiguous() for k, v in heads.items()}, tmp / "heads.safetensors")
            prov = {"profile": asdict(p), "data": data_fingerprint(), "hash": self.key(),
                    "pretrain": {"objective": "rotation (0/90/180/270) over the eight tasks' training images",
                                 "steps": p.pretrain_steps, "final_loss": float(np.mean(losses[-20:])),
                                 "parameters": sum(v.numel() for v in backbone.state_dict().values())},
                    "probe_train_accuracy": probe, "seconds": round(time.perf_counter() - t0, 1), "threads": VECTOR_THREADS,
                    "versions": package_versions(), "machine": machine(), "built": time.strftime("%Y-%m-%d")}
            (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # ------------------------------------------------------------------ task vectors (reprolib.taskvectors)

    def tv_config(self, regime: str) -> dict:
        """θ0's hash, the settings the regime reads and the fine-tuning code's version."""
        from reprolib.vision import finetune

        return {"pretrained": self.key(), "regime": regime, "finetune": self.settings(regime),
                "n_train": self.profile.n_train, "version": finetune.VERSION}

    def _finetune_all(self, regime: str, seed: int):
        """(name, (τ, losses)) for every vector of ``regime``: each task's (T_orth per the regime), or MTL's one."""
        from reprolib.vision.finetune import finetune, finetune_mtl

        p = self.profile
        backbone, heads = self.pretrained()
        data, control = _training_data(p.n_train, p.seed)
        if regime == "mtl":
            yield "mtl", finetune_mtl(backbone, heads, data, steps=p.ft_steps, lr=p.ft_lr, seed=seed * 1000 + 999,
                                      batch=p.ft_batch)
            return
        for i, task in enumerate(V.TASKS):
            if regime == "linear_taujp_incremental":
                others = [data[t][0] for t in list(V.TASKS)[:i]]                      # T_orth: the tasks learned before
            else:
                others = [data[t][0] for t in V.TASKS if t != task] + [control]      # T_orth: the other tasks and the control
            penalised = regime.startswith("linear_taujp") and others
            yield task, finetune(backbone, heads[task], *data[task], "linear_taujp" if penalised else
                                 ("nonlinear" if regime == "nonlinear" else "linear"), steps=p.ft_steps, lr=p.ft_lr,
                                 seed=seed * 1000 + i, batch=p.ft_batch, others=others if penalised else [],
                                 penalty=p.penalty if penalised else 0.0, reg_batch=p.reg_batch,
                                 schedule="strict" if regime == "linear_taujp_strict" else "cyclical")


def main(argv=None) -> None:
    main_of(VisionZoo, PROFILES, "python -m reprolib.vision.zoo",
            "Build the vision zoo (θ0 and every task vector) for the τJp chapter.", argv)


if __name__ == "__main__":
    main()
