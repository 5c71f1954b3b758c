"""The code sandbox: misbehaving programs are stopped and scored as failures; the harness survives."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reprolib.evals.sandbox import run_python, run_tests

SOLUTION = "def add(a, b):\n    return a + b\n"


def test_correct_and_wrong_solutions():
    assert run_tests(SOLUTION, "assert add(2, 3) == 5").status == "passed"
    wrong = run_tests(SOLUTION.replace("a + b", "a - b"), "assert add(2, 3) == 5")
    assert not wrong.passed and wrong.status == "failed" and "AssertionError" in wrong.stderr
    assert run_python("def f(:\n  pass").status == "failed"
    # exiting early is not passing: the tests after the exit never ran
    assert not run_python("import sys\nsys.exit(0)\nassert False").passed


@pytest.mark.parametrize("program", ["while True:\n    pass", "import time\ntime.sleep(60)"])
def test_infinite_loop_is_killed(program):
    t0 = time.monotonic()
    r = run_python(program, timeout_s=1.5)
    assert r.status == "timeout" and not r.passed
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("program", [
    "import os\nwhile True:\n    os.fork()",
    "import subprocess\nsubprocess.run(['sh', '-c', 'echo hi'])",
    "import os\nos.system('echo hi')",
    "import multiprocessing as mp\nmp.Process(target=print).start()",
])
def test_process_creation_is_refused(program):
    r = run_python(program, timeout_s=5)
    assert not r.passed and r.status == "failed"
    assert "not allowed" in r.stderr


def test_huge_allocation_is_stopped():
    r = run_python("x = bytearray(10 * 1024**3)\nassert len(x) > 0", memory_mb=256)
    assert r.status == "memory" and not r.passed


@pytest.mark.parametrize("target", ["/tmp/reprolib-sandbox-escape.txt", str(Path.home() / "escape.txt"),
                                    "../escape.txt"])
def test_writing_outside_its_folder_is_refused(target):
    r = run_python(f"open({target!r}, 'w').write('x')")
    assert not r.passed and "outside the sandbox folder" in r.stderr
    assert not os.path.exists(target) or target.startswith("..")


def test_deleting_outside_its_folder_is_refused(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    r = run_python(f"import os\nos.remove({str(victim)!r})")
    assert not r.passed and victim.read_text() == "precious"


def test_writing_inside_its_folder_works():
    assert run_python("open('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'").passed


@pytest.mark.parametrize("program", [
    "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
    "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)",
])
def test_network_is_refused(program):
    r = run_python(program, timeout_s=5)
    assert not r.passed and r.status == "failed"


def test_harness_survives_attempts_on_it():
    r = run_python("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
    assert not r.passed
    r = run_python("import ctypes\nctypes.CDLL(None).kill(0, 9)")
    assert not r.passed
    # still here, and the next run works
    assert run_tests(SOLUTION, "assert add(1, 1) == 2").passed


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and the drop to nobody need root")
def test_runs_unprivileged_without_network_interfaces():
    r = run_python("import os\nprint(os.getuid())\nprint(open('/proc/net/dev').read())")
    assert r.passed
    lines = r.stdout.splitlines()
    assert lines[0] == "65534"
    interfaces = [ln.split(":")[0].strip() for ln in lines[3:] if ":" in ln]
    assert interfaces in (["lo"], [])  # private network namespace (falls back to the audit hook if absent)
