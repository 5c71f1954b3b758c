"""Run model-generated Python in a separate, limited process and report pass / fail.

Layers of containment (each one alone would not be enough; together they stop the failure modes a
small model's code actually shows — infinite loops, fork bombs, huge allocations, stray file
writes, network access):

* a fresh interpreter (``python -I -S``: no site-packages, no user environment) in its own
  session/process group, killed as a group on timeout;
* resource limits: CPU seconds, address space, file size, open files, no core dumps;
* when started as root: a private network namespace (``unshare(CLONE_NEWNET)``: no interface but
  loopback down) and a drop to ``nobody`` with a process-count limit;
* a Python audit hook (PEP 578), installed before the code runs, that refuses process creation,
  sockets, ctypes and any file write, delete or rename outside the sandbox folder;
* an empty temporary working folder, removed afterwards, and a scrubbed environment.

This is containment for careless code, not a security boundary against a determined attacker.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass

PASS_MARK = "__REPROLIB_SANDBOX_PASSED__"
NOBODY = 65534
CLONE_NEWNET = 0x40000000

# Runs inside the sandbox before the untrusted code. Kept to the standard library.
_RUNNER = r'''
import os, sys
ROOT = os.path.realpath(os.getcwd())
BLOCKED_PREFIXES = ("socket.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "ctypes.", "pty.",
                    "winreg.", "webbrowser.")
BLOCKED = {"os.system", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.putenv", "os.unsetenv",
           "shutil.rmtree", "sys.setprofile", "sys.settrace", "_thread.start_new_thread"}
PATH_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
               "os.symlink", "os.truncate", "os.utime", "shutil.copyfile", "shutil.move"}

def _inside(path):
    try:
        p = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else ROOT)
    except Exception:
        return False
    return p == ROOT or p.startswith(ROOT + os.sep)

def _hook(event, args):
    if event in BLOCKED or event.startswith(BLOCKED_PREFIXES):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in mode for c in "wax+")) or (flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        if writing and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the sandbox folder")
    elif event in PATH_EVENTS:
        for a in args[:2]:
            if isinstance(a, (str, bytes, os.PathLike)) and not _inside(a):
                raise PermissionError(f"sandbox: {event} on {a!r} outside the sandbox folder")

sys.addaudithook(_hook)
with open("program.py") as f:
    source = f.read()
namespace = {"__name__": "__main__"}
exec(compile(source, "program.py", "exec"), namespace)
print("''' + PASS_MARK + r'''", flush=True)
'''


@dataclass
class SandboxResult:
    """Outcome of one sandboxed run: ``status`` is passed | failed | timeout | memory | crashed."""

    passed: bool
    status: str
    seconds: float
    returncode: int | None
    stdout: str
    stderr: str

    def to_dict(self) -> dict:
        return {"passed": self.passed, "status": self.status, "seconds": round(self.seconds, 3),
                "returncode": self.returncode, "stdout": self.stdout[-2000:], "stderr": self.stderr[-2000:]}


def _limits(cpu_s: int, memory_mb: int, drop_privileges: bool):
    def preexec() -> None:  # runs in the child between fork and exec
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 2**20, 16 * 2**20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop_privileges:
            try:
                ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
            except Exception:
                pass  # no namespaces here: the audit hook still refuses sockets
            resource.setrlimit(resource.RLIMIT_NPROC, (8, 8))
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    return preexec


def _world_executable(path: str) -> bool:
    """Whether an unprivileged user can execute ``path`` (file and every parent folder o+x)."""
    real = os.path.realpath(path)
    parts = [real] + [os.path.dirname(real)]
    while parts[-1] not in ("/", ""):
        parts.append(os.path.dirname(parts[-1]))
    try:
        return all(os.stat(p).st_mode & 0o001 for p in parts)
    except OSError:
        return False


def _interpreter(as_root: bool) -> tuple[str, bool]:
    """(python to run, whether to drop to ``nobody``): as root, the first interpreter ``nobody``
    can execute (this one, else the system's python3); none → keep root, other layers remain."""
    if not as_root:
        return sys.executable, False
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and os.path.exists(candidate) and _world_executable(candidate):
            return candidate, True
    return sys.executable, False


def run_python(program: str, timeout_s: float = 5.0, memory_mb: int = 512) -> SandboxResult:
    """Run ``program`` (code + its tests, e.g. ``solution + "\\n" + tests``) in the sandbox.

    Passed means: the program ran to its end (every ``assert`` held) within ``timeout_s`` seconds
    of wall time and ``memory_mb`` of address space. Anything else is a failure with a status.
    """
    python, drop = _interpreter(os.geteuid() == 0)
    workdir = tempfile.mkdtemp(prefix="reprolib-sandbox-")
    try:
        with open(os.path.join(workdir, "program.py"), "w") as f:
            f.write(program)
        with open(os.path.join(workdir, "runner.py"), "w") as f:
            f.write(_RUNNER)
        if drop:
            os.chmod(workdir, 0o777)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "HOME": workdir}
        t0 = time.monotonic()
        proc = subprocess.Popen([python, "-I", "-S", "runner.py"], cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_limits(int(timeout_s) + 1, memory_mb, drop), close_fds=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            timed_out = True
        seconds = time.monotonic() - t0
        _kill_group(proc)  # anything the program left running in its group
        out_s = out.decode(errors="replace")
        err_s = err.decode(errors="replace")
        passed = not timed_out and proc.returncode == 0 and PASS_MARK in out_s
        if passed:
            status = "passed"
        elif timed_out or proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            status = "timeout"
        elif "MemoryError" in err_s:
            status = "memory"
        elif proc.returncode is not None and proc.returncode < 0:
            status = "crashed"
        else:
            status = "failed"
        return SandboxResult(passed, status, seconds, proc.returncode, out_s.replace(PASS_MARK, "").strip(), err_s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_tests(solution: str, tests: str, **kwargs) -> SandboxResult:
    """Sandboxed pass/fail of ``solution`` against ``tests`` (assert statements)."""
    return run_python(solution.rstrip() + "\n\n" + textwrap.dedent(tests), **kwargs)


if __name__ == "__main__":  # python -m reprolib.evals.sandbox FILE.py
    print(json.dumps(run_python(open(sys.argv[1]).read()).to_dict(), indent=2))
