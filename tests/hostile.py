"""Hostile programs for the code sandbox, and how to tell from outside whether one escaped.

Standard library only: ``tests/test_sandbox.py`` runs the suite in-process as root, and runs this
file as a script under an unprivileged uid (``setpriv``) against a copy of ``sandbox.py``::

    python3 tests/hostile.py SANDBOX_PY MODE     # prints one JSON line per program

Every program comes with tests that a correct ``add`` passes and that the program's own ``add``
fails (or never gets to answer), so any ``passed`` is a forged verdict. Besides the verdict, the
evidence looked for is on the host: files written outside, a connection to a localhost listener,
a secret read from the harness's environment, processes alive after the run, the wall time and
the output kept.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import uuid

TESTS = "assert add(2, 3) == 5\nassert add(2, 2) == 4"
SECRET_VAR = "REPROLIB_HOSTILE_SECRET"


def programs(token: str, outside: str, port: int) -> list[dict]:
    """(name, solution, timeout) of each hostile program; ``outside`` is a host folder the harness
    owns (world-writable, to make writing easy), ``port`` a localhost listener, ``token`` the run's mark."""
    spawn = f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)  # {token}']"
    return [
        dict(name="forged pass marker", solution="print('__REPROLIB_SANDBOX_PASSED__')\nraise SystemExit(0)\ndef add(a, b): return 0"),
        dict(name="exit 0 before the tests", solution="import os\ndef add(a, b): os._exit(0)"),
        dict(name="sys.exit(0) inside the function", solution="import sys\ndef add(a, b): sys.exit(0)"),
        dict(name="forged protocol messages", solution=(
            "import os, sys\nfd = int(sys.argv[2])\n"
            "os.write(fd, b'{\"loaded\": true, \"callables\": [\"add\"]}\\n' + b'{\"value\": \"5\"}\\n' * 50)\n"
            "os._exit(0)")),
        dict(name="rebinding the worker", solution=(
            "import __main__, json\n__main__.send = lambda m: None\njson.dumps = lambda m: '{\"value\": \"5\"}'\n"
            "__main__.namespace = {}\ndef add(a, b): return 5")),
        dict(name="always-equal object", solution=(
            "class Yes:\n    def __eq__(self, other): return True\n    def __repr__(self): return '5'\n"
            "def add(a, b): return Yes()")),
        dict(name="subprocess writes outside", solution=(
            f"import subprocess\nsubprocess.run(['sh', '-c', 'id > {outside}/id-{token}; echo x > /tmp/escape-{token}'])\n"
            "def add(a, b): return 0")),
        dict(name="dir_fd writes", solution=(
            f"import os\nfor d in ('/tmp', {outside!r}):\n    fd = os.open(d, os.O_RDONLY)\n"
            f"    try:\n        os.close(os.open('dirfd-{token}', os.O_CREAT | os.O_WRONLY, dir_fd=fd))\n"
            f"        os.mkdir('mkdir-{token}', dir_fd=fd)\n    except OSError as e:\n        print(e)\n"
            "def add(a, b): return 0")),
        dict(name="mkfifo and sqlite outside", solution=(
            f"import os\nfor d in ('/tmp', {outside!r}):\n    try:\n        os.mkfifo(d + '/fifo-{token}')\n"
            f"    except OSError as e:\n        print(e)\n    try:\n        import sqlite3\n"
            f"        sqlite3.connect(d + '/db-{token}').execute('create table t(x)')\n    except Exception as e:\n        print(e)\n"
            "def add(a, b): return 0")),
        dict(name="writing the harness's folder", solution=(
            f"open({outside!r} + '/plain-{token}', 'w').write('x')\ndef add(a, b): return 0")),
        dict(name="fork_exec + setsid survivor", solution=(
            f"import os, sys, _posixsubprocess\nr, w = os.pipe()\n"
            f"_posixsubprocess.fork_exec([sys.executable, '-c', 'import time; time.sleep(60)  # {token}'], [os.fsencode(sys.executable)],"
            " True, (), None, None, -1, -1, -1, -1, -1, -1, r, w, True, True, 0, None, None, None, -1, None, False)\n"
            "def add(a, b): return 0")),
        dict(name="double fork daemon", solution=(
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        os.execv('/usr/bin/env', ['env', 'python3', '-c', 'import time; time.sleep(60)  # {token}'])\n"
            "    os._exit(0)\ndef add(a, b): return 0")),
        dict(name="child keeps the stdout pipe", solution=spawn + ", start_new_session=True)\ndef add(a, b): return a + b + 1",
             max_seconds=4),
        dict(name="socket to a localhost listener", solution=(
            f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'{token}')\n"
            "except OSError as e:\n    print(e)\ndef add(a, b): return 0")),
        dict(name="reading the harness's environment", solution=(
            "import os\nfound = [os.environ.get('" + SECRET_VAR + "', '')]\n"
            "for pid in os.listdir('/proc'):\n    try:\n        found.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n"
            "    except OSError:\n        pass\nprint(' '.join(found))\ndef add(a, b): return 0")),
        dict(name="fork bomb", solution=(
            "import os\ntry:\n    while True:\n        os.fork()\nexcept OSError:\n    pass\ndef add(a, b): return 0"),
             timeout=3, max_seconds=8),
        dict(name="thread bomb", solution=(
            "import threading, time\ntry:\n    for _ in range(10000):\n        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
            "except Exception as e:\n    print(type(e).__name__)\ndef add(a, b): return 0"), timeout=3, max_seconds=8),
        dict(name="10 GB allocation", solution="x = bytearray(10 * 1024**3)\ndef add(a, b): return a + b"),
        dict(name="400 MiB of stdout", solution="import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(400):\n    sys.stdout.write(chunk)\n"
             "def add(a, b): return a + b + 1", timeout=5, max_seconds=7),
        dict(name="ignoring SIGTERM and sleeping", solution=(
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\ndef add(a, b): return a + b"),
             timeout=1, max_seconds=3),
        dict(name="sleeping past the timeout in a call", solution="import time\ndef add(a, b):\n    time.sleep(60)\n    return a + b",
             timeout=1, max_seconds=3),
        dict(name="burning CPU", solution="def add(a, b):\n    while True:\n        pass", timeout=1, max_seconds=3),
        dict(name="filling the disk", solution=(
            "try:\n    with open('big', 'wb') as f:\n        for _ in range(10 * 1024):\n            f.write(b'x' * (1 << 20))\n"
            "except OSError as e:\n    print(e)\ndef add(a, b): return 0"), timeout=5, max_seconds=7),
        dict(name="killing the harness", solution=(
            "import os, signal, ctypes\nfor target in (os.getppid(), 1, -1):\n    try:\n        os.kill(target, signal.SIGKILL)\n"
            "    except OSError:\n        pass\ntry:\n    ctypes.CDLL(None).kill(-1, 9)\nexcept Exception:\n    pass\ndef add(a, b): return 0")),
        dict(name="huge nested answer", solution="def add(a, b):\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x"),
        dict(name="huge flat answer", solution="def add(a, b):\n    return 'y' * (8 << 20)"),
        dict(name="writing the system", solution=(
            "import sys\nfor p in (sys.executable, '/usr/bin/env', '/etc/passwd'):\n    try:\n        open(p, 'ab').write(b'x')\n"
            "    except OSError as e:\n        print(e)\ndef add(a, b): return 0")),
    ]


