"""``make book``'s stage graph and runner (reprolib.stages), and the premise it runs on: the thread count
does not change the bytes the zoo trains."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from reprolib import buildstate as B
from reprolib import stages as S
from reprolib import threads as T
from reprolib.book import chapter_notebooks
from reprolib.zoo.build import GRAPH, GROUPS


def _names(stage: S.Stage) -> list[str]:
    return stage.command[stage.command.index("--names") + 1].split(",")


def test_book_stages_cover_every_model_and_chapter_once():
    stages = S.book_stages("mini")
    by_name = {s.name: s for s in stages}
    built = [n for s in stages if "--names" in s.command for n in _names(s)]
    assert sorted(built) == sorted(r.name for r in GRAPH if r.group in GROUPS)
    assert len(built) == len(set(built))
    assert {f"nb-{stem}" for stem in chapter_notebooks()} <= set(by_name)
    assert set(by_name["html"].after) == {f"nb-{stem}" for stem in chapter_notebooks()}
    assert stages[-1].name == "html"
    # every language-zoo stage after the base and instruct models; a chapter after the models it reads
    assert all(s.after == ("zoo-core",) for s in stages if s.name.startswith("zoo-") and s.name != "zoo-core")
    assert {"zoo-m3", "zoo-ptm", "zoo-ptm-rt"} <= set(by_name["nb-ptm"].after)
    assert set(by_name["nb-zoo"].after) == {s.name for s in stages if s.name.startswith("zoo-")}
    assert "nb-m3" in by_name["nb-taujp_beyond"].after


def test_paper_profile_builds_no_language_zoo(tmp_path):
    paper = tmp_path / "paper.yaml"
    paper.write_text("roles: {}\n")
    stages = S.book_stages(str(paper))
    zoo = [s for s in stages if s.name.startswith("zoo-")]
    assert [(s.name, _names(s)) for s in zoo] == [("zoo-core", ["base"])]    # the τJp text pages' θ0
    assert {s.name for s in stages if "zoo-core" in s.after} == {"toxicity", "text-zoo", "nb-taujp_text"}


def test_check_graph_rejects_unknown_and_repeated_stages():
    with pytest.raises(ValueError, match="'b' waits for \\['a'\\]"):
        S.check_graph([S.Stage("b", ["true"], ("a",)), S.Stage("a", ["true"])])
    with pytest.raises(ValueError, match="'a' is listed twice"):
        S.check_graph([S.Stage("a", ["true"]), S.Stage("a", ["true"])])


def test_longest_chain_first():
    stages = [S.Stage("short", ["true"], (), 10), S.Stage("long", ["true"], (), 5), S.Stage("tail", ["true"], ("long",), 100)]
    assert S.critical_paths(stages, {}) == {"short": 10, "long": 105, "tail": 100}
    assert [s.name for s in S.plan_order(stages, {}, set(), set())] == ["long", "short"]
    assert [s.name for s in S.plan_order(stages, {"short": 200}, set(), set())] == ["short", "long"]
    assert [s.name for s in S.plan_order(stages, {}, {"long"}, {"short"})] == ["tail"]


def _stamp(name: str, wait: float = 0.0) -> list[str]:
    """A stage that records when it ran and with how many threads."""
    code = (f"import os, json, time; t0 = time.time(); time.sleep({wait}); "
            f"json.dump({{'start': t0, 'end': time.time(), 'threads': os.environ['{T.THREADS_ENV}']}}, "
            f"open('{name}.json', 'w'))")
    return [sys.executable, "-c", code]


def test_run_two_lanes_respects_dependencies_and_records_times(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stages = [S.Stage("a", _stamp("a", 0.6)), S.Stage("b", _stamp("b", 0.6)), S.Stage("c", _stamp("c"), ("a", "b"))]
    S.run(stages, tmp_path / "out", lanes=2, cores=2, log=lambda *_: None, poll_s=0.05)
    seen = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in "abc"}
    assert seen["a"]["start"] < seen["b"]["end"] and seen["b"]["start"] < seen["a"]["end"]   # side by side
    assert seen["c"]["start"] >= max(seen["a"]["end"], seen["b"]["end"])
    assert seen["a"]["threads"] == seen["b"]["threads"] == "1"    # two at once on 2 cores
    assert seen["c"]["threads"] == "2"                             # alone: every core
    record = json.loads((tmp_path / "out" / "stages.json").read_text())
    assert record["ok"] and {o["name"] for o in record["stages"]} == {"a", "b", "c"}
    assert all(o["returncode"] == 0 and o["seconds"] > 0 for o in record["stages"])


def test_run_stops_at_a_failed_stage_and_names_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fail = [sys.executable, "-c", "import sys; print('the reason'); sys.exit(3)"]
    stages = [S.Stage("bad", fail), S.Stage("later", _stamp("later"), ("bad",))]
    with pytest.raises(RuntimeError, match=r"stage 'bad' failed \(exit 3\)(.|\n)*the reason"):
        S.run(stages, tmp_path / "out", lanes=2, cores=2, log=lambda *_: None, poll_s=0.05)
    assert not (tmp_path / "later.json").exists()
    record = json.loads((tmp_path / "out" / "stages.json").read_text())
    assert not record["ok"] and record["stages"][0]["returncode"] == 3


def test_stage_threads_from_the_environment(monkeypatch):
    monkeypatch.delenv(T.THREADS_ENV, raising=False)
    assert T.stage_threads(2) == 2
    monkeypatch.setenv(T.THREADS_ENV, "1")
    assert T.stage_threads(2) == 1
    for bad in ("two", "0"):
        monkeypatch.setenv(T.THREADS_ENV, bad)
        with pytest.raises(ValueError, match=T.THREADS_ENV):
            T.stage_threads()


def _trained_bytes(threads: int) -> str:
    """A mini-width Llama (hidden 96, 2 layers) after 4 SFT-like steps with padding, at ``threads``."""
    from reprolib.zoo.train import train
    from transformers import LlamaConfig, LlamaForCausalLM

    class Tok:   # what ``train`` reads of a tokenizer
        pad_token_id, eos_token_id = 0, 1

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=256, hidden_size=96, intermediate_size=256, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
                                             pad_token_id=0, eos_token_id=1, bos_token_id=None))
        g = torch.Generator().manual_seed(1)
        pairs = [(torch.randint(2, 256, (int(n),), generator=g).tolist(), int(n) // 2)
                 for n in torch.randint(8, 96, (64,), generator=g)]
        stream = torch.randint(2, 256, (4096,), generator=g)
        train(model, Tok(), steps=4, lr=1e-3, seed=0, batch=16, seq_len=64, stream=stream, pairs=pairs,
              replay_frac=0.25, replay_len=32, progress=False)
    finally:
        torch.set_num_threads(before)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.numpy().tobytes())
    return digest.hexdigest()


def test_thread_count_does_not_change_trained_bytes():
    """The stage runner gives a stage 1 or 2 threads depending on what else runs: the zoo must come out
    the same either way (a zoo model's hash does not name a thread count)."""
    assert _trained_bytes(1) == _trained_bytes(2)


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.safetensors"))}


def test_vision_zoo_trains_with_a_fixed_thread_count_whatever_the_caller_set(tmp_path):
    """Its float reductions differ with the thread count, so θ0 and the task vectors train with
    VECTOR_THREADS (and the caller's setting comes back afterwards)."""
    from reprolib.vision.zoo import VisionZoo

    before = torch.get_num_threads()
    built = {}
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            zoo = VisionZoo("tiny", root=tmp_path / f"t{threads}", progress=False)
            zoo.pretrained()
            zoo.task_vectors("nonlinear", 0)
            assert torch.get_num_threads() == threads
            assert zoo.provenance("nonlinear", 0)["threads"] == T.VECTOR_THREADS
            built[threads] = _files(tmp_path / f"t{threads}")
    finally:
        torch.set_num_threads(before)
    assert built[1] == built[2] and len(built[1]) == 3


def test_sigterm_stops_the_running_stages_and_records_them(tmp_path):
    """A terminated build leaves no stage running behind it, and says it did not finish."""
    import os
    import signal
    import subprocess
    import time

    marker = tmp_path / "child.pid"
    script = tmp_path / "build.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\nfrom reprolib import stages as S\n"
        f"child = [sys.executable, '-c', \"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)\"]\n"
        f"S.run([S.Stage('slow', child)], Path({str(tmp_path / 'out')!r}), lanes=1, cores=1, poll_s=0.05)\n")
    build = subprocess.Popen([sys.executable, str(script)], cwd=str(Path(__file__).resolve().parents[1]))
    for _ in range(200):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.05)
    child = int(marker.read_text())
    build.send_signal(signal.SIGTERM)
    assert build.wait(timeout=60) != 0
    for _ in range(100):       # the stage was terminated, not orphaned
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the stage kept running after the build was terminated")
    record = json.loads((tmp_path / "out" / "stages.json").read_text())
    assert record["ok"] is False


