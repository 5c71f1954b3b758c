"""Shared fixtures: a tiny HF Llama family (base, instruct, three experts) saved as safetensors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(2)


def tiny_config(**overrides):
    from transformers import LlamaConfig

    cfg = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
               tie_word_embeddings=False)
    cfg.update(overrides)
    return LlamaConfig(**cfg)


def save_family(root: Path, seed: int = 0, **overrides) -> dict[str, Path]:
    """base → instruct (small shift) → experts (instruct + distinct small shifts); HF folders."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = tiny_config(**overrides)
    base = LlamaForCausalLM(cfg).eval()
    paths = {}

    def save(name, model):
        paths[name] = root / name
        model.save_pretrained(paths[name])

    save("base", base)
    sd = base.state_dict()
    instruct_shift = {k: 0.02 * torch.randn_like(v) for k, v in sd.items()}
    instruct = LlamaForCausalLM(cfg)
    instruct.load_state_dict({k: v + instruct_shift[k] for k, v in sd.items()}, strict=False)
    save("instruct", instruct)
    for i, expert in enumerate(("math", "code", "ua")):
        m = LlamaForCausalLM(cfg)
        # experts share part of the instruction shift and add their own, so LATA cosines differ by layer
        share = torch.linspace(0.2, 0.9, cfg.num_hidden_layers)
        new = {}
        for k, v in sd.items():
            layer = int(k.split(".")[2]) if k.startswith("model.layers.") else 0
            new[k] = v + share[layer] * instruct_shift[k] + 0.02 * torch.randn_like(v)
        m.load_state_dict(new, strict=False)
        save(expert, m)
    return paths


@pytest.fixture(scope="session")
def family(tmp_path_factory) -> dict[str, Path]:
    return save_family(tmp_path_factory.mktemp("family"))


@pytest.fixture(scope="session")
def tied_family(tmp_path_factory) -> dict[str, Path]:
    return save_family(tmp_path_factory.mktemp("tied"), seed=1, tie_word_embeddings=True)


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """The ``tiny`` zoo profile, every group including the noise re-runs, built once per session."""
    from reprolib.zoo.build import GROUPS, Zoo

    zoo = Zoo("tiny", root=tmp_path_factory.mktemp("zoo"), progress=False)
    zoo.build(zoo.names(GROUPS))
    return zoo


@pytest.fixture(scope="module")
def seed(data) -> list[str]:
    """The seed text of the module's ``data`` (a published transcription), 1-based: ``seed[n]`` is
    line n; skips, saying where it looked, when ``../shared/seeds`` is absent."""
    from test_published_seed import seed_lines

    return seed_lines(data["seed_file"])
