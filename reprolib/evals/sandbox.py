"""Run model-generated Python in an OS sandbox and judge it from the harness.

**Isolation** (``isolation()`` names the one this machine gets; every result records it):

* ``bubblewrap`` (preferred): the program runs under ``bwrap`` with new user, PID, network, IPC, UTS
  and cgroup namespaces: no network interface but a down loopback, no view of any other process (so
  no ``/proc/<ppid>/environ``), and every descendant dies with the sandbox (``--die-with-parent``;
  PID 1 of the namespace is killed on timeout). The file system is read-only binds of ``/usr``, the
  ``/lib*`` folders and the interpreter's prefix, with an empty, size-bounded private tmpfs as the
  working folder; the environment is cleared. Started by root, ``bwrap`` itself runs as a fresh,
  unused uid, so the process-count limit counts this run's processes only.
* ``root-fallback`` (``bwrap`` missing or unable to start, harness is root): a fresh, unused uid
  (never the shared ``nobody``), private network and mount namespaces with empty tmpfs over every
  world-writable folder, rlimits, and every process of that uid killed afterwards.
* otherwise (unprivileged, no working ``bwrap``) nothing runs: :class:`SandboxUnavailable` is raised,
  an infrastructure error naming the cause, never a failed program.

Inside, a small worker (standard library only) sets the resource limits (CPU seconds, address
space, file size, open files, processes, no core dumps) on itself before it runs any untrusted code.

**Verdict.** The tests never run inside the sandbox. The worker executes the solution and answers
calls to its top-level functions over a pipe; the harness runs the tests itself with stand-ins for
those functions. Arguments and results cross as Python literals (requests as
``marshal`` bytes, which only the harness writes; answers as ``repr`` text that the harness reads
with ``ast.literal_eval``, at most ``MAX_MESSAGE`` bytes), so the program can sway the verdict only through the values its
functions return: printing a marker, exiting early with status 0, rebinding the worker's names or
writing on its pipes cannot produce a pass. Limits of this design (documented in the book): a
result must be a literal (numbers, strings, bytes, None, tuples, lists, dicts, sets; not NaN/inf,
objects or generators), arguments cannot be functions, and in-place mutation of an argument is not
seen by the tests. Waits are bounded by ``timeout_s`` of wall time for the whole run, and captured
output by ``MAX_OUTPUT`` bytes per stream (the pipe is closed beyond it).

``REPROLIB_SANDBOX=bubblewrap|root-fallback`` forces a mode (tests run both); ``REPROLIB_BWRAP``
names the ``bwrap`` binary. This file imports only the standard library.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import itertools
import marshal
import os
import select
import selectors
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field

MAX_OUTPUT = 64 * 1024  # bytes kept per stream (stdout, stderr)
MAX_MESSAGE = 1 << 20  # longest worker message (one JSON line)
TMPFS_BYTES = 64 << 20  # the sandbox's private working folder
FILE_BYTES = 16 << 20  # largest file the program may write
MAX_PROCESSES = 16  # processes (and threads) the program may hold at once
FRESH_UID_BASE = 1_900_000_000  # fresh per-run uids (root only): far above any real account
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 0x4000, 1 << 18
VIRTUAL_FS = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs",
              "pstore", "bpf", "fusectl", "configfs", "binfmt_misc", "autofs", "hugetlbfs"}
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")

# Runs inside the sandbox: set limits, say hello, run the solution, answer calls. Standard library only.
_WORKER = r'''
import marshal, os, resource, sys
req_fd, resp_fd, cpu_s, memory, nproc, fsize = map(int, sys.argv[1:7])
resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
requests, responses = os.fdopen(req_fd, "rb"), os.fdopen(resp_fd, "w")
def send(message):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    responses.write(repr(message) + "\n")
    responses.flush()
def receive():
    size = int.from_bytes(requests.read(4), "little")
    return marshal.loads(requests.read(size)) if size else None
def failure(e):
    return {"raised": type(e).__name__, "message": str(e)[:500]}
send({"hello": os.getuid()})
source = receive()["solution"]
namespace = {"__name__": "solution", "__builtins__": __builtins__}
try:
    exec(compile(source, "solution.py", "exec"), namespace)
except BaseException as e:
    send({"loaded": False, **failure(e)})
    sys.exit(0)
send({"loaded": True, "callables": [k for k, v in namespace.items() if callable(v) and not k.startswith("__")]})
while (call := receive()) is not None:
    try:
        value = namespace[call["name"]](*call["args"], **call["kwargs"])
        text = repr(value)
    except BaseException as e:
        send(failure(e))
        continue
    send({"value": text})
'''


class SandboxUnavailable(RuntimeError):
    """The sandbox could not start (no ``bwrap``, user namespaces refused, no interpreter the sandbox
    user can run, …): an infrastructure error, never a verdict on the program."""


@dataclass
class SandboxResult:
    """One sandboxed run. ``status``: passed | failed | timeout | memory | crashed. ``passed`` comes
    from the tests the harness ran, never from the program's output; ``detail`` says why it failed."""

    passed: bool
    status: str
    seconds: float
    returncode: int | None
    stdout: str
    stderr: str
    isolation: str = ""
    detail: str = ""

    def to_dict(self) -> dict:
        return {"passed": self.passed, "status": self.status, "seconds": round(self.seconds, 3),
                "returncode": self.returncode, "isolation": self.isolation, "detail": self.detail,
                "stdout": self.stdout[-2000:], "stderr": self.stderr[-2000:]}


