"""The vision zoo's model: a small ViT for 16 × 16 grey images, and its per-task classification heads.

``TinyViT`` cuts an image into 4 × 4 patches (16 tokens), adds a class token and learned positions,
and runs ``depth`` pre-norm transformer blocks. Attention is written out (softmax(QKᵀ/√d)V), not a
fused kernel, so forward-mode AD (the τJp JVPs) works through it. ``Classifier`` is the backbone
with one task's linear head: f(x) = W_t · backbone(x) + b_t, the head frozen, as the paper freezes
CLIP's zero-shot text heads, so a task vector lives in the backbone only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """Backbone: images [B, 1, size, size] → features [B, dim] (the class token after a final norm)."""

    def __init__(self, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128, patch: int = 4, size: int = 16):
        super().__init__()
        if size % patch or dim % heads:
            raise ValueError(f"TinyViT: size {size} must be a multiple of patch {patch}, dim {dim} of heads {heads}")
        self.patch = patch
        self.embed = nn.Linear(patch * patch, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, (size // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.dim = dim

    def forward(self, images: Tensor) -> Tensor:
        b, p = images.shape[0], self.patch
        patches = images.unfold(2, p, p).unfold(3, p, p).reshape(b, -1, p * p)
        x = torch.cat([self.cls.expand(b, -1, -1), self.embed(patches)], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 0])


class Classifier(nn.Module):
    """A backbone with one task's head (``head`` is frozen: only the backbone trains)."""

    def __init__(self, backbone: TinyViT, head: nn.Linear):
        super().__init__()
        self.backbone, self.head = backbone, head
        for p in self.head.parameters():
            p.requires_grad_(False)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(images))