def _writer(name: str, *writes: str, note: str = "", only_if_missing: bool = False) -> list[str]:
    """A stage that logs that it ran (runs.txt, not watched), then writes each file of ``writes`` (relative
    to the project root, the current folder) with the name of the stage; ``note`` is reported as its
    output; ``only_if_missing`` writes nothing that exists (like a zoo build finding its models)."""
    code = (f"import pathlib; from reprolib.buildstate import note_output\n"
            f"open('runs.txt', 'a').write({name!r} + '\\n')\n"
            f"for w in {list(writes)!r}:\n"
            f"    p = pathlib.Path(w); p.parent.mkdir(parents=True, exist_ok=True)\n"
            f"    if not ({only_if_missing!r} and p.exists()): p.write_text({name!r})\n"
            f"if {note!r}: note_output({note!r})\n")
    return [sys.executable, "-c", code]


def _build(root: Path, stages: list[S.Stage], force: bool = False) -> list[str]:
    """Run the stages in ``root`` as the project; the names of those that ran, in order."""
    runs = root / "runs.txt"
    runs.unlink(missing_ok=True)
    S.run(stages, root / "results" / "build", lanes=1, cores=2, log=lambda *_: None, poll_s=0.02, root=root, force=force)
    return runs.read_text().split() if runs.exists() else []