class _Timeout(BaseException):
    """The run's wall-clock budget is spent (a BaseException: test code's ``except Exception`` can't eat it)."""


class _Broken(BaseException):
    """The worker broke the protocol or died: the run fails, whatever the tests would have said."""


# ----------------------------------------------------------------------------- choosing the isolation

_uids = itertools.count()
_probe: dict[str, str | None] = {}


def _bwrap() -> str | None:
    return os.environ.get("REPROLIB_BWRAP") or shutil.which("bwrap")


def _fresh_uid() -> int:
    """A uid no account and no other run uses (root only): pid and a counter make it unique per run."""
    return FRESH_UID_BASE + (os.getpid() % 100_000) * 1000 + next(_uids) % 1000


def _executable_by_others(path: str) -> bool:
    real, parts = os.path.realpath(path), []
    parent = real
    while parent not in ("/", ""):
        parts.append(parent)
        parent = os.path.dirname(parent)
    try:
        return all(os.stat(p).st_mode & 0o001 for p in parts)
    except OSError:
        return False


def _interpreter() -> tuple[str, str]:
    """(python, its install prefix) the sandbox user can run: this interpreter, else the system's."""
    root = os.geteuid() == 0
    mine = os.path.realpath(sys.executable)
    if not root or _executable_by_others(mine):
        return mine, os.path.realpath(sys.base_prefix)
    for candidate in ("/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and os.path.exists(candidate) and _executable_by_others(candidate):
            real = os.path.realpath(candidate)
            return real, os.path.dirname(os.path.dirname(real))
    raise SandboxUnavailable(f"no Python the sandbox user can run: {mine} sits in a folder closed to other "
                             "users and there is no world-executable /usr/bin/python3")


def isolation(mode: str | None = None) -> str:
    """The isolation runs get here: ``bubblewrap`` or ``root-fallback``; raises SandboxUnavailable
    naming the cause when neither can run. Probed once per process (a ``bwrap`` start costs ~5 ms)."""
    mode = mode or os.environ.get("REPROLIB_SANDBOX") or "auto"
    if mode not in ("auto", "bubblewrap", "root-fallback"):
        raise SandboxUnavailable(f"REPROLIB_SANDBOX={mode!r}: expected bubblewrap or root-fallback")
    if mode in ("auto", "bubblewrap"):
        problem = _bwrap_problem()
        if problem is None:
            return "bubblewrap"
        if mode == "bubblewrap" or os.geteuid() != 0:
            raise SandboxUnavailable(f"cannot run generated code: {problem}. Install bubblewrap (Debian/Ubuntu: "
                                     "apt-get install bubblewrap) or run as root for the fallback sandbox")
    if os.geteuid() != 0:
        raise SandboxUnavailable("the root-fallback sandbox needs root (it drops to a fresh uid in private "
                                 "namespaces); run as root or install bubblewrap")
    return "root-fallback"


def _bwrap_problem() -> str | None:
    """Why bubblewrap can't run here (None: it works), from one trial start."""
    binary = _bwrap()
    if binary not in _probe:
        if not binary or not os.path.exists(binary):
            _probe[binary] = f"bubblewrap ({binary or 'bwrap'}) is not installed"
        else:
            try:
                python, prefix = _interpreter()
                uid = _fresh_uid() if os.geteuid() == 0 else None
                done = subprocess.run(_bwrap_command(binary, python, prefix) + [python, "-I", "-S", "-c", "pass"],
                                      env={"PATH": "/usr/bin:/bin"}, user=uid, group=uid, extra_groups=[] if uid else None, cwd="/",
                                      stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
                err = done.stderr.decode(errors="replace").strip()[-300:]
                _probe[binary] = None if done.returncode == 0 else f"{binary} failed to start: {err or done.returncode}"
            except (OSError, subprocess.SubprocessError, SandboxUnavailable) as e:
                _probe[binary] = f"{binary} failed to start: {e}"
    return _probe[binary]


def _bwrap_command(binary: str, python: str, prefix: str) -> list[str]:
    cmd = [binary, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
           "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
           "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", "/tmp",
           "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    if not (prefix == "/usr" or prefix.startswith("/usr/")):
        cmd += ["--ro-bind", prefix, prefix]
    return cmd + ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev",
                  "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--remount-ro", "/", "--chdir", "/tmp"]


def _mount_points() -> list[tuple[str, str]]:
    """(mount point, file-system type) of every mount, from /proc/self/mountinfo."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fs_type = fields[fields.index("-") + 1]
            points.append((fields[4].encode().decode("unicode_escape"), fs_type))
    return points


def _fallback_preexec(uid: int):
    """Root only, between fork and exec: private network and mount namespaces, every mount read-only,
    empty tmpfs over each world-writable folder, then the fresh uid with no supplementary groups."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)

        def mount(source, target, fs_type, flags, options=None) -> int:
            return libc.mount(source, target.encode(), fs_type, flags, options)

        if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET | CLONE_NEWNS)")
        if mount(b"none", "/", None, MS_REC | MS_PRIVATE) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        for point, fs_type in _mount_points():
            if mount(None, point, None, MS_BIND | MS_REMOUNT | MS_RDONLY) != 0 and fs_type not in VIRTUAL_FS:
                raise OSError(ctypes.get_errno(), f"remount {point} read-only")
        for folder in WORLD_WRITABLE:
            if os.path.isdir(folder) and not os.path.islink(folder):
                options = f"size={TMPFS_BYTES},mode=1777".encode()
                if mount(b"tmpfs", folder, b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
                    raise OSError(ctypes.get_errno(), f"mount tmpfs on {folder}")
        os.chdir("/tmp")
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    return preexec


def _kill_uid(uid: int) -> None:
    """Root only: SIGKILL every live process whose real uid is ``uid``, until none is left (zombies,
    already dead, are skipped: their parent reaps them)."""
    for _ in range(200):
        found = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/status") as f:
                    status = dict(line.split(":", 1) for line in f if line.startswith(("State:", "Uid:")))
                if int(status["Uid"].split()[0]) == uid and not status["State"].strip().startswith(("Z", "X")):
                    found = True
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, KeyError, ValueError, IndexError):
                pass
        if not found:
            return
        time.sleep(0.005)


# ----------------------------------------------------------------------------- one run


@dataclass
class _Session:
    """The harness's side of one sandboxed run: the worker's pipes, captured output and the deadline."""

    proc: subprocess.Popen
    requests: int  # fd we write calls to
    responses: int  # fd we read answers from
    deadline: float
    out: dict = field(default_factory=lambda: {"stdout": bytearray(), "stderr": bytearray()})
    pending: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.responses, selectors.EVENT_READ, "responses")
        self.selector.register(self.proc.stdout, selectors.EVENT_READ, "stdout")
        self.selector.register(self.proc.stderr, selectors.EVENT_READ, "stderr")

    def send(self, message: dict) -> None:
        """A request (trusted: only the harness writes it) as length-prefixed ``marshal`` bytes."""
        body = marshal.dumps(message)
        data = len(body).to_bytes(4, "little") + body
        while data:
            if not self.selector.get_map() or time.monotonic() > self.deadline:
                raise _Timeout()
            try:
                written = os.write(self.requests, data)
            except BlockingIOError:
                self._pump(0.01)
                continue
            except OSError as e:  # the worker is gone
                raise _Broken(f"the sandbox stopped reading its requests ({e.strerror})") from None
            data = data[written:]

    def receive(self) -> dict:
        """The worker's next message; bounded by the deadline and MAX_MESSAGE, output drained meanwhile."""
        while b"\n" not in self.pending:
            if len(self.pending) > MAX_MESSAGE:
                raise _Broken(f"the sandbox sent a message over {MAX_MESSAGE} bytes")
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise _Timeout()
            if not self._pump(left):
                raise _Broken("the sandbox closed its answers pipe")
        line, _, self.pending = bytes(self.pending).partition(b"\n")
        self.pending = bytearray(self.pending)
        try:
            message = ast.literal_eval(line.decode())  # untrusted: literals only, never code
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
            raise _Broken("the sandbox sent an unreadable message") from None
        if not isinstance(message, dict):
            raise _Broken("the sandbox sent an unreadable message")
        return message

    def _pump(self, wait: float) -> bool:
        """Read whatever is ready within ``wait`` s; False once the answers pipe is closed."""
        for key, _ in self.selector.select(timeout=max(wait, 0)):
            chunk = os.read(key.fd, 65536)
            name = key.data
            if name == "responses":
                if not chunk:
                    self.selector.unregister(key.fd)
                    return False
                self.pending += chunk
            elif not chunk or len(self.out[name]) + len(chunk) > MAX_OUTPUT:
                self.out[name] += chunk[: MAX_OUTPUT - len(self.out[name])]
                if chunk:
                    self.out[name] += f"\n[sandbox: output cut at {MAX_OUTPUT} bytes]".encode()
                self.selector.unregister(key.fd)
                key.fileobj.close()  # the program's next write fails (EPIPE): output is bounded
            else:
                self.out[name] += chunk
        return "responses" in {k.data for k in self.selector.get_map().values()}

    def call(self, name: str, args: tuple, kwargs: dict):
        """Call the solution's ``name`` in the sandbox; return its value or raise its exception."""
        try:
            if ast.literal_eval(repr((args, kwargs))) != (args, kwargs):
                raise ValueError
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            raise TypeError(f"sandbox: arguments of {name}() must be Python literals") from None
        self.send({"name": name, "args": args, "kwargs": kwargs})
        answer = self.receive()
        if "value" in answer:
            try:
                return ast.literal_eval(answer["value"])
            except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                raise TypeError(f"sandbox: {name}() returned a value that is not a Python literal") from None
        if "raised" in answer:
            raise _exception(answer)
        raise _Broken("the sandbox sent an unreadable message")

    def output(self, name: str) -> str:
        return bytes(self.out[name]).decode(errors="replace")


