"""Regenerate the mergekit reference outputs in this folder.

Run with a Python that has mergekit installed (NOT the project's environment; mergekit is no
dependency of reprolib), from anywhere::

    python3 -m venv /tmp/mkvenv
    /tmp/mkvenv/bin/pip install mergekit          # or: --no-deps mergekit immutables sentencepiece protobuf
                                                  # with the project's site-packages on a .pth for torch & co.
    /tmp/mkvenv/bin/python tests/data/mergekit/record.py

It (1) writes four tiny deterministic Llama checkpoints to ``models/`` (base and three experts:
base + small Gaussian shifts of different sizes, float32), (2) runs ``mergekit-yaml`` on every
``configs/*.yaml`` with this folder as the working directory (the configs name the models by
relative path, exactly as written), and (3) stores each merged state dict as
``outputs/<config>.safetensors`` and the versions, command and file hashes in ``manifest.json``.
tests/test_mergekit_reference.py merges the same YAML files with reprolib and compares.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent

CONFIG = {  # a LlamaForCausalLM small enough to keep the whole fixture under 200 KB
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 16, "hidden_size": 8,
    "intermediate_size": 12, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
    "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "torch_dtype": "float32",
}
# expert → (generator seed, size of its shift from the base): different sizes, so weighted and
# unweighted sign elections disagree on some entries
EXPERTS = {"expert_a": (1, 0.02), "expert_b": (2, 0.03), "expert_c": (3, 0.015)}


def shapes() -> dict[str, tuple[int, ...]]:
    h, i, v = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"]
    kv = h // CONFIG["num_attention_heads"] * CONFIG["num_key_value_heads"]
    out = {"model.embed_tokens.weight": (v, h)}
    for n in range(CONFIG["num_hidden_layers"]):
        p = f"model.layers.{n}."
        out.update({p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                    p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
                    p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
                    p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
                    p + "mlp.down_proj.weight": (h, i)})
    out.update({"model.norm.weight": (h,), "lm_head.weight": (v, h)})
    return out


def write_models(root: Path) -> None:
    g = torch.Generator().manual_seed(0)
    base = {}
    for name, shape in shapes().items():
        x = 0.1 * torch.randn(shape, generator=g)
        base[name] = (1.0 + x) if name.endswith("norm.weight") else x
    models = {"base": base}
    for expert, (seed, size) in EXPERTS.items():
        g = torch.Generator().manual_seed(seed)
        models[expert] = {k: v + size * torch.randn(v.shape, generator=g) for k, v in base.items()}
    for name, sd in models.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(CONFIG, indent=2, sort_keys=True) + "\n")
        save_file({k: v.contiguous() for k, v in sd.items()}, str(d / "model.safetensors"), metadata={"format": "pt"})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mergekit-yaml", default=str(Path(sys.executable).with_name("mergekit-yaml")),
                    help="the mergekit-yaml executable (default: next to this Python)")
    ap.add_argument("--keep-models", action="store_true", help="do not rewrite models/")
    args = ap.parse_args()
    from importlib.metadata import version

    if not args.keep_models:
        write_models(HERE / "models")
    out_dir = HERE / "outputs"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    flags = ["--random-seed", "0", "--quiet", "--no-cuda", "--no-write-model-card"]
    runs = {}
    for cfg in sorted((HERE / "configs").glob("*.yaml")):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [args.mergekit_yaml, f"configs/{cfg.name}", str(Path(tmp) / "out"), *flags]
            proc = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
            if proc.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
            merged = {}
            for f in sorted((Path(tmp) / "out").glob("*.safetensors")):
                merged.update(load_file(str(f)))
        target = out_dir / f"{cfg.stem}.safetensors"
        save_file({k: merged[k].contiguous() for k in sorted(merged)}, str(target))
        runs[cfg.stem] = {"config": f"configs/{cfg.name}", "config_sha256": sha256(cfg),
                          "output": f"outputs/{target.name}", "output_sha256": sha256(target)}
        print(f"{cfg.stem}: {len(merged)} tensors")
    manifest = {
        "mergekit": version("mergekit"), "torch": torch.__version__, "transformers": version("transformers"),
        "python": platform.python_version(),
        "command": "cd tests/data/mergekit && mergekit-yaml configs/<name>.yaml <tmp>/out " + " ".join(flags),
        "regenerate": "python tests/data/mergekit/record.py  (with mergekit installed; see its docstring)",
        "models": {name: sha256(HERE / "models" / name / "model.safetensors") for name in ["base", *EXPERTS]},
        "runs": runs,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
