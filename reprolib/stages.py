"""``make book`` as a graph of stages, each logged and timed, one at a time or several side by side.

    python -m reprolib.stages --profile mini [--lanes N] [--force] [--dry-run]

A stage is one command: a group of zoo models, a vision or text zoo, one chapter notebook, the HTML.
It starts once the stages whose outputs it reads have finished; among the stages ready to start, the
one heading the longest remaining chain (by the durations recorded last time, else the estimates
below) goes first. ``lanes`` stages run at once (default 1), each given ``cores // lanes`` threads, or
every core when nothing else is ready or running. One lane is the default because on the 2-core
machine two lanes were slower: the language zoo trains 2.4-3× slower on one thread beside another
stage than on two threads alone (base 806 s against 333 s, instruct 436 s against 160 s), so two
1-thread lanes do less work than one 2-thread stage (results/book/build-times.md). More lanes pay
where cores outnumber what one stage can use.
The thread count a stage is given (``REPROLIB_THREADS``) reaches only the language zoo's training, which
gives the same bytes with 1 and 2 threads (``tests/test_stages.py``). The vision, text and toxicity task
vectors do not, so they train with a fixed count whatever the caller set (``reprolib.threads``); the
chapters' evaluations keep their own fixed counts (``reprolib.kit.chapter``).

Each stage's output goes to ``results/build/<profile>/<stage>.log``; the wall time of every stage, its
thread count, its key and the files it wrote, and the whole build's time go to
``results/build/<profile>/stages.json``. A stage whose key (its command, the code, its sources, the
packages, the keys of the stages before it) is the one recorded there and whose files are still as it
left them is skipped (``reprolib.buildstate``), so a second ``make book`` re-runs only what changed;
``--force`` runs every stage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from reprolib.threads import THREADS_ENV

@dataclass
class Stage:
    name: str
    command: list[str]
    after: tuple[str, ...] = ()
    estimate_s: float = 60.0      # wall time with 2 threads on the 2-core machine (results/book/build-times.md)
    sources: tuple[str, ...] = ()  # files it reads besides reprolib/ (glob patterns from the project root)
    reusable: bool = True         # False: always runs (it reads files outside the project)


@dataclass
class Outcome:
    name: str
    threads: int
    started_s: float
    seconds: float = 0.0
    returncode: int | None = None
    log: str = ""
    key: str = ""                 # reprolib.buildstate: what it read
    outputs: dict | None = None   # {file: [size, mtime_ns]} it wrote (None: unknown)
    skipped: bool = False         # fresh from the last build: not run
    last_run_s: float = 0.0       # its wall time when it last ran (plans the order)


def book_stages(profile: str = "mini", groups: str = "core,lata,m3,ptm,noise", vision_profile: str = "mini",
                vision_size: str = "micro", tox_profile: str = "mini") -> list[Stage]:
    """The stages of ``make book`` (the Makefile's variables as arguments). A paper profile (a YAML
    file) builds no language zoo but the ``tox_profile`` base the τJp text pages start from: its
    chapters' checkpoints are the user's."""
    from reprolib.book import chapter_notebooks
    from reprolib.zoo.build import GRAPH

    py = [sys.executable, "-m"]
    stages: list[Stage] = []
    language = not Path(profile).is_file()
    wanted = [g for g in groups.split(",") if g]
    zoo_of: dict[str, str] = {}      # zoo group -> the stage that builds it
    if language:
        if "core" not in wanted:
            wanted.insert(0, "core")
        # Merge to Learn's retrained models (RT, 4,800 of the group's 6,724 steps) are a stage of their own
        rt = [r.name for r in GRAPH if r.group == "ptm" and r.name.startswith("rt_")]
        for g in wanted:
            names = [r.name for r in GRAPH if r.group == g and not (g == "ptm" and r.name in rt)]
            stages.append(Stage(f"zoo-{g}", py + ["reprolib.zoo", "build", "--profile", profile, "--names", ",".join(names)],
                                () if g == "core" else ("zoo-core",), ESTIMATES.get(f"zoo-{g}", 300)))
            zoo_of[g] = f"zoo-{g}"
        if "ptm" in wanted:
            stages.append(Stage("zoo-ptm-rt", py + ["reprolib.zoo", "build", "--profile", profile, "--names", ",".join(rt)],
                                ("zoo-core",), ESTIMATES["zoo-ptm-rt"]))
    vision = py + ["reprolib.vision.zoo", "--profile", vision_profile, "--seeds", "3"]
    from reprolib.vision.zoo import REGIMES as VISION_REGIMES, VARIANTS as VISION_VARIANTS

    stages += [Stage("vision-theta0", vision + ["--regimes", ""], (), ESTIMATES["vision-theta0"]),
               Stage("vision-tables", vision + ["--regimes", ",".join(VISION_REGIMES)], ("vision-theta0",), ESTIMATES["vision-tables"]),
               Stage("vision-variants", vision + ["--regimes", ",".join(VISION_VARIANTS)], ("vision-theta0",), ESTIMATES["vision-variants"]),
               Stage("vision-size", py + ["reprolib.vision.zoo", "--profile", vision_size, "--seeds", "3", "--regimes",
                                          ",".join(VISION_REGIMES + ("mtl",))], (), ESTIMATES["vision-size"])]
    if not language:    # the toxicity and text task vectors still start from the language zoo's base
        stages.append(Stage("zoo-core", py + ["reprolib.zoo", "build", "--profile", tox_profile, "--names", "base"], (),
                            ESTIMATES["zoo-core"] / 2))
    base = ("zoo-core",)
    stages += [Stage("toxicity", py + ["reprolib.text.toxicity", "--profile", tox_profile, "--seeds", "3"], base, ESTIMATES["toxicity"]),
               Stage("text-zoo", py + ["reprolib.text.zoo", "--profile", tox_profile, "--seeds", "3"], base, ESTIMATES["text-zoo"])]
    zoo_all = tuple(zoo_of.values()) + (("zoo-ptm-rt",) if "ptm" in zoo_of else ())
    reads = {"lata_learning": ("core", "lata", "noise"), "lata_forgetting": ("core", "lata"), "m3": ("core", "m3"),
             "ptm": ("core", "m3", "ptm"), "performance": ()}    # zoo groups; any other language chapter reads them all
    stems = chapter_notebooks()
    chapter_stages = [f"nb-{stem}" for stem in stems]
    for stem in stems:
        if stem == "taujp_beyond":      # it reuses the merges every other chapter cached: last
            after = tuple(n for n in chapter_stages if n != "nb-taujp_beyond")
        elif stem == "taujp":
            after = ("vision-tables", "vision-variants", "vision-size")
        elif stem == "taujp_text":
            after = ("toxicity", "text-zoo") + base
        elif stem in reads:
            after = tuple(zoo_of[g] for g in reads[stem] if g in zoo_of) + (("zoo-ptm-rt",) if stem == "ptm" and "ptm" in zoo_of else ())
        else:
            after = zoo_all
        sources = (f"notebooks/{stem}.ipynb", f"notebooks/params/{profile}.yaml") + EXTRA_SOURCES.get(stem, ())
        stages.append(Stage(f"nb-{stem}", py + ["reprolib", "book", "--profile", profile, "--only", stem, "--execute-only"],
                            after, ESTIMATES.get(f"nb-{stem}", 120), sources, reusable=language))
    stages.append(Stage("html", py + ["reprolib", "book", "--profile", profile, "--html-only"], tuple(chapter_stages),
                        ESTIMATES["html"], ("book/*.md", "book/_toc.yml", "_config.yml")))
    check_graph(stages)
    return stages


# Files a chapter reads besides its notebook, its parameters, the code and the stages before it
EXTRA_SOURCES = {"zoo": ("results/zoo/*-skills-v2.json",), "performance": ("bench/results/*",)}

# Wall times with 2 threads of the cold build on a fresh clone (2026-12-02, results/book/build-times.md),
# used to order the stages until a build records its own
ESTIMATES = {"zoo-core": 503, "zoo-lata": 656, "zoo-m3": 298, "zoo-ptm": 319, "zoo-ptm-rt": 892, "zoo-noise": 300,
             "vision-theta0": 39, "vision-tables": 655, "vision-variants": 1004, "vision-size": 375, "toxicity": 283,
             "text-zoo": 501, "nb-zoo": 184, "nb-lata_learning": 860, "nb-lata_forgetting": 140, "nb-m3": 587,
             "nb-ptm": 152, "nb-taujp": 289, "nb-taujp_text": 279, "nb-taujp_beyond": 65, "nb-performance": 10,
             "html": 11}


def check_graph(stages: list[Stage]) -> None:
    """Every stage named once, every dependency a stage listed before it (so the graph has no cycle)."""
    seen: set[str] = set()
    for s in stages:
        if s.name in seen:
            raise ValueError(f"stage {s.name!r} is listed twice")
        missing = [a for a in s.after if a not in seen]
        if missing:
            raise ValueError(f"stage {s.name!r} waits for {missing}, which are not listed before it")
        seen.add(s.name)


def critical_paths(stages: list[Stage], durations: dict[str, float]) -> dict[str, float]:
    """For each stage, its duration plus the longest chain of stages that wait on it."""
    after_me: dict[str, list[str]] = {s.name: [] for s in stages}
    for s in stages:
        for a in s.after:
            after_me[a].append(s.name)
    out: dict[str, float] = {}
    for s in reversed(stages):       # dependents come later in the list
        out[s.name] = durations.get(s.name, s.estimate_s) + max((out[d] for d in after_me[s.name]), default=0.0)
    return out


def plan_order(stages: list[Stage], durations: dict[str, float], done: set[str], running: set[str]) -> list[Stage]:
    """The stages that can start now, longest remaining chain first."""
    paths = critical_paths(stages, durations)
    ready = [s for s in stages if s.name not in done and s.name not in running and all(a in done for a in s.after)]
    return sorted(ready, key=lambda s: -paths[s.name])


def run(stages: list[Stage], out_dir: Path, lanes: int, cores: int, log=print, poll_s: float = 0.5,
        root: Path | None = None, force: bool = False) -> list[Outcome]:
    """Run the stages, at most ``lanes`` at once. With ``root`` (the project), a stage the last build left
    fresh is skipped (``reprolib.buildstate``; ``force`` runs every stage). On a failure no new stage
    starts, the running ones are stopped, and RuntimeError names the stage and its log."""
    from tqdm.auto import tqdm

    from reprolib import buildstate as B
    from reprolib.cli import stop_signals_interrupt
    from reprolib.io import package_versions

    out_dir.mkdir(parents=True, exist_ok=True)
    record = out_dir / "stages.json"
    previous = recorded(record)
    durations = {n: o.get("last_run_s") or o["seconds"] for n, o in previous.items()
                 if o.get("returncode") == 0 and (o.get("last_run_s") or o.get("seconds"))}
    keys = B.stage_keys(stages, root) if root is not None else {}
    done: set[str] = set()
    running: dict[str, tuple[subprocess.Popen, Outcome, object, float, dict]] = {}  # process, outcome, log, start, files
    outcomes: list[Outcome] = []
    versions = package_versions()
    t0 = time.perf_counter()
    failed: Outcome | None = None
    windows: dict[str, tuple[float, float]] = {}    # when each stage run in this build started and ended
    bar = tqdm(total=len(stages), desc="make book", unit="stage")

    def write(ok: bool) -> None:    # this build's outcomes, and the last build's for the stages not reached yet
        now = {o.name for o in outcomes}
        _write_record(record, [o.__dict__ for o in outcomes] + [previous[s.name] for s in stages
                                                                 if s.name not in now and s.name in previous],
                      round(time.perf_counter() - t0, 1), lanes, cores, ok, versions)

    def settle(name: str, outcome: Outcome) -> None:
        outcomes.append(outcome)
        done.add(name)
        bar.update(1)
        write(False)   # so far

    with stop_signals_interrupt():   # SIGTERM/SIGHUP end the build as Ctrl-C does: the running stages are stopped
        try:
            while len(done) < len(stages) and failed is None:
                ready = plan_order(stages, durations, done, set(running))
                if root is not None and not force:     # fresh stages: done at once, no lane taken
                    reused = [s for s in ready if not any(a in windows for a in s.after)
                              and B.fresh(previous.get(s.name), keys[s.name], root)]
                    for stage in reused:
                        old = previous[stage.name]
                        settle(stage.name, Outcome(stage.name, old.get("threads", 0), round(time.perf_counter() - t0, 1),
                                                   returncode=0, log=old.get("log", ""), key=keys[stage.name],
                                                   outputs=old["outputs"], skipped=True,
                                                   last_run_s=old.get("last_run_s") or old.get("seconds", 0.0)))
                        tqdm.write(f"[build {time.perf_counter() - t0:6.0f} s] fresh {stage.name} (unchanged since its last run)")
                    if reused:
                        continue
                while ready and len(running) < lanes:
                    stage = ready.pop(0)
                    alone = not ready and not running
                    threads = cores if alone else max(1, cores // lanes)
                    logfile = out_dir / f"{stage.name}.log"
                    handle = open(logfile, "w")
                    report = out_dir / f".{stage.name}.outputs"
                    report.unlink(missing_ok=True)
                    env = {**os.environ, THREADS_ENV: str(threads), "OMP_NUM_THREADS": str(threads),
                           "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", B.OUTPUTS_ENV: str(report)}
                    before = B.snapshot(root, (out_dir,)) if root is not None else {}
                    start = time.perf_counter()
                    outcome = Outcome(stage.name, threads, round(start - t0, 1), log=str(logfile), key=keys.get(stage.name, ""))
                    proc = subprocess.Popen(stage.command, stdout=handle, stderr=subprocess.STDOUT, env=env)
                    running[stage.name] = (proc, outcome, handle, start, before)
                    tqdm.write(f"[build {time.perf_counter() - t0:6.0f} s] start {stage.name} ({threads} thread{'s' * (threads > 1)})")
                bar.set_postfix_str(", ".join(sorted(running)))
                time.sleep(poll_s)
                for name, (proc, outcome, handle, start, before) in list(running.items()):
                    if proc.poll() is None:
                        continue
                    handle.close()
                    outcome.returncode = proc.returncode
                    outcome.seconds = outcome.last_run_s = round(time.perf_counter() - start, 2)
                    del running[name]
                    windows[name] = (start, time.perf_counter())
                    if proc.returncode != 0:
                        outcomes.append(outcome)
                        failed = failed or outcome       # the others that finished are still recorded
                        continue
                    if root is not None:
                        report = out_dir / f".{name}.outputs"
                        mine = B.written(before, B.snapshot(root, (out_dir,)))
                        outcome.outputs = {**B.noted(report, root), **mine}
                        report.unlink(missing_ok=True)
                        _hand_over(mine, name, outcomes, windows, set(running))
                    durations[name] = outcome.seconds
                    settle(name, outcome)
                    tqdm.write(f"[build {time.perf_counter() - t0:6.0f} s] done  {name} in {outcome.seconds:.0f} s")
        finally:
            for proc, _, handle, _, _ in running.values():
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                handle.close()
            bar.close()
            total = round(time.perf_counter() - t0, 1)   # written on a failure or an interruption too
            write(failed is None and len(done) == len(stages))
    if failed is not None:
        tail = Path(failed.log).read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"stage {failed.name!r} failed (exit {failed.returncode}); its log is {failed.log}. Last lines:\n"
                           + "\n".join(tail))
    ran = [o for o in outcomes if not o.skipped]
    log(f"[build] every stage done in {total:.0f} s ({total / 60:.1f} min; {len(ran)} run, {len(outcomes) - len(ran)} fresh "
        f"from the last build; {lanes} at once on {cores} cores); times in {record}")
    return outcomes


def recorded(record: Path) -> dict[str, dict]:
    """The last build's outcome of each stage, from its ``stages.json`` ({} when absent or unreadable)."""
    try:
        return {o["name"]: o for o in json.loads(record.read_text())["stages"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _hand_over(files: dict, writer: str, outcomes: list[Outcome], windows: dict, running: set[str]) -> None:
    """Files ``writer`` wrote belong to it from now on: drop them from the outputs of every other stage
    that did not run at the same time (one running beside it may have written them: both keep them)."""
    start, end = windows[writer]
    for o in outcomes:
        if o.name == writer or not o.outputs or o.name in running:
            continue
        if o.name in windows and windows[o.name][0] < end and windows[o.name][1] > start:
            continue
        o.outputs = {p: v for p, v in o.outputs.items() if p not in files}


def _write_record(path: Path, outcomes: list[dict], total: float, lanes: int, cores: int, ok: bool,
                  versions: dict) -> None:
    body = {"ok": ok, "total_s": total, "lanes": lanes, "cores": cores, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "stages": outcomes, "versions": versions}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reprolib.stages", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--groups", default="core,lata,m3,ptm,noise", help="language zoo groups to build")
    ap.add_argument("--vision-profile", default="mini")
    ap.add_argument("--vision-size", default="micro", help="Table 7's second model size")
    ap.add_argument("--tox-profile", default="mini")
    ap.add_argument("--lanes", type=int, default=1, help="stages at once (default 1; each gets cores // lanes threads)")
    ap.add_argument("--out", default=None, help="logs and stages.json (default results/build/<profile>)")
    ap.add_argument("--dry-run", action="store_true", help="list the stages, their order and which would run; run nothing")
    ap.add_argument("--force", action="store_true", help="run every stage, even those unchanged since the last build")
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    lanes = args.lanes
    if lanes < 1:
        ap.error("--lanes must be at least 1")
    from reprolib.errors import ReprolibError
    from reprolib.paths import ROOT, project_path

    out = Path(args.out) if args.out else project_path("results") / "build" / Path(args.profile).stem
    try:
        stages = book_stages(args.profile, args.groups, args.vision_profile, args.vision_size, args.tox_profile)
        if args.dry_run:
            dry_run(stages, out, args.force)
        else:
            run(stages, out, lanes, cores, root=ROOT, force=args.force)
    except (RuntimeError, ReprolibError) as e:
        print(f"reprolib.stages: error: {e}", file=sys.stderr)
        return 1
    return 0


def dry_run(stages: list[Stage], out: Path, force: bool = False) -> set[str]:
    """Print each stage, whether it would run or is fresh, what it waits for and its command; the
    names of those that would run."""
    from reprolib import buildstate as B
    from reprolib.paths import ROOT

    paths, previous, keys = critical_paths(stages, {}), recorded(out / "stages.json"), B.stage_keys(stages, ROOT)
    runs: set[str] = set()
    for s in stages:
        if force or any(a in runs for a in s.after) or not B.fresh(previous.get(s.name), keys[s.name], ROOT):
            runs.add(s.name)
        print(f"{s.name:22s} {'runs ' if s.name in runs else 'fresh'} after {', '.join(s.after) or '-':60s} "
              f"chain {paths[s.name]:6.0f} s  {' '.join(s.command[2:])}")
    return runs


if __name__ == "__main__":
    sys.exit(main())
