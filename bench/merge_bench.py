"""Benchmark the streaming merge engine on three synthetic Llama-shaped bf16 checkpoints.

    python bench/merge_bench.py [--layers 16] [--methods task_arithmetic ties dare_ties] [--keep]

Writes a base and two "experts" (base + small noise) of ~1.9 GB each into bench/data/ (streamed,
never held in memory), then runs ``python -m reprolib merge`` once per method in a fresh process
and reads that process's own peak RSS from ``wait4``. Results go to bench/results/ as JSON and
Markdown with the machine's description. Timings vary run to run on shared machines; compare
methods only within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from reprolib.io import ShardedWriter  # noqa: E402


def llama_shapes(vocab: int, hidden: int, inter: int, layers: int) -> list[tuple[str, tuple[int, ...]]]:
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


def write_checkpoint(folder: Path, shapes, seed: int, noise: float, config: dict, rows_per_block: int = 1024) -> None:
    """Base (seed 0, N(0, 0.02)) or expert (base + noise · N(0, 0.02)), streamed block by block."""
    folder.mkdir(parents=True)
    writer = ShardedWriter(folder, [(n, torch.bfloat16, s) for n, s in shapes], max_shard_bytes=1 << 30)
    for ti, (name, shape) in enumerate(shapes):
        rows = shape[0]
        gb = torch.Generator().manual_seed(1000 + ti)
        ge = torch.Generator().manual_seed(10_000 * seed + ti)
        for r in range(0, rows, rows_per_block):
            n = min(rows_per_block, rows - r)
            block = torch.randn((n,) + shape[1:], generator=gb) * 0.02
            if noise:
                block += noise * 0.02 * torch.randn((n,) + shape[1:], generator=ge)
            writer.write(name, block.to(torch.bfloat16), last=r + n >= rows)
    writer.close()
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def run_measured(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh process; its own wall time, CPU times and peak RSS (from wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT.parent, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    if status != 0:
        raise SystemExit(f"merge failed ({cmd}):\n{err}")
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "user_s": round(usage.ru_utime, 1), "sys_s": round(usage.ru_stime, 1)}


def run_merge(cfg_path: Path, out: Path, extra: list[str]) -> dict:
    return run_measured([sys.executable, "-m", "reprolib", "merge", str(cfg_path), "--out", str(out),
                         "--no-progress", *extra])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--inter", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--methods", nargs="+", default=["task_arithmetic", "ties", "dare_ties"])
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--keep", action="store_true", help="keep bench/data for another run")
    args = ap.parse_args()

    shapes = llama_shapes(args.vocab, args.hidden, args.inter, args.layers)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": args.vocab,
              "hidden_size": args.hidden, "intermediate_size": args.inter, "num_hidden_layers": args.layers,
              "num_attention_heads": 16, "num_key_value_heads": 16, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16"}
    roles = {"base": (0, 0.0), "expert_a": (1, 0.05), "expert_b": (2, 0.05)}
    t0 = time.perf_counter()
    for role, (seed, noise) in roles.items():
        if not (args.data / role).exists():
            write_checkpoint(args.data / role, shapes, seed, noise, config)
    gen_s = time.perf_counter() - t0
    ckpt_bytes = sum(f.stat().st_size for f in (args.data / "base").glob("*.safetensors"))
    print(f"checkpoints: 3 × {ckpt_bytes / 1e9:.2f} GB (generated in {gen_s:.0f} s)")

    runs = {
        "task_arithmetic": {"parameters": {"lambda": 0.5}},
        "ties": {"parameters": {"density": 0.7, "lambda": 1.0}},
        "ties_global": {"merge_method": "ties", "parameters": {"density": 0.7, "topk_scope": "model"}},
        "dare_ties": {"parameters": {"drop_rate": 0.3, "density": 1.0}, "seed": 0},
        "dare_linear": {"parameters": {"drop_rate": 0.3}, "seed": 0},
    }
    # what the interpreter alone holds: Python + torch + reprolib imported, nothing merged
    baseline = run_measured([sys.executable, "-c", "import reprolib.merge.engine, reprolib.cli"])
    print(f"interpreter baseline: {baseline['peak_rss_mib']} MiB")
    results = []
    outdir = ROOT / "out"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir()
    for name in args.methods:
        cfg = {"merge_method": name, "base_model": str(args.data / "base"),
               "models": [{"model": str(args.data / "expert_a")}, {"model": str(args.data / "expert_b")}],
               "dtype": "bfloat16", **runs[name]}
        cfg_path = outdir / f"{name}.yaml"
        cfg_path.write_text(json.dumps(cfg))
        for hashing in (True, False):
            r = run_merge(cfg_path, outdir / f"{name}-{hashing}", [] if hashing else ["--no-hash"])
            r.update(method=name, hash_inputs=hashing,
                     rss_fraction_of_checkpoint=round(r["peak_rss_mib"] * 2**20 / ckpt_bytes, 3))
            print(json.dumps(r))
            results.append(r)
            shutil.rmtree(outdir / f"{name}-{hashing}")
    shutil.rmtree(outdir)

    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "python": platform.python_version(), "device": "cpu"}
    report = {"checkpoint_bytes": ckpt_bytes, "checkpoints": 3, "layers": args.layers, "machine": machine,
              "interpreter_baseline_rss_mib": baseline["peak_rss_mib"], "block_elems": 1 << 20,
              "date": time.strftime("%Y-%m-%d"), "results": results}
    res_dir = ROOT / "results"
    res_dir.mkdir(exist_ok=True)
    stem = f"merge_bench-{time.strftime('%Y%m%d')}-{os.cpu_count()}cpu"
    (res_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Merge benchmark {report['date']} ({machine['cpus']} CPUs, torch {machine['torch']})", "",
             f"Three synthetic Llama-shaped bf16 checkpoints of {ckpt_bytes / 1e9:.2f} GB each "
             f"({args.layers} layers, hidden {args.hidden}); output bf16; default blocks of 2^20 entries. "
             f"The interpreter alone (Python + torch + reprolib imported) peaks at {baseline['peak_rss_mib']} MiB.", "",
             "| method | sha256 of inputs | wall s | peak RSS MiB | RSS / checkpoint |", "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {'yes' if r['hash_inputs'] else 'no'} | {r['wall_s']} | {r['peak_rss_mib']} | "
              f"{r['rss_fraction_of_checkpoint']:.1%} |" for r in results]
    (res_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(args.data)


if __name__ == "__main__":
    main()
