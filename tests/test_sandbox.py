"""The code sandbox: an OS sandbox (bubblewrap, or root's fallback) around generated code, and a
verdict the program cannot forge because the tests run in the harness.

Every hostile program of ``tests/hostile.py`` runs in each isolation this machine has, as root
and (through ``setpriv``) as an unprivileged user; an escape is looked for on the host."""

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import hostile
from reprolib.errors import EvalError
from reprolib.evals import generate, sandbox
from reprolib.evals.sandbox import SandboxUnavailable, run_tests

SOLUTION = "def add(a, b):\n    return a + b\n"
ROOT = os.geteuid() == 0


def _available(mode):
    try:
        return sandbox.isolation(mode) == mode
    except SandboxUnavailable:
        return False


MODES = [pytest.param(m, marks=pytest.mark.skipif(not _available(m), reason=f"{m} sandbox unavailable here"))
         for m in ("bubblewrap", "root-fallback")]


@pytest.mark.parametrize("mode", MODES)
def test_correct_passes_and_wrong_fails(mode):
    ok = run_tests(SOLUTION, "assert add(2, 3) == 5", mode=mode)
    assert ok.passed and ok.status == "passed" and ok.isolation == mode
    wrong = run_tests(SOLUTION.replace("a + b", "a - b"), "assert add(2, 3) == 5", mode=mode)
    assert not wrong.passed and wrong.status == "failed" and "AssertionError" in wrong.detail
    broken = run_tests("def add(:\n  pass", "assert add(2, 3) == 5", mode=mode)
    assert broken.status == "failed" and "SyntaxError" in broken.detail


@pytest.mark.parametrize("mode", MODES)
def test_literals_and_exceptions_cross_the_boundary(mode):
    solution = ("def f(x):\n    if x < 0:\n        raise ValueError('negative')\n"
                "    return {'x': x, 's': {1, 2}, 't': (x, b'b'), 'n': None, 'l': [1.5, 'a']}\n"
                "def g(*a, k=0):\n    return sum(a) + k\n")
    tests = ("assert f(1) == {'x': 1, 's': {1, 2}, 't': (1, b'b'), 'n': None, 'l': [1.5, 'a']}\n"
             "assert g(1, 2, k=3) == 6\n"
             "try:\n    f(-1)\n    raise AssertionError('no error')\nexcept ValueError as e:\n    assert 'negative' in str(e)\n")
    assert run_tests(solution, tests, mode=mode).passed


@pytest.mark.parametrize("mode", MODES)
def test_non_literal_results_and_arguments_fail_with_a_reason(mode):
    r = run_tests("def f():\n    return object()", "f()", mode=mode)
    assert not r.passed and "not a Python literal" in r.detail
    r = run_tests("def f(g):\n    return g(1)", "assert f(lambda x: x) == 1", mode=mode)
    assert not r.passed and "must be Python literals" in r.detail


def test_empty_or_broken_tests_are_the_callers_error():
    with pytest.raises(ValueError, match="'tests' is empty"):
        run_tests(SOLUTION, "  \n")
    with pytest.raises(ValueError, match="do not compile"):
        run_tests(SOLUTION, "assert add(")


@pytest.mark.parametrize("name", hostile.NAMES)
@pytest.mark.parametrize("mode", MODES)
def test_hostile_program_does_not_escape(mode, name, tmp_path_factory):
    """No forged pass, no file outside, no localhost connection, no harness secret, no survivor,
    bounded time and output. The harness's folder sits outside /tmp (a world-writable project folder)."""
    outside = Path(__file__).resolve().parent / f".hostile-{os.getpid()}"
    outside.mkdir(exist_ok=True)
    outside.chmod(0o777)
    try:
        record = hostile.run_one(run_tests, mode, name, str(outside))
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    assert record["escape"] is None, record
    assert record["status"] != "passed" and record["isolation"] == mode


def _unprivileged(args, uid=1_800_000_000 + os.getpid() % 100_000):
    """Run ``tests/hostile.py`` with a copy of sandbox.py as an unprivileged uid; its JSON lines."""
    python = "/usr/bin/python3"
    if not (ROOT and shutil.which("setpriv") and os.path.exists(python)):
        pytest.skip("needs root, setpriv and /usr/bin/python3 to act as an unprivileged user")
    copy = Path(tempfile.mkdtemp(prefix="reprolib-unprivileged-"))  # pytest's own folders are closed to others
    try:
        for src in (Path(sandbox.__file__), Path(hostile.__file__)):
            shutil.copy(src, copy / src.name)
        os.chmod(copy, 0o755)
        done = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", python, "-I",
                               str(copy / "hostile.py"), str(copy / "sandbox.py"), *args],
                              capture_output=True, text=True, timeout=300, cwd="/")
    finally:
        shutil.rmtree(copy)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.skipif(not _available("bubblewrap"), reason="bubblewrap unavailable here")
