"""A λ sweep over three task vectors: the kit's in-place sweep against independent merges.

    python bench/sweep_bench.py [--points 20] [--hidden 512] [--layers 8] [--eval-size 4]

Builds a random Llama family (base + three experts, float32, HF folders with a small byte-level
BPE tokenizer) under bench/data/sweep, then scores task arithmetic θ_base + λ Σ_i τ_i at ``points``
values of λ three ways, each in this process, each timed end to end (merge + load + evaluate):

* ``independent (files)``: per point, the streaming engine merges the checkpoints into a new HF
  folder (``reprolib.merge.merge``), the model is loaded from it and evaluated: what a user does
  with ``reprolib merge`` and no sweep API;
* ``independent (memory)``: per point, ``merge_state_dicts`` on state dicts read once, loaded into
  the model with ``load_state_dict``, evaluated (the chapters' path before the sweep API);
* ``in-place sweep``: ``Scorer.sweep``: the task vectors are prepared once and each point is
  written into the model's parameters in place, evaluated and cached (fresh cache).

The scores of every point must be identical across the three (the script exits non-zero if not).
Results to bench/results/sweep_bench-<date>-<ncpu>cpu.json with the machine and the split of each
path's time between merging and evaluating.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT.parent / "tests"))


def build_family(folder: Path, hidden: int, layers: int, vocab: int, n_experts: int = 3) -> dict[str, Path]:
    """Base (seeded random init) and experts θ_base + 0.02·N(0, 1) per entry, saved with the tokenizer."""
    from foreign import make_tokenizer, write_paper_profile
    from transformers import LlamaConfig, LlamaForCausalLM

    roles = {"base": folder / "base", "instruct": folder / "base",
             **{f"expert_{i}": folder / f"expert_{i}" for i in range(1, n_experts + 1)}}
    if all((p / "config.json").exists() for p in roles.values()):
        return roles, folder / "profile.yaml"
    shutil.rmtree(folder, ignore_errors=True)
    tok = make_tokenizer(vocab_size=vocab)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=int(2.75 * hidden), num_hidden_layers=layers,
                      num_attention_heads=max(1, hidden // 64), num_key_value_heads=max(1, hidden // 64),
                      max_position_embeddings=512, tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id)
    base = LlamaForCausalLM(cfg).eval()
    base.save_pretrained(roles["base"], safe_serialization=True)
    tok.save_pretrained(roles["base"])
    for i in range(1, n_experts + 1):
        g = torch.Generator().manual_seed(i)
        expert = LlamaForCausalLM(cfg).eval()
        expert.load_state_dict({k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in base.state_dict().items()})
        expert.save_pretrained(roles[f"expert_{i}"], safe_serialization=True)
        tok.save_pretrained(roles[f"expert_{i}"])
    return roles, write_paper_profile(folder / "profile.yaml", roles)


def _ppl(result: dict) -> tuple:
    """A point's perplexity and its per-item values (both must match across the paths)."""
    return result["scores"]["ppl"], json.dumps(result["items"]["ppl"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--eval-size", type=int, default=4, help="English items of the ppl evaluation")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "sweep")
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from tqdm.auto import tqdm

    from reprolib.cache import ResultCache
    from reprolib.evals.suite import evaluate
    from reprolib.kit import Scorer
    from reprolib.merge import MergeSpec, merge, merge_state_dicts
    from reprolib.models import Models
    from reprolib.zoo.report import eval_sets

    roles, profile = build_family(args.data / f"h{args.hidden}-l{args.layers}-v{args.vocab}", args.hidden, args.layers,
                                  args.vocab)
    experts = ["expert_1", "expert_2", "expert_3"]
    lambdas = [round(i / (args.points - 1), 6) for i in range(args.points)] if args.points > 1 else [0.5]
    sets = {"english": eval_sets(args.eval_size)["english"]}
    params = sum(v.numel() for v in Models(str(profile)).state_dict("base").values())
    print(f"model: {params / 1e6:.1f} M parameters (float32, {params * 4 / 1e6:.0f} MB per checkpoint); "
          f"{len(lambdas)} points; eval: ppl on {len(sets['english'])} English items")
    runs: dict[str, dict] = {}

    def record(name: str, scores: list, merge_s: float, eval_s: float, setup_s: float = 0.0) -> None:
        runs[name] = {"scores": scores, "merge_s": round(merge_s, 2), "eval_s": round(eval_s, 2),
                      "setup_s": round(setup_s, 2), "total_s": round(setup_s + merge_s + eval_s, 2)}
        print(f"{name:22s} total {setup_s + merge_s + eval_s:7.1f} s  (setup {setup_s:.1f}, merge+load {merge_s:.1f}, "
              f"eval {eval_s:.1f})")

    # 1. independent merges through checkpoint files
    models = Models(str(profile))
    tok = models.tokenizer("instruct")
    scores, merge_s, eval_s = [], 0.0, 0.0
    with tempfile.TemporaryDirectory(dir=args.data) as tmp:
        for i, lam in enumerate(tqdm(lambdas, desc="independent (files)")):
            t0 = time.perf_counter()
            out = Path(tmp) / f"point{i}"
            merge(MergeSpec("task_arithmetic", [str(roles[e]) for e in experts], base_model=str(roles["base"]),
                            params={"lambda": lam}), out, progress=False, hash_inputs=False)
            from transformers import AutoModelForCausalLM
            model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, use_safetensors=True).eval()
            t1 = time.perf_counter()
            scores.append(_ppl(evaluate(model, tok, sets, ["ppl"])))
            merge_s, eval_s = merge_s + t1 - t0, eval_s + time.perf_counter() - t1
            shutil.rmtree(out)
    record("independent (files)", scores, merge_s, eval_s)

    # 2. independent in-memory merges (state dicts read once)
    t0 = time.perf_counter()
    models = Models(str(profile))
    sd = models.state_dict
    model = models.load("instruct")
    inputs = [sd(e) for e in experts], sd("base")
    setup_s = time.perf_counter() - t0
    scores, merge_s, eval_s = [], 0.0, 0.0
    for lam in tqdm(lambdas, desc="independent (memory)"):
        t0 = time.perf_counter()
        merged, _ = merge_state_dicts("task_arithmetic", inputs[0], base=inputs[1], params={"lambda": lam})
        model.load_state_dict(merged, strict=False)
        t1 = time.perf_counter()
        scores.append(_ppl(evaluate(model, tok, sets, ["ppl"])))
        merge_s, eval_s = merge_s + t1 - t0, eval_s + time.perf_counter() - t1
    record("independent (memory)", scores, merge_s, eval_s, setup_s)

    # 3. the kit's in-place sweep (fresh cache; evaluation time measured inside the scorer's jobs)
    with tempfile.TemporaryDirectory(dir=args.data) as cache_dir:
        t0 = time.perf_counter()
        scorer = Scorer(Models(str(profile)), sets, ResultCache(Path(cache_dir)), {"size": args.eval_size})
        scorer.model  # noqa: B018  (load the model once, as the other paths do)
        setup_s = time.perf_counter() - t0
        import reprolib.kit.scorer as scorer_module
        timed = {"eval": 0.0}
        real_evaluate = scorer_module.evaluate

        def timed_evaluate(*a, **k):
            t = time.perf_counter()
            try:
                return real_evaluate(*a, **k)
            finally:
                timed["eval"] += time.perf_counter() - t

        scorer_module.evaluate = timed_evaluate
        try:
            t0 = time.perf_counter()
            results = scorer.sweep("task_arithmetic", experts, "base", [{"params": {"lambda": lam}} for lam in lambdas],
                                   metrics=["ppl"], desc="in-place sweep")
            total = time.perf_counter() - t0
        finally:
            scorer_module.evaluate = real_evaluate
    record("in-place sweep", [_ppl(r) for r in results], total - timed["eval"], timed["eval"], setup_s)

    reference = runs["independent (files)"]["scores"]
    identical = {name: r["scores"] == reference for name, r in runs.items()}
    base_total = runs["independent (files)"]["total_s"]
    speedups = {name: round(base_total / r["total_s"], 2) for name, r in runs.items()}
    merge_speedups = {name: round(runs["independent (files)"]["merge_s"] / max(r["setup_s"] + r["merge_s"], 1e-9), 2)
                      for name, r in runs.items()}
    print(f"identical per-item scores: {identical}")
    print(f"speed-up over independent (files), end to end: {speedups}; merging alone: {merge_speedups}")
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "python": platform.python_version(), "device": "cpu", "threads": args.threads}
    report = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "parameters": params, "points": lambdas,
              "eval_items": len(sets["english"]), "method": "task_arithmetic over 3 task vectors",
              "runs": {k: {**v, "scores": [s[0] for s in v["scores"]]} for k, v in runs.items()},
              "identical_scores": identical, "speedup_end_to_end": speedups, "speedup_merging": merge_speedups}
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"sweep_bench-{time.strftime('%Y%m%d')}-{os.cpu_count()}cpu.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0 if all(identical.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
