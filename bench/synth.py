"""Synthetic Llama-shaped HF checkpoints for the benchmarks, written block by block (never held in memory).

A *family* is a base (N(0, 0.02) entries) and experts (base + noise · N(0, 0.02)); every tensor's
entries come from a seeded generator, so the same arguments give the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reprolib.io import ShardedWriter  # noqa: E402

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


def llama_shapes(vocab: int, hidden: int, inter: int, layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """Tensor names and shapes of a Llama model (untied head, no biases), in HF's naming."""
    shapes = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", (hidden,))]
        shapes += [(p + f"self_attn.{n}_proj.weight", (hidden, hidden)) for n in "qkvo"]
        shapes += [(p + "post_attention_layernorm.weight", (hidden,))]
        shapes += [(p + f"mlp.{n}_proj.weight", (inter, hidden)) for n in ("gate", "up")]
        shapes += [(p + "mlp.down_proj.weight", (hidden, inter))]
    shapes += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return shapes


def llama_config(vocab: int, hidden: int, inter: int, layers: int, dtype: str = "bfloat16") -> dict:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
            "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
            "num_attention_heads": max(1, hidden // 128), "num_key_value_heads": max(1, hidden // 128),
            "tie_word_embeddings": False, "torch_dtype": dtype, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 2048}


def write_checkpoint(folder: Path, shapes, seed: int, noise: float, config: dict, rows_per_block: int = 1024,
                     dtype: torch.dtype = torch.bfloat16, max_shard_bytes: int = 1 << 30) -> None:
    """Base (seed 0, N(0, 0.02)) or expert (base + noise · N(0, 0.02)), streamed block by block."""
    folder.mkdir(parents=True)
    writer = ShardedWriter(folder, [(n, dtype, s) for n, s in shapes], max_shard_bytes=max_shard_bytes)
    for ti, (name, shape) in enumerate(shapes):
        rows = shape[0]
        gb = torch.Generator().manual_seed(1000 + ti)
        ge = torch.Generator().manual_seed(10_000 * seed + ti)
        for r in range(0, rows, rows_per_block):
            n = min(rows_per_block, rows - r)
            block = torch.randn((n,) + shape[1:], generator=gb) * 0.02
            if noise:
                block += noise * 0.02 * torch.randn((n,) + shape[1:], generator=ge)
            writer.write(name, block.to(dtype), last=r + n >= rows)
    writer.close()
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def layers_for(target_bytes: float, vocab: int, hidden: int, inter: int, itemsize: int) -> int:
    """The number of layers that brings a checkpoint closest to ``target_bytes`` (at least 1)."""
    fixed = 2 * vocab * hidden + hidden
    per_layer = 4 * hidden * hidden + 3 * inter * hidden + 2 * hidden
    return max(1, round((target_bytes / itemsize - fixed) / per_layer))


def family(root: Path, n_experts: int, vocab: int, hidden: int, inter: int, layers: int,
           dtype: str = "bfloat16") -> dict[str, Path]:
    """Base and ``n_experts`` experts under ``root`` (reused when already there); role → folder."""
    shapes = llama_shapes(vocab, hidden, inter, layers)
    config = llama_config(vocab, hidden, inter, layers, dtype)
    paths = {}
    for i in range(n_experts + 1):
        role = "base" if i == 0 else f"expert_{i}"
        paths[role] = root / role
        if not (paths[role] / "config.json").exists():
            import shutil
            shutil.rmtree(paths[role], ignore_errors=True)
            write_checkpoint(paths[role], shapes, i, 0.0 if i == 0 else 0.05, config, dtype=DTYPES[dtype])
    return paths
