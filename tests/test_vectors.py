"""reprolib.vectors: parameter names → layer groups (layer_of), layer ordering (sort_layers) and
per-layer cosines of task vectors (LayerCosine, layer_cosines), against hand-worked cases."""

from __future__ import annotations

import math

import pytest
import torch

from reprolib.vectors import LayerCosine, layer_cosines, layer_of, sort_layers


@pytest.mark.parametrize("name,layer", [
    ("model.layers.12.self_attn.q_proj.weight", "layers.12"),          # Llama / Mistral / Gemma-2
    ("model.layers.0.pre_feedforward_layernorm.weight", "layers.0"),   # Gemma-2
    ("transformer.h.3.attn.c_attn.weight", "h.3"),                     # GPT-2
    ("encoder.block.5.layer.0.SelfAttention.q.weight", "encoder.block.5"),  # T5
    ("decoder.block.5.layer.1.EncDecAttention.k.weight", "decoder.block.5"),
    ("vit.encoder.layer.11.attention.attention.query.weight", "vit.encoder.layer.11"),  # ViT
    ("bert.encoder.layer.3.output.dense.weight", "bert.encoder.layer.3"),  # BERT
    ("transformer.blocks.4.attn.Wqkv.weight", "blocks.4"),  # MPT
    ("blocks.2.mlp.fc1.weight", "blocks.2"),  # timm
    ("text_model.encoder.layers.3.mlp.fc1.weight", "text_model.encoder.layers.3"),  # CLIP text
    ("vision_model.encoder.layers.3.mlp.fc1.weight", "vision_model.encoder.layers.3"),  # CLIP vision
    ("model.embed_tokens.weight", "embed"),
    ("transformer.wte.weight", "embed"),
    ("transformer.wpe.weight", "embed"),
    ("shared.weight", "embed"),
    ("vit.embeddings.patch_embeddings.projection.weight", "embed"),
    ("lm_head.weight", "head"),
    ("classifier.weight", "head"),
    ("model.norm.weight", "other"),
    ("transformer.ln_f.bias", "other"),
])
def test_layer_of(name, layer):
    assert layer_of(name) == layer


def test_sort_layers_orders_blocks_numerically():
    assert sort_layers(["layers.10", "embed", "layers.2", "head", "other", "layers.1"]) == [
        "layers.1", "layers.2", "layers.10", "embed", "head", "other"]
    assert sort_layers(["encoder.block.1", "decoder.block.0", "encoder.block.0"]) == [
        "decoder.block.0", "encoder.block.0", "encoder.block.1"]


def test_layer_cosine_hand_worked():
    acc = LayerCosine()
    acc.add("model.layers.0.a", torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    acc.add("model.layers.1.a", torch.tensor([1.0, 2.0]), torch.tensor([-2.0, 1.0]))
    # two tensors of one layer are concatenated: [3, 0 | 0, 4] · [3, 0 | 0, 4] / 25 = 1
    acc.add("model.layers.2.a", torch.tensor([3.0, 0.0]), torch.tensor([3.0, 0.0]))
    acc.add("model.layers.2.b", torch.tensor([0.0, 4.0]), torch.tensor([0.0, 4.0]))
    acc.add("model.layers.3.a", torch.zeros(2), torch.ones(2))
    cos = acc.cosines()
    assert cos["layers.0"] == pytest.approx(1 / math.sqrt(2))
    assert cos["layers.1"] == 0.0
    assert cos["layers.2"] == pytest.approx(1.0)
    assert cos["layers.3"] == 0.0


def test_layer_cosines_of_state_dicts_matches_accumulator():
    a = {"model.layers.0.w": torch.tensor([1.0, 0.0]), "model.layers.1.w": torch.tensor([1.0, 2.0])}
    b = {"model.layers.0.w": torch.tensor([1.0, 1.0]), "model.layers.1.w": torch.tensor([-2.0, 1.0])}
    assert layer_cosines(a, b) == {"layers.0": pytest.approx(1 / math.sqrt(2)), "layers.1": 0.0}