def test_a_second_build_runs_only_what_changed(tmp_path, monkeypatch):
    """Fresh stages are skipped; a changed source re-runs its stage and those after it; a deleted or edited
    output re-runs the stage that wrote it and those after it; changed code or packages, FORCE and a
    stage that reads files outside the project run again. The first build runs every stage."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reprolib").mkdir()
    (tmp_path / "reprolib" / "code.py").write_text("x = 1\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "b.ipynb").write_text("{}")
    stages = [S.Stage("zoo", _writer("zoo", "zoo/m/w.bin")),
              S.Stage("a", _writer("a", "results/a/table.csv"), ("zoo",)),
              S.Stage("b", _writer("b", "results/b/table.csv", "book/executed/b.ipynb"), ("a",), sources=("notebooks/b.ipynb",)),
              S.Stage("html", _writer("html", "book/_build/html/index.html"), ("b",), sources=("book/*.md",))]
    assert _build(tmp_path, stages) == ["zoo", "a", "b", "html"]
    assert _build(tmp_path, stages) == []
    record = {o["name"]: o for o in json.loads((tmp_path / "results/build/stages.json").read_text())["stages"]}
    assert record["b"]["skipped"] and set(record["b"]["outputs"]) == {"results/b/table.csv", "book/executed/b.ipynb"}
    assert record["b"]["last_run_s"] > 0 and record["html"]["outputs"].keys() == {"book/_build/html/index.html"}

    (tmp_path / "notebooks" / "b.ipynb").write_text('{"cells": []}')     # an edited notebook: it and the HTML
    assert _build(tmp_path, stages) == ["b", "html"]
    (tmp_path / "book").mkdir(exist_ok=True)
    (tmp_path / "book" / "intro.md").write_text("# new page")           # a new page: the HTML only
    assert _build(tmp_path, stages) == ["html"]
    (tmp_path / "results" / "a" / "table.csv").unlink()                 # a lost output: its stage and those after
    assert _build(tmp_path, stages) == ["a", "b", "html"]
    (tmp_path / "book" / "executed" / "b.ipynb").write_text("edited")    # an output changed by hand
    assert _build(tmp_path, stages) == ["b", "html"]
    (tmp_path / "reprolib" / "code.py").write_text("x = 2\n")           # the code: everything
    assert _build(tmp_path, stages) == ["zoo", "a", "b", "html"]
    assert _build(tmp_path, stages, force=True) == ["zoo", "a", "b", "html"]
    outside = [S.Stage("zoo", stages[0].command), S.Stage("a", stages[1].command, ("zoo",), reusable=False), stages[2]]
    assert _build(tmp_path, outside) == ["a", "b"]
    assert _build(tmp_path, outside) == ["a", "b"]
    # what the key reads besides files: another package version, another device
    env = B.environment()
    keys = B.stage_keys(stages, tmp_path, env)
    assert B.stage_keys(stages, tmp_path, {**env, "packages": env["packages"] + ["extra==1"]})["zoo"] != keys["zoo"]
    assert B.stage_keys(stages, tmp_path, {**env, "device": "cuda"})["html"] != keys["html"]
    assert B.stage_keys(stages, tmp_path, dict(env)) == keys
    (tmp_path / "reprolib" / ".code.py.swp").write_text("editor")      # hidden files are not code
    assert B.stage_keys(stages, tmp_path, env) == keys


def test_reported_outputs_and_files_rewritten_by_a_later_stage(tmp_path, monkeypatch):
    """A zoo stage that finds its models built still owns them (it reported them); a file rewritten by a
    later stage belongs to that stage, so the two do not re-run each other build after build."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zoo" / "m").mkdir(parents=True)
    (tmp_path / "zoo" / "m" / "w.bin").write_text("built before")
    stages = [S.Stage("zoo", _writer("zoo", "zoo/m/w.bin", note="zoo/m", only_if_missing=True)),
              S.Stage("first", _writer("first", "results/x/own.csv", "results/x/shared.json"), ("zoo",)),
              S.Stage("second", _writer("second", "results/x/shared.json"), ("first",))]
    assert _build(tmp_path, stages) == ["zoo", "first", "second"]
    record = {o["name"]: o for o in json.loads((tmp_path / "results/build/stages.json").read_text())["stages"]}
    assert set(record["zoo"]["outputs"]) == {"zoo/m/w.bin"}
    assert set(record["first"]["outputs"]) == {"results/x/own.csv"} and set(record["second"]["outputs"]) == {"results/x/shared.json"}
    assert _build(tmp_path, stages) == []
    (tmp_path / "zoo" / "m" / "w.bin").unlink()                        # rebuilt: everything after it re-runs
    assert _build(tmp_path, stages) == ["zoo", "first", "second"]
    assert _build(tmp_path, stages) == []


