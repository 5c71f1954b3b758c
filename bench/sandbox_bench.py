"""The code sandbox, measured: wall time of sandboxed pass@1 checks (the zoo's code tasks, each answer
once as written, which passes, and once broken, which fails, one after another as the code metric
runs them) and the hostile-program suite of tests/hostile.py, in every isolation this machine has.

    python bench/sandbox_bench.py [--n 40] [--out bench/results/sandbox.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from reprolib.evals import sandbox
from reprolib.zoo.data import code_tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import hostile  # noqa: E402


def timing(runs: list[tuple[str, str, bool]], mode: str) -> dict:
    seconds, verdicts = [], []
    t_all = time.monotonic()
    for solution, tests, _ in runs:
        t0 = time.monotonic()
        verdicts.append(sandbox.run_tests(solution, tests, mode=mode).passed)
        seconds.append(time.monotonic() - t0)
    return {"programs": len(runs), "total_s": round(time.monotonic() - t_all, 3),
            "median_s": round(statistics.median(seconds), 4), "max_s": round(max(seconds), 4),
            "passed": sum(verdicts), "expected_passes": sum(r[2] for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    tasks = code_tasks(args.n, seed=0, split="test")
    runs = [(t.answer, t.meta["tests"], True) for t in tasks]
    runs += [(t.answer.replace("return ", "return 1 + ", 1), t.meta["tests"], False) for t in tasks]
    report = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "as_root": os.geteuid() == 0, "describe": sandbox.describe(), "modes": {}}
    for mode in ("bubblewrap", "root-fallback"):
        try:
            sandbox.isolation(mode)
        except sandbox.SandboxUnavailable as e:
            report["modes"][mode] = {"unavailable": str(e)}
            continue
        suite = hostile.run_suite(sandbox.run_tests, mode)
        report["modes"][mode] = {"pass_at_1": timing(runs, mode), "hostile_programs": len(suite),
                                 "escapes": [r for r in suite if r["escape"]],
                                 "statuses": {r["name"]: r["status"] for r in suite}}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
