"""The vision zoo's shared starting point: the pre-trained backbone θ0 and the eight frozen heads.

θ0 is pre-trained once on a broad mix, as the paper's CLIP is: images of all eight tasks' training
splits, each rotated by 0°, 90°, 180° or 270°, with the rotation as the label (self-supervised: no
task label is seen, so fine-tuning on a task has something to add). Each task's head is then a
linear probe on θ0's frozen features (its training split), and stays frozen from then on, as the
paper keeps CLIP's zero-shot heads: a task vector lives in the backbone only.

Cached like the language zoo: ``<root>/<profile>/pretrained-<hash>/`` holds ``model.safetensors``,
``heads.safetensors`` and ``provenance.json``; the hash covers the profile and a fingerprint of
the task generators' output, the folder is written to a temporary name and renamed, and the same
seed gives the same bytes.
"""

from __future__ import annotations

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


PROFILES = {
    "tiny": VisionProfile("tiny", dim=16, depth=1, heads=2, mlp=32, pretrain_steps=20, batch=16, probe_steps=20, n_train=64),
    "mini": VisionProfile("mini", dim=64, depth=4, heads=4, mlp=128, pretrain_steps=1500),
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


class VisionZoo:
    """``VisionZoo('mini').pretrained()`` → (backbone θ0, {task: frozen head}), built once and cached."""

    def __init__(self, profile: str | VisionProfile = "mini", root: str | os.PathLike = "zoo", progress: bool = True):
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.root = Path(root) / f"vision-{self.profile.name}"
        self.progress = progress

    def key(self) -> str:
        config = {"profile": asdict(self.profile), "data": data_fingerprint(), "version": 1}
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]

    def folder(self) -> Path:
        return self.root / f"pretrained-{self.key()}"

    def backbone(self) -> TinyViT:
        p = self.profile
        return TinyViT(dim=p.dim, depth=p.depth, heads=p.heads, mlp=p.mlp)

    def pretrained(self) -> tuple[TinyViT, dict[str, nn.Linear]]:
        from safetensors.torch import load_file

        folder = self.folder()
        if not (folder / "provenance.json").exists():
            self._build(folder)
        backbone = self.backbone()
        backbone.load_state_dict(load_file(folder / "model.safetensors"))
        weights = load_file(folder / "heads.safetensors")
        heads = {}
        for task, classes in V.TASKS.items():
            head = nn.Linear(backbone.dim, classes)
            head.load_state_dict({"weight": weights[f"{task}.weight"], "bias": weights[f"{task}.bias"]})
            heads[task] = head.requires_grad_(False)
        return backbone.eval(), heads

    def _build(self, folder: Path) -> None:
        from safetensors.torch import save_file

        from reprolib.io import package_versions

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
        heads, probe = {}, {}
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
                    "probe_train_accuracy": probe, "seconds": round(time.perf_counter() - t0, 1),
                    "versions": package_versions(), "built": time.strftime("%Y-%m-%d")}
            (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
