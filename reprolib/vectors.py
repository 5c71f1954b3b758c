"""Task vectors and layer grouping by parameter name.

A *layer* is one transformer block, parsed from the parameter name:

=========================  ==============================================  ======================
family                     example parameter                               layer key
=========================  ==============================================  ======================
Llama / Gemma-2 / Mistral  ``model.layers.7.mlp.up_proj.weight``            ``layers.7``
GPT-2                      ``transformer.h.7.attn.c_attn.weight``           ``h.7``
MPT / timm                 ``transformer.blocks.7.attn.Wqkv.weight``        ``blocks.7``
T5                         ``encoder.block.7.layer.0.SelfAttention.q``      ``encoder.block.7``
ViT / BERT                 ``vit.encoder.layer.7.attention.query``          ``vit.encoder.layer.7``
CLIP                       ``text_model.encoder.layers.7.mlp.fc1.weight``   ``text_model.encoder.layers.7``
=========================  ==============================================  ======================

The key is the name up to the first ``<layers|h|blocks|block|layer>.<N>``, with a leading
``model.`` or ``transformer.`` dropped, so separate stacks (T5 encoder/decoder, CLIP text/vision)
stay separate layers.

Parameters outside the blocks form three explicit groups: ``embed`` (token/position embeddings,
``embed_tokens``, ``wte``, ``wpe``, ``shared``, ``embeddings``), ``head`` (``lm_head``, classifier)
and ``other`` (final norms and anything else). How each merge method treats these groups is
written in its docstring (LATA drops them by default: see ``non_block`` in the ``lata`` registry entry).
"""

from __future__ import annotations

import math
import re

import torch

_BLOCK = re.compile(r"^(?P<prefix>(?:[^.]+\.)*?)(?P<kind>layers|h|blocks|block|layer)\.(?P<idx>\d+)(?:\.|$)")
_STRIP = ("model.", "transformer.")
_EMBED = re.compile(r"(embed_tokens|embed_positions|\bwte\b|\bwpe\b|\bshared\b|embeddings|word_embeddings)")
_HEAD = re.compile(r"(^|\.)(lm_head|classifier|score|head)(\.|$)")


def layer_of(name: str) -> str:
    """Group key of a parameter: ``'<stack.>kind.N'`` for a block, else ``embed``/``head``/``other``."""
    m = _BLOCK.match(name)
    if m:
        prefix = m.group("prefix")
        if prefix in _STRIP:
            prefix = ""
        return f"{prefix}{m.group('kind')}.{int(m.group('idx'))}"
    if _EMBED.search(name):
        return "embed"
    if _HEAD.search(name):
        return "head"
    return "other"


def is_block(layer: str) -> bool:
    return layer not in ("embed", "head", "other")


def block_index(layer: str) -> int:
    return int(layer.rsplit(".", 1)[1])


def sort_layers(layers) -> list[str]:
    """Blocks first in stack/depth order, then embed, head, other."""
    special = ["embed", "head", "other"]

    def key(layer: str):
        if is_block(layer):
            return (0, layer.rsplit(".", 1)[0], block_index(layer))
        return (1, "", special.index(layer))

    return sorted(set(layers), key=key)


def task_vector(finetuned: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """τ = θ_ft − θ_base (task vector, Ilharco et al. 2023 §2; LATA eq. 5 with θ_base, eq. 7 with θ_pre)."""
    return finetuned - base


class LayerCosine:
    """Accumulates per-layer ⟨a, b⟩, ‖a‖², ‖b‖² in float64 over tensors (or row blocks of them).

    ``cosines()`` returns cos(a_l, b_l) = ⟨a_l, b_l⟩ / (‖a_l‖ ‖b_l‖) with each layer's parameters
    concatenated into one vector, rounded to 12 decimals: float summation order (block size, thread
    count) moves the last bits, and rounding keeps ranks, thresholds and provenance identical.
    A layer whose vectors are both zero gets cosine 1.0 (identical); one zero vector against a
    non-zero one gets 0.0.
    """

    def __init__(self) -> None:
        self.dot: dict[str, float] = {}
        self.aa: dict[str, float] = {}
        self.bb: dict[str, float] = {}

    def add(self, name: str, a: torch.Tensor, b: torch.Tensor) -> None:
        layer = layer_of(name)
        a64, b64 = a.double().reshape(-1), b.double().reshape(-1)
        self.dot[layer] = self.dot.get(layer, 0.0) + float(a64 @ b64)
        self.aa[layer] = self.aa.get(layer, 0.0) + float(a64 @ a64)
        self.bb[layer] = self.bb.get(layer, 0.0) + float(b64 @ b64)

    def cosines(self) -> dict[str, float]:
        out = {}
        for layer in sort_layers(self.dot):
            na, nb = math.sqrt(self.aa[layer]), math.sqrt(self.bb[layer])
            if na == 0.0 and nb == 0.0:
                out[layer] = 1.0
            elif na == 0.0 or nb == 0.0:
                out[layer] = 0.0
            else:
                out[layer] = round(self.dot[layer] / (na * nb), 12)
        return out


def layer_cosines(vectors_a: dict[str, torch.Tensor], vectors_b: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-layer cosine between two task vectors given as state dicts (LATA eq. 6)."""
    acc = LayerCosine()
    for name, a in vectors_a.items():
        acc.add(name, a, vectors_b[name])
    return acc.cosines()
