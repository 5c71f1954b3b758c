"""LATA layer grouping, cosines, ranks and weights; M³ draws and merges: against hand-worked cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from reprolib.errors import ConfigError
from reprolib.io import Checkpoint
from reprolib.merge import MergeSpec, merge
from reprolib.merge import methods as M
from reprolib.vectors import LayerCosine, layer_of, sort_layers


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


def test_lata_ranks_and_weights_hand_worked():
    cos = {"layers.0": 0.9, "layers.1": 0.2, "layers.2": 0.5, "layers.3": 0.95}
    # most similar (layers.3) → rank 1 … least similar (layers.1) → rank L = 4
    assert M.lata_ranks(cos) == {"layers.3": 1, "layers.0": 2, "layers.2": 3, "layers.1": 4}
    assert M.lata_layer_weights(cos, "linear") == {"layers.3": 0.25, "layers.0": 0.5, "layers.2": 0.75, "layers.1": 1.0}
    log = M.lata_layer_weights(cos, "log")
    assert log["layers.3"] == 0.0 and log["layers.1"] == 1.0
    assert log["layers.0"] == pytest.approx(0.5) and log["layers.2"] == pytest.approx(math.log(3) / math.log(4))
    assert M.lata_layer_weights(cos, "threshold", sigma=0.9) == {"layers.0": 0.0, "layers.1": 1.0, "layers.2": 1.0, "layers.3": 0.0}
    # equal cosines: earlier layer gets the lower rank
    assert M.lata_ranks({"layers.0": 0.5, "layers.1": 0.5}) == {"layers.0": 1, "layers.1": 2}


def _sd(p):
    return Checkpoint(p).state_dict()


def test_lata_merge_end_to_end(family, tmp_path):
    """Cosines in provenance equal a direct computation; each tensor is θ_pre + λ_i w_layer (θ_ft − θ_pre)."""
    spec = MergeSpec("lata", [str(family["math"])], base_model=str(family["base"]),
                     instruct_model=str(family["instruct"]), params={"scheme": "linear", "lambda": 1.0})
    out = merge(spec, tmp_path / "lata", progress=False)
    stats = json.loads((out / "provenance.json").read_text())["statistics"]
    base, instr, ft, merged = _sd(family["base"]), _sd(family["instruct"]), _sd(family["math"]), _sd(out)
    blocks = sorted({int(n.split(".")[2]) for n in base if n.startswith("model.layers.")})
    direct = {}
    for i in blocks:
        names = [n for n in base if n.startswith(f"model.layers.{i}.")]
        comp = torch.cat([(ft[n] - base[n]).double().reshape(-1) for n in names])
        ins = torch.cat([(instr[n] - base[n]).double().reshape(-1) for n in names])
        direct[f"layers.{i}"] = float(torch.nn.functional.cosine_similarity(comp, ins, dim=0))
    for layer, c in direct.items():
        assert stats["layer_cosines"][0][layer] == pytest.approx(c, abs=1e-9)
    # the fixture makes deeper layers share more of the instruction shift → more similar → lower rank
    ranks = M.lata_ranks(direct)
    assert ranks == {f"layers.{i}": len(blocks) - i for i in blocks}
    for n in base:
        layer = layer_of(n)
        w = ranks[layer] / len(blocks) if layer.startswith("layers.") else 0.0  # non_block: drop (default)
        assert stats["layer_weights"][0][layer] == pytest.approx(w)
        expected = instr[n] + w * (ft[n] - instr[n])
        assert torch.allclose(merged[n], expected, atol=1e-6), n


def test_lata_forgetting_subtracts_pure_vector(family, tmp_path):
    spec = MergeSpec("lata", [str(family["ua"])], base_model=str(family["base"]), instruct_model=str(family["instruct"]),
                     target_model=str(family["code"]), model_params=[{"weight": -1.0}],
                     params={"scheme": "threshold", "sigma": 0.5})
    out = merge(spec, tmp_path / "forget", progress=False)
    weights = json.loads((out / "provenance.json").read_text())["statistics"]["layer_weights"][0]
    code, instr, ua, merged = _sd(family["code"]), _sd(family["instruct"]), _sd(family["ua"]), _sd(out)
    assert set(weights.values()) <= {0.0, 1.0}
    for n in code:
        assert torch.allclose(merged[n], code[n] - weights[layer_of(n)] * (ua[n] - instr[n]), atol=1e-6)


def test_pseries_hand_worked():
    assert M.pseries_lambdas(3, 1.0) == pytest.approx([6 / 11, 3 / 11, 2 / 11])
    assert M.pseries_lambdas(3, 0.0) == pytest.approx([1 / 3] * 3)
    assert M.pseries_lambdas(2, 2.0) == pytest.approx([0.8, 0.2])


@pytest.mark.parametrize("alpha", [0.2, 1.0, 5.0])
def test_beta_draws_follow_beta_alpha_alpha(alpha):
    draws = np.array([M.m3_beta_lambda(alpha, seed) for seed in range(4000)])
    assert abs(draws.mean() - 0.5) < 0.02
    assert abs(draws.var() - 1 / (4 * (2 * alpha + 1))) < 0.01
    middle = np.mean((draws > 0.1) & (draws < 0.9))
    if alpha < 1:
        assert middle < 0.6   # bimodal: mass near the axes of single task vectors
    if alpha > 1:
        assert middle > 0.95  # unimodal around the mean direction
    assert M.m3_beta_lambda(alpha, 3) == M.m3_beta_lambda(alpha, 3)
    assert M.m3_beta_lambda(alpha, 3) != M.m3_beta_lambda(alpha, 4)


def test_m3_ties_disjoint_interpolation_hand_worked():
    a = torch.tensor([2.0, 1.0, -3.0, 0.5])
    b = torch.tensor([4.0, -1.0, 1.0, 0.0])
    # no trim (density 1): signs elected [+, +(0 → +), -, +]; agree a [T, T, T, T]; b [T, F, F, F]
    out = M.m3_ties(torch.zeros(4), [a, b], [0.25, 0.75], scale=1.0)
    assert torch.allclose(out, torch.tensor([0.25 * 2 + 0.75 * 4, 1.0, -3.0, 0.5]))
    assert torch.allclose(M.m3_ties(torch.zeros(4), [a, b], [0.25, 0.75], scale=2.0), 2 * out)


def test_m3_merge_end_to_end(family, tmp_path):
    spec = MergeSpec("m3", [str(family["math"]), str(family["code"])], base_model=str(family["base"]),
                     params={"alpha": 0.5, "scale": 2.0}, seed=9)
    out = merge(spec, tmp_path / "m3", progress=False)
    lambdas = json.loads((out / "provenance.json").read_text())["statistics"]["lambdas"]
    lam = M.m3_beta_lambda(0.5, 9)
    assert lambdas == [lam, 1.0 - lam]
    base, a, b, merged = _sd(family["base"]), _sd(family["math"]), _sd(family["code"]), _sd(out)
    for n in base:
        expected = base[n] + 2.0 * (lam * (a[n] - base[n]) + (1 - lam) * (b[n] - base[n]))
        assert torch.allclose(merged[n], expected, atol=1e-6), n


@pytest.mark.parametrize("method,models,params,needle", [
    ("m3", 3, {"direction": "beta"}, "two models"),
    ("m3", 3, {"interpolation": 0.3}, "interpolation"),
    ("m3", 2, {"alpha": 0.0}, "alpha"),
    ("m3", 2, {"density": 0.5}, "combine"),
    ("lata", 2, {"drop_rate": 0.2}, "drop_rate"),
    ("lata", 2, {"sigma": 1.5}, "sigma"),
    ("lata", 2, {"scheme": "cubic"}, "scheme"),
])
def test_lata_m3_bad_parameters(family, tmp_path, method, models, params, needle):
    spec = MergeSpec(method, [str(family[e]) for e in ("math", "code", "ua")[:models]], base_model=str(family["base"]),
                     instruct_model=str(family["instruct"]) if method == "lata" else None, params=params)
    with pytest.raises(ConfigError, match=needle):
        merge(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_layer_cosines_of_state_dicts_matches_accumulator():
    from reprolib.vectors import layer_cosines

    a = {"model.layers.0.w": torch.tensor([1.0, 0.0]), "model.layers.1.w": torch.tensor([1.0, 2.0])}
    b = {"model.layers.0.w": torch.tensor([1.0, 1.0]), "model.layers.1.w": torch.tensor([-2.0, 1.0])}
    assert layer_cosines(a, b) == {"layers.0": pytest.approx(1 / math.sqrt(2)), "layers.1": 0.0}