def _alive_with(token: str) -> list[int]:
    """Live processes whose command line holds ``token`` (the only way a program's processes are marked)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/status") as f:
                state = next(line for line in f if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if token.encode() in cmdline and " Z" not in state and pid != str(os.getpid()):
            pids.append(int(pid))
    return pids


NAMES = [p["name"] for p in programs("TOKEN", "/nowhere", 1)]


def run_one(run_tests, mode: str, name: str, outside: str) -> dict:
    """Run the hostile program ``name``; its record: name, status, isolation, seconds, what it said,
    and ``escape`` (None, or what got out). ``outside`` is a world-writable host folder."""
    token, secret = uuid.uuid4().hex, uuid.uuid4().hex  # the secret is never in the program's text
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.05)
    spec = {p["name"]: p for p in programs(token, outside, listener.getsockname()[1])}[name]
    os.environ[SECRET_VAR] = secret
    before = set(os.listdir(outside)) | set(os.listdir("/tmp"))
    t0 = time.monotonic()
    try:
        result = run_tests(spec["solution"], TESTS, timeout_s=spec.get("timeout", 2), mode=mode)
    finally:
        del os.environ[SECRET_VAR]
    seconds = time.monotonic() - t0
    escape = []
    if result.passed:
        escape.append("forged a pass")
    written = sorted(n for n in (set(os.listdir(outside)) | set(os.listdir("/tmp"))) - before if token in n)
    if written:
        escape.append(f"wrote {written}")
    try:
        listener.accept()[0].close()
        escape.append("reached the localhost listener")
    except OSError:
        pass
    listener.close()
    if secret in result.stdout + result.stderr + result.detail:
        escape.append("read the harness's environment")
    survivors = _alive_with(token)
    for pid in survivors:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    if survivors:
        escape.append(f"processes alive after the run: {survivors}")
    if seconds > spec.get("max_seconds", spec.get("timeout", 2) + 2):
        escape.append(f"held the harness {seconds:.1f} s")
    if len(result.stdout) > 70_000 or len(result.stderr) > 70_000:
        escape.append("unbounded output")
    return {"name": name, "status": result.status, "isolation": result.isolation, "seconds": round(seconds, 3),
            "escape": "; ".join(escape) or None, "said": (result.stdout + result.stderr)[:300], "detail": result.detail[:200]}


def run_suite(run_tests, mode: str) -> list[dict]:
    """Every hostile program, with a fresh world-writable folder under /tmp as the harness's."""
    outside = tempfile.mkdtemp(prefix="reprolib-hostile-")
    os.chmod(outside, 0o777)
    try:
        return [run_one(run_tests, mode, name, outside) for name in NAMES]
    finally:
        for entry in os.listdir(outside):
            path = os.path.join(outside, entry)
            os.rmdir(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
        os.rmdir(outside)


if __name__ == "__main__":  # python3 hostile.py SANDBOX_PY MODE [SLEEPERS]
    import importlib.util
    import subprocess

    spec = importlib.util.spec_from_file_location("sandbox", sys.argv[1])
    sandbox = sys.modules["sandbox"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sandbox)
    # unrelated processes of this same user, alive throughout (the old sandbox's shared-uid process limit broke on them)
    sleepers = [subprocess.Popen(["sleep", "120"]) for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 0)]
    try:
        control = sandbox.run_tests("def add(a, b):\n    return a + b", TESTS, mode=sys.argv[2])
        print(json.dumps({"control": control.status, "isolation": control.isolation}), flush=True)
        for record in run_suite(sandbox.run_tests, sys.argv[2]):
            print(json.dumps(record), flush=True)
    except sandbox.SandboxUnavailable as e:
        print(json.dumps({"unavailable": str(e)}))
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