def test_hostile_suite_as_an_unprivileged_user():
    """As a plain user with 20 other processes of its own alive: a correct program passes, no hostile one escapes."""
    control, *records = _unprivileged(["bubblewrap", "20"])
    assert control == {"control": "passed", "isolation": "bubblewrap"}
    assert [r["name"] for r in records] == hostile.NAMES
    assert [r for r in records if r["escape"] or r["status"] == "passed"] == []
    assert {r["isolation"] for r in records} == {"bubblewrap"}


def test_fallback_refuses_an_unprivileged_user():
    """Without root the fallback can't drop privileges: nothing runs, and the error names why."""
    [record] = _unprivileged(["root-fallback", "0"])
    assert "needs root" in record["unavailable"] and "bubblewrap" in record["unavailable"]


def _sleepers(uid, n=20):
    return [subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sleep", "60"])
            for _ in range(n)]


@pytest.mark.skipif(not ROOT, reason="starting processes as another user needs root")
@pytest.mark.parametrize("mode", MODES)
def test_code_metric_runs_beside_20_processes_of_nobody(mode, monkeypatch):
    """The old sandbox limited processes per shared user 'nobody' and broke when 8 of them were alive;
    runs now count only their own processes. The code metric's own path, with the reference answers."""
    from reprolib.zoo.data import code_tasks

    monkeypatch.setenv("REPROLIB_SANDBOX", mode)
    monkeypatch.setattr(generate, "_VERDICTS", {})
    tasks = code_tasks(6, seed=0, split="test")
    monkeypatch.setattr(generate, "generate", lambda model, tok, prompts, **kw: [t.answer for t in tasks])
    monkeypatch.setattr(generate, "render", lambda tok, prompt, chat: prompt)
    sleepers = _sleepers(65534)
    try:
        score, records = generate.code_pass_at_1(None, None, tasks, chat=False)
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
    assert score == 1.0 and all(r["correct"] for r in records)


def test_sandbox_that_cannot_start_is_an_infrastructure_error(monkeypatch):
    """No bwrap: the code metric stops with an error naming the cause; nothing is scored as failed."""
    monkeypatch.setenv("REPROLIB_SANDBOX", "bubblewrap")
    monkeypatch.setenv("REPROLIB_BWRAP", "/nonexistent/bwrap")
    monkeypatch.setattr(generate, "_VERDICTS", {})
    monkeypatch.setattr(generate, "generate", lambda *a, **k: ["def f(x):\n    return x"])
    monkeypatch.setattr(generate, "render", lambda tok, prompt, chat: prompt)
    from reprolib.evals.items import Example

    with pytest.raises(EvalError, match="/nonexistent/bwrap.*not installed"):
        generate.code_pass_at_1(None, None, [Example("p", "a", "code", "test", {"tests": "assert f(1) == 1"})])
    assert generate._VERDICTS == {}


@pytest.mark.skipif(not _available("bubblewrap"), reason="bubblewrap unavailable here")
def test_sandbox_dying_before_its_hello_is_an_infrastructure_error(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="reprolib-fake-bwrap-"))  # readable by the fresh uid root runs bwrap as
    try:
        os.chmod(folder, 0o755)
        fake = folder / "bwrap"
        fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setenv("REPROLIB_BWRAP", str(fake))
        monkeypatch.setitem(sandbox._probe, str(fake), None)  # as if the trial start had worked
        with pytest.raises(SandboxUnavailable, match="did not start: bwrap: setting up uid map"):
            run_tests(SOLUTION, "assert add(1, 1) == 2", mode="bubblewrap")
    finally:
        shutil.rmtree(folder)


def test_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv("REPROLIB_SANDBOX", "chroot")
    with pytest.raises(SandboxUnavailable, match="REPROLIB_SANDBOX='chroot'"):
        run_tests(SOLUTION, "assert add(1, 1) == 2")


def test_describe_names_the_isolation():
    line = sandbox.describe()
    assert line.startswith("code sandbox: ")
    assert any(word in line for word in ("bubblewrap", "root-fallback", "UNAVAILABLE"))


def test_sandbox_module_needs_only_the_standard_library():
    """It is copied and run alone by the unprivileged test, and its worker runs in the sandbox."""
    tree = ast.parse(Path(sandbox.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