def test_a_failed_build_keeps_the_record_of_the_stages_it_did_not_reach(tmp_path, monkeypatch):
    """A build that stops at a failure keeps the last record of the stages it never reached (their
    durations plan the next build's order); fresh stages are skipped as soon as they are ready, so a
    failure never costs them."""
    monkeypatch.chdir(tmp_path)
    flag = tmp_path / "fail"
    (tmp_path / "mid.txt").write_text("1")
    failing = [sys.executable, "-c", f"import pathlib, sys; open('runs.txt', 'a').write('mid\\n'); "
                                     f"sys.exit(int(pathlib.Path({str(flag)!r}).exists()))"]
    stages = [S.Stage("early", _writer("early", "results/e.csv")), S.Stage("mid", failing, sources=("mid.txt",)),
              S.Stage("late", _writer("late", "results/l.csv"), ("mid",)), S.Stage("other", _writer("other", "results/o.csv"))]
    assert sorted(_build(tmp_path, stages)) == ["early", "late", "mid", "other"]
    flag.write_text("")
    (tmp_path / "mid.txt").write_text("2")              # mid must run again, and fails before late is reached
    with pytest.raises(RuntimeError, match="stage 'mid' failed"):
        _build(tmp_path, stages)
    assert (tmp_path / "runs.txt").read_text().split() == ["mid"]     # early and other: fresh, skipped
    record = {o["name"]: o for o in json.loads((tmp_path / "results/build/stages.json").read_text())["stages"]}
    assert record["mid"]["returncode"] == 1 and record["early"]["skipped"] and record["other"]["skipped"]
    assert record["late"]["returncode"] == 0 and not record["late"]["skipped"] and record["late"]["last_run_s"] > 0
    flag.unlink()
    assert _build(tmp_path, stages) == ["mid", "late"]


