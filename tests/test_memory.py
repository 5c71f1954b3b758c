"""Peak memory of a streaming merge does not grow with the size of the checkpoints."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_synth", ROOT / "bench" / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _family(bench, root: Path, layers: int) -> dict[str, Path]:
    shapes = bench.llama_shapes(vocab=4096, hidden=512, inter=1024, layers=layers)
    config = {"model_type": "llama", "num_hidden_layers": layers, "hidden_size": 512, "vocab_size": 4096}
    paths = {}
    for role, (seed, noise) in {"base": (0, 0.0), "a": (1, 0.05), "b": (2, 0.05)}.items():
        paths[role] = root / role
        bench.write_checkpoint(paths[role], shapes, seed, noise, config)
    return paths


def _peak_rss(paths: dict[str, Path], out: Path, method: str, params: dict) -> int:
    cfg = out.parent / f"{out.name}.json"
    cfg.write_text(json.dumps({"merge_method": method, "base_model": str(paths["base"]),
                               "models": [str(paths["a"]), str(paths["b"])], "parameters": params}))
    proc = subprocess.Popen([sys.executable, "-m", "reprolib", "merge", str(cfg), "--out", str(out),
                             "--no-progress", "--block-elems", str(1 << 16)], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    assert status == 0
    return usage.ru_maxrss * 1024


def test_peak_rss_flat_in_model_size(tmp_path):
    bench = _bench()
    small = _family(bench, tmp_path / "small", layers=1)
    large = _family(bench, tmp_path / "large", layers=16)
    size = lambda p: sum(f.stat().st_size for f in p.glob("*.safetensors"))  # noqa: E731
    grown = size(large["base"]) - size(small["base"])
    assert grown > 60 * 2**20  # the large family is ~80 MB bigger per checkpoint (×3 inputs, ×1 output)
    for method, params in (("ties", {"density": 0.5}), ("dare_ties", {"drop_rate": 0.3, "density": 0.9})):
        rss_small = _peak_rss(small, tmp_path / f"{method}-small", method, params)
        rss_large = _peak_rss(large, tmp_path / f"{method}-large", method, params)
        # reading everything into memory would add ≥ 3 × grown; streaming adds (almost) nothing
        assert rss_large - rss_small < 0.1 * grown, (method, rss_small, rss_large, grown)