def _exception(answer: dict) -> BaseException:
    """The worker's exception as the builtin of that name (RuntimeError for others and for exits)."""
    kind = getattr(builtins, str(answer.get("raised")), None)
    message = f"{answer.get('raised')!s:.80}: {answer.get('message')!s:.500}"
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(message)
    return RuntimeError(message)


class _Function:
    """Stands in, in the harness, for one of the solution's top-level functions."""

    def __init__(self, session: _Session, name: str):
        self._session, self._name = session, name

    def __call__(self, *args, **kwargs):
        return self._session.call(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<sandboxed {self._name}>"


def _start(mode: str, timeout_s: float, memory_mb: int) -> tuple[subprocess.Popen, int, int, int | None]:
    """Start the worker: (process, request fd, response fd, the fresh uid under root)."""
    python, prefix = _interpreter()
    uid = _fresh_uid() if os.geteuid() == 0 else None
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    worker = [python, "-I", "-S", "-c", _WORKER, str(req_r), str(resp_w), str(int(timeout_s) + 1),
              str(memory_mb << 20), str(MAX_PROCESSES), str(FILE_BYTES)]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        if mode == "bubblewrap":  # bwrap's own environment too is the minimal one: it stays readable in /proc/1/environ
            proc = subprocess.Popen(_bwrap_command(_bwrap(), python, prefix) + worker, env=env, user=uid, group=uid,
                                    extra_groups=[] if uid is not None else None, cwd="/", pass_fds=(req_r, resp_w),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        else:
            proc = subprocess.Popen(worker, env=env, cwd="/", pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                    preexec_fn=_fallback_preexec(uid))
    except (OSError, subprocess.SubprocessError) as e:
        for fd in (req_r, req_w, resp_r, resp_w):
            os.close(fd)
        raise SandboxUnavailable(f"the {mode} sandbox failed to start: {e}") from e
    os.close(req_r)
    os.close(resp_w)
    os.set_blocking(req_w, False)
    return proc, req_w, resp_r, uid


def _stop(proc: subprocess.Popen, uid: int | None, mode: str) -> None:
    """Kill the run and everything it started; bounded waits only."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # bwrap (its namespace dies with it) or the fallback's worker
    except (ProcessLookupError, PermissionError):
        pass
    _reap(proc, timeout=10)
    if mode == "root-fallback" and uid is not None:  # anything that left the group, e.g. by setsid()
        _kill_uid(uid)


def _reap(proc: subprocess.Popen, timeout: float) -> None:
    """Wait at most ``timeout`` s for ``proc`` to exit: woken by its pidfd the moment it does (no polling sleeps)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
    try:
        proc.wait(timeout=0 if pidfd is not None else timeout)
    except subprocess.TimeoutExpired:
        pass


def run_tests(solution: str, tests: str, timeout_s: float = 5.0, memory_mb: int = 512,
              mode: str | None = None) -> SandboxResult:
    """Sandboxed pass/fail of ``solution`` against ``tests`` (trusted assert statements run by the harness).

    Passed means: the solution loaded, and every test statement ran to its end in the harness, with
    each call into the solution answered by the sandbox within ``timeout_s`` seconds of wall time (the
    whole run) and ``memory_mb`` of address space. Raises SandboxUnavailable if no sandbox can start.
    """
    if not tests.strip():
        raise ValueError("run_tests: 'tests' is empty; a verdict needs tests that call the solution")
    try:
        test_code = compile(textwrap.dedent(tests), "tests", "exec")
    except SyntaxError as e:
        raise ValueError(f"run_tests: the tests do not compile ({e})") from None
    mode = isolation(mode)
    t0 = time.monotonic()
    proc, requests, responses, uid = _start(mode, timeout_s, memory_mb)
    session = _Session(proc, requests, responses, deadline=t0 + timeout_s)
    status, detail = "failed", ""
    try:
        try:
            hello = session.receive()
        except (_Broken, _Timeout):
            raise SandboxUnavailable(f"the {mode} sandbox did not start: {session.output('stderr').strip()[-500:] or 'no message'}") from None
        if "hello" not in hello:
            raise SandboxUnavailable(f"the {mode} sandbox did not start: unexpected first message")
        session.send({"solution": solution})
        loaded = session.receive()
        if loaded.get("loaded") is not True:
            status = "memory" if loaded.get("raised") == "MemoryError" else "failed"
            detail = f"the solution did not load: {loaded.get('raised')}: {loaded.get('message')}"
        else:
            names = [n for n in loaded.get("callables", []) if isinstance(n, str) and n.isidentifier()]
            namespace = {"__name__": "tests", **{n: _Function(session, n) for n in names}}
            try:
                exec(test_code, namespace)
                status = "passed"
            except (_Timeout, _Broken):
                raise
            except MemoryError as e:
                status, detail = "memory", str(e)
            except Exception as e:  # an assert failed, the solution raised, or a name is missing
                detail = f"{type(e).__name__}: {e}"[:500]
    except _Timeout:
        status, detail = "timeout", f"no answer within {timeout_s} s"
    except _Broken as e:
        detail = str(e)
    finally:
        os.close(requests)
        session.selector.close()
        _stop(proc, uid, mode)
        os.close(responses)
        for stream in (proc.stdout, proc.stderr):
            stream.close()
    seconds = time.monotonic() - t0
    if status == "failed" and proc.returncode is not None and proc.returncode < 0 and not detail.startswith("Assertion"):
        crash = -proc.returncode
        if crash == signal.SIGXCPU:
            status, detail = "timeout", "CPU time limit"
        elif crash != signal.SIGKILL:
            status = "crashed"
    return SandboxResult(status == "passed", status, seconds, proc.returncode, session.output("stdout"),
                         session.output("stderr"), isolation=mode, detail=detail)


def describe() -> str:
    """One line for build logs: which isolation generated code gets here, or why none can run."""
    try:
        mode = isolation()
    except SandboxUnavailable as e:
        return f"code sandbox: UNAVAILABLE ({e})"
    if mode == "bubblewrap":
        version = subprocess.run([_bwrap(), "--version"], capture_output=True, text=True).stdout.strip()
        return (f"code sandbox: {version or 'bubblewrap'} (user, PID, network, IPC, UTS namespaces; read-only "
                f"system binds; {TMPFS_BYTES >> 20} MiB private tmpfs)")
    return "code sandbox: root-fallback (fresh uid, private network and mount namespaces, rlimits; bubblewrap missing)"


if __name__ == "__main__":  # python -m reprolib.evals.sandbox [--check]
    line = describe()
    print(line)
    sys.exit(1 if "UNAVAILABLE" in line else 0)