def test_files_written_beside_another_stage_belong_to_both(tmp_path, monkeypatch):
    """With two lanes, a file written while two stages ran side by side cannot be told apart: both keep it,
    so losing it re-runs both (never neither)."""
    monkeypatch.chdir(tmp_path)
    slow = [sys.executable, "-c", "import time; open('runs.txt', 'a').write('b\\n'); time.sleep(0.8)"]
    stages = [S.Stage("a", _writer("a", "results/a.csv")), S.Stage("b", slow)]
    runs = tmp_path / "runs.txt"
    for expected in (["a", "b"], []):
        runs.unlink(missing_ok=True)
        S.run(stages, tmp_path / "results" / "build", lanes=2, cores=2, log=lambda *_: None, poll_s=0.02, root=tmp_path)
        assert sorted(runs.read_text().split() if runs.exists() else []) == expected
    record = {o["name"]: o for o in json.loads((tmp_path / "results/build/stages.json").read_text())["stages"]}
    assert set(record["a"]["outputs"]) == set(record["b"]["outputs"]) == {"results/a.csv"}
    (tmp_path / "results" / "a.csv").unlink()
    assert sorted(_build(tmp_path, stages)) == ["a", "b"]


def test_a_task_vector_stage_reports_theta0_and_its_vectors(tmp_path, monkeypatch):
    """What the vision zoo's command reports as its stage's outputs: θ0's folder and each vector with its
    provenance, whether built now or found built; not the rest of the zoo's folder."""
    from reprolib.vision.zoo import VisionZoo, main

    report = tmp_path / "outputs.txt"
    monkeypatch.setenv(B.OUTPUTS_ENV, str(report))
    (tmp_path / "zoo" / "vision-tiny" / "tv-old").mkdir(parents=True)     # a stale folder: not this stage's
    for _ in range(2):     # builds, then finds built
        report.unlink(missing_ok=True)
        main(["--profile", "tiny", "--root", str(tmp_path / "zoo"), "--seeds", "1", "--regimes", "nonlinear"])
        zoo = VisionZoo("tiny", root=tmp_path / "zoo", progress=False)
        vector = zoo.tv_file("nonlinear", 0)
        assert sorted(report.read_text().split()) == sorted(map(str, (zoo.folder(), vector, vector.with_suffix(".json"))))
    outputs = B.noted(report, tmp_path)
    assert outputs and all(p.startswith(("zoo/vision-tiny/pretrained-", "zoo/vision-tiny/tv-")) for p in outputs)
    assert not any("tv-old" in p for p in outputs)
