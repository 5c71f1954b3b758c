"""The code sandbox, measured: wall time of sandboxed pass@1 checks (the zoo's code tasks, each answer
once as written, which passes, and once broken, which fails, one after another as the code metric
runs them) and the hostile-program suite of tests/hostile.py, in every isolation this machine has.

    python bench/sandbox_bench.py [--n 40] [--before REF] [--zoo-role code] [--out bench/results/sandbox.json]

``--before REF`` also times the sandbox.py of git revision REF (e.g. the audit-hook sandbox before
issue 11), interleaved with today's, on the same programs; ``--zoo-role`` times the book's whole code
metric (greedy generation by that mini-zoo model, then the sandboxed checks) with each sandbox.
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


def load_revision(ref: str):
    """sandbox.py as it was at git revision ``ref``, imported as its own module."""
    import importlib.util
    import subprocess
    import tempfile

    source = subprocess.run(["git", "show", f"{ref}:reprolib/evals/sandbox.py"], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    path = Path(tempfile.mkdtemp()) / "sandbox_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("sandbox_before", path)
    module = sys.modules["sandbox_before"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(runs, before, rounds: int = 3) -> dict:
    """Best-of-``rounds`` wall time of the same checks with the old and today's sandbox, interleaved."""
    times = {"before": [], "after": []}
    for _ in range(rounds):
        for name, run in (("before", before.run_tests), ("after", sandbox.run_tests)):
            t0 = time.monotonic()
            verdicts = [run(solution, tests).passed for solution, tests, _ in runs]
            times[name].append(time.monotonic() - t0)
            assert sum(verdicts) == sum(r[2] for r in runs), (name, sum(verdicts))
    best = {k: min(v) for k, v in times.items()}
    return {"before_s": round(best["before"], 3), "after_s": round(best["after"], 3),
            "ratio": round(best["after"] / best["before"], 2), "isolation": sandbox.isolation()}


def end_to_end(role: str, n: int, before) -> dict:
    """The book's code metric on a mini-zoo model (generation + checks), old sandbox vs today's."""
    from reprolib.evals import generate
    from reprolib.models import Models

    models = Models("mini")
    model, tok = models.load(role), models.tokenizer(role)
    tasks = code_tasks(n, seed=0, split="test")
    times, scores = {}, {}
    for name, run in (("before", before.run_tests), ("after", sandbox.run_tests), ("before_again", before.run_tests),
                      ("after_again", sandbox.run_tests)):
        generate._VERDICTS.clear()
        generate.run_tests = run
        t0 = time.monotonic()
        scores[name], _ = generate.code_pass_at_1(model, tok, tasks)
        times[name] = time.monotonic() - t0
    generate.run_tests = sandbox.run_tests
    before_s, after_s = min(times["before"], times["before_again"]), min(times["after"], times["after_again"])
    return {"role": role, "programs": n, "before_s": round(before_s, 2), "after_s": round(after_s, 2),
            "ratio": round(after_s / before_s, 2), "pass_at_1": {k: round(v, 3) for k, v in scores.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", default=None)
    ap.add_argument("--before", default=None, help="git revision whose sandbox.py to compare with")
    ap.add_argument("--zoo-role", default=None, help="also time the whole code metric with this mini-zoo model")
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
    if args.before:
        before = load_revision(args.before)
        report["before"] = {"revision": args.before, "pass_at_1_checks": compare(runs, before)}
        if args.zoo_role:
            report["before"]["code_metric"] = end_to_end(args.zoo_role, args.n, before)
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
