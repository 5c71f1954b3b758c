"""Hardening of `reprolib merge` and of checkpoint reading against an outside tester's bad inputs: each
case fails with one line naming the culprit (path, parameter or tensor) and leaves nothing behind — no
output folder, no parent folders made for it, no `.tmp-*` folder. Tiny synthetic checkpoints only."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import reprolib.io as rio
import reprolib.merge.engine as engine
from reprolib.cli import main
from reprolib.errors import CheckpointError, OutputExistsError, OutputPathError, ReprolibError
from reprolib.io import TMP_MARKER, Checkpoint, remove_stale_outputs

REPO = Path(__file__).resolve().parents[1]
W = "model.layers.0.mlp.up_proj.weight"
TENSORS = (W, "model.layers.1.mlp.up_proj.weight", "model.norm.weight", "lm_head.weight")


def _tensors(value: float) -> dict[str, torch.Tensor]:
    shapes = {W: (4, 3), TENSORS[1]: (4, 3), TENSORS[2]: (3,), TENSORS[3]: (5, 3)}
    return {name: torch.full(shape, value) + 0.01 * torch.arange(torch.Size(shape).numel()).reshape(shape)
            for name, shape in shapes.items()}


def _model(folder: Path, value: float, config: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    save_file(_tensors(value), folder / "model.safetensors", metadata={"format": "pt"})
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "dtype": "float32"}
    (folder / "config.json").write_text(json.dumps(cfg if config is None else config))
    (folder / "tokenizer_config.json").write_text("{}")
    return folder


@pytest.fixture
def models(tmp_path) -> dict[str, Path]:
    return {name: _model(tmp_path / "in" / name, v) for name, v in (("base", 0.0), ("a", 1.0), ("b", -0.5))}


@pytest.fixture
def work(tmp_path) -> Path:
    """The folder outputs go to; every test checks it is left exactly as it was."""
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def _config(work: Path, text: str | bytes, name: str = "merge.yaml") -> Path:
    """A merge YAML beside (not in) the work folder."""
    cfg = work.parent / name
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    return cfg


def _ta(models, params: str = "") -> str:
    return (f"merge_method: task_arithmetic\nbase_model: {models['base']}\nmodels:\n"
            f"  - model: {models['a']}\n  - model: {models['b']}\n{params}")


def _listing(root: Path) -> set[str]:
    return {str(Path(d, n).relative_to(root)) for d, dirs, files in os.walk(root) for n in dirs + files}


def _refused(capsys, work: Path, args: list, *needles) -> str:
    """Run the CLI; it must return 2 with one `reprolib: error:` line holding every needle, and
    leave ``work`` exactly as it was (no output, no parents, no temporary folder)."""
    before = _listing(work)
    rc = main(["merge", *map(str, args), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reprolib: error: "), err
    for needle in needles:
        assert str(needle) in err, f"{needle!r} not in {err!r}"
    assert _listing(work) == before, "something was left behind"
    assert not [p for p in _listing(work) if ".tmp-" in p]
    return err


@contextmanager
def _deadline(seconds: int = 30):
    """Fail instead of hanging (opening a FIFO for reading blocks until a writer comes)."""
    def blocked(signum, frame):
        raise AssertionError("blocked reading a FIFO")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the merge starts reading checkpoints."""
    def started(spec):
        raise AssertionError("merge work started before the output path was checked")

    monkeypatch.setattr(engine, "_open_inputs", started)


# ----------------------------------------------------------------------------- config and options


@pytest.mark.parametrize("where", ["model", "global"])
def test_integer_too_large_for_float(models, work, capsys, where):
    huge = "1" + "0" * 400
    b = f"  - model: {models['b']}\n"
    text = (_ta(models).replace(b, b + f"    parameters: {{weight: {huge}}}\n")
            if where == "model" else _ta(models, params=f"parameters: {{lambda: {huge}}}\n"))
    cfg = _config(work, text)
    _refused(capsys, work, [cfg, "--out", work / "out"], "weight" if where == "model" else "lambda", "too large")


def test_non_utf8_yaml(models, work, capsys):
    cfg = _config(work, _ta(models).encode() + b"# caf\xe9\n")
    _refused(capsys, work, [cfg, "--out", work / "out"], cfg, "UTF-8")


@pytest.mark.parametrize("size", ["nan", "inf", "-inf", "1e400GB"])
def test_max_shard_size_not_finite(models, work, capsys, no_work, size):
    cfg = _config(work, _ta(models))
    _refused(capsys, work, [cfg, "--out", work / "out", f"--max-shard-size={size}"], "--max-shard-size", size)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_config_not_a_regular_file(work, capsys, kind):
    cfg = work.parent / "merge.yaml"
    cfg.mkdir() if kind == "folder" else os.mkfifo(cfg)
    with _deadline():
        _refused(capsys, work, [cfg, "--out", work / "out"], cfg, "not a regular file")


@pytest.mark.parametrize("where", ["top", "parameters", "models"])
def test_duplicate_yaml_keys(models, work, capsys, where):
    b = f"  - model: {models['b']}\n"
    text = {
        "top": _ta(models) + "merge_method: ties\n",
        "parameters": _ta(models, params="parameters:\n  lambda: 0.5\n  lambda: 2.0\n"),
        "models": _ta(models).replace(b, b + f"    model: {models['a']}\n"),
    }[where]
    key = {"top": "merge_method", "parameters": "lambda", "models": "model"}[where]
    cfg = _config(work, text)
    _refused(capsys, work, [cfg, "--out", work / "out"], cfg, f"duplicate key '{key}'", "line ")


def test_tokenizer_source_is_refused(models, work, capsys):
    cfg = _config(work, _ta(models) + f"tokenizer_source: {models['a']}\n")
    _refused(capsys, work, [cfg, "--out", work / "out"], cfg, "tokenizer_source", "not supported")


@pytest.mark.parametrize("alias", ["base/", "./base", "../in/base", "link"])
def test_base_model_alias_is_not_merged(models, work, capsys, monkeypatch, alias):
    """m3 takes two models (Beta λ); a `models` entry naming base_model another way is the base, not a third."""
    monkeypatch.chdir(models["base"].parent)
    (models["base"].parent / "link").symlink_to("base")
    head = "merge_method: m3\nbase_model: base\nparameters: {alpha: 2.0}\nseed: 4\nmodels:\n"
    with_alias = _config(work, head + f"  - model: {alias}\n  - model: a\n  - model: b\n")
    assert main(["merge", str(with_alias), "--out", str(work / "with"), "--no-progress"]) == 0, capsys.readouterr().err
    plain = _config(work, head + "  - model: a\n  - model: b\n", name="plain.yaml")
    assert main(["merge", str(plain), "--out", str(work / "plain"), "--no-progress"]) == 0
    got, want = Checkpoint(work / "with").state_dict(), Checkpoint(work / "plain").state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert sorted(p.name for p in work.iterdir()) == ["plain", "with"]


# ----------------------------------------------------------------------------- the output path


def test_out_dangling_symlink_refused_before_work(models, work, capsys, no_work):
    out = work / "out"
    out.symlink_to(work / "nowhere")
    _refused(capsys, work, [_config(work, _ta(models)), "--out", out], out, "already exists")
    with pytest.raises(OutputExistsError, match=str(out)):  # the Python API checks first too
        engine.merge(engine.MergeSpec("task_arithmetic", [str(models["a"])], base_model=str(models["base"])), out)
    assert out.is_symlink() and _listing(work) == {"out"}  # the user's link is left alone


def test_out_under_regular_file(models, work, capsys, no_work):
    (work / "file.txt").write_text("not a folder")
    out = work / "file.txt" / "sub" / "out"
    _refused(capsys, work, [_config(work, _ta(models)), "--out", out], out, "file.txt is not a folder")


def test_out_in_read_only_folder(models, work, capsys, no_work, monkeypatch):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits: answer as the kernel would for a user
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real(p, mode, **kw))
    try:
        _refused(capsys, work, [_config(work, _ta(models)), "--out", ro / "new" / "out"], ro / "new" / "out",
                 f"{ro} is not writable")
    finally:
        ro.chmod(0o755)


def test_out_mkdir_refused_by_the_kernel(models, work, capsys, monkeypatch):
    """A folder the checks cannot foresee (ACLs, a race): the parents made for the output are removed."""
    real = os.mkdir

    def mkdir(path, *args, **kw):
        if ".tmp-" in os.fspath(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    out = work / "p" / "q" / "out"
    _refused(capsys, work, [_config(work, _ta(models)), "--out", out], out, "Permission denied")


@pytest.mark.parametrize("where", ["leaf", "parent"])
def test_out_name_too_long(models, work, capsys, no_work, where):
    out = work / ("x" * 300) if where == "leaf" else work / ("y" * 300) / "out"
    _refused(capsys, work, [_config(work, _ta(models)), "--out", out], "x" * 40 if where == "leaf" else "y" * 40,
             "file system allows")


@pytest.mark.parametrize("target", ["shard", "side file"])
def test_disk_full(models, work, capsys, monkeypatch, target):
    calls = {"n": 0}

    def full(*args, **kw):
        calls["n"] += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if target == "shard":
        monkeypatch.setattr(rio.ShardedWriter, "write", full)
    else:
        monkeypatch.setattr(engine.shutil, "copy2", full)
    out = work / "deep" / "er" / "out"
    _refused(capsys, work, [_config(work, _ta(models)), "--out", out], out, "No space left on device")
    assert calls["n"] == 1


KILL_SCRIPT = """
import os, signal, sys
import reprolib.io as rio
from reprolib.cli import main

real, calls = rio.ShardedWriter.write, []
def write(self, name, block, last):
    real(self, name, block, last)
    self._file.flush()
    calls.append(name)
    if len(calls) == 2:  # mid-shard: two tensors written, two to go
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
rio.ShardedWriter.write = write
sys.exit(main(["merge", sys.argv[2], "--out", sys.argv[3], "--no-progress"]))
"""


def _run_killed(sig: str, cfg: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", KILL_SCRIPT, sig, str(cfg), str(out)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_clean_up(models, work, sig):
    before = _listing(work)
    proc = _run_killed(sig, _config(work, _ta(models)), work / "out")
    assert proc.returncode == 128 + getattr(signal, sig), proc.stderr
    assert proc.stderr.strip().splitlines() == [f"reprolib: interrupted ({sig}); no output was written"]
    assert _listing(work) == before


def test_stale_temp_of_a_killed_merge_is_removed(models, work, capsys):
    cfg = _config(work, _ta(models))
    proc = _run_killed("SIGKILL", cfg, work / "out")
    assert proc.returncode == -signal.SIGKILL
    stale = [p for p in work.iterdir() if ".tmp-" in p.name]
    assert len(stale) == 1 and (stale[0] / TMP_MARKER).exists() and (stale[0] / "model.safetensors").exists()
    assert main(["merge", str(cfg), "--out", str(work / "out"), "--no-progress"]) == 0
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    assert TMP_MARKER not in {p.name for p in (work / "out").iterdir()}


def test_only_own_dead_temp_folders_are_removed(work):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)

    def tmp(name, owner):
        d = work / name
        d.mkdir()
        if owner is not None:
            (d / TMP_MARKER).write_text(json.dumps(owner))
        return d

    me = rio._owner()
    assert me["host"] == socket.gethostname() and me["pid"] == os.getpid()
    dead = {**me, "pid": dead_pid}
    stale = tmp(".out.tmp-0123abcd", dead)
    kept = [tmp(".live.tmp-0123abcd", me),                                        # still running
            tmp(".other.tmp-0123abcd", {**dead, "host": me["host"] + "-x"}),      # another machine's
            tmp(".ns.tmp-0123abcd", {**dead, "pid_ns": "pid:[1]"}),               # another container's
            tmp(".nomarker.tmp-0123abcd", None),                                  # not made by reprolib
            tmp("out.tmp-0123abcd", dead),                                        # not the name pattern
            tmp(".bad.tmp-0123abcd", {**me, "pid": 0})]                           # pid 0 would be the group
    assert remove_stale_outputs(work) == [stale]
    assert not stale.exists() and all(d.exists() for d in kept)


# ----------------------------------------------------------------------------- reading checkpoints


def _index(folder: Path, weight_map: dict) -> Path:
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


def _split(folder: Path, value: float, layout: dict[str, str]) -> Path:
    """A sharded checkpoint: tensor → shard path (relative to ``folder``)."""
    folder.mkdir(parents=True)
    tensors = _tensors(value)
    for shard in set(layout.values()):
        (folder / shard).parent.mkdir(parents=True, exist_ok=True)
        save_file({n: tensors[n] for n, s in layout.items() if s == shard}, folder / shard)
    _index(folder, layout)
    return folder


@pytest.mark.parametrize("shard", ["../../elsewhere/model.safetensors", "ABS", "s1/../../x.safetensors"])
def test_index_shard_outside_the_folder(models, work, capsys, tmp_path, shard):
    _model(tmp_path / "elsewhere", 2.0)
    shard = str(tmp_path / "elsewhere" / "model.safetensors") if shard == "ABS" else shard
    b = models["b"]
    (b / "model.safetensors").unlink()
    index = _index(b, {n: shard for n in TENSORS})
    _refused(capsys, work, [_config(work, _ta(models)), "--out", work / "out"], index, f"shard '{shard}'",
             "outside the checkpoint folder")


@pytest.mark.parametrize("layout", ["index", "glob"])
def test_fifo_shard_is_refused_not_read(models, work, capsys, layout):
    b = models["b"]
    (b / "model.safetensors").unlink()
    os.mkfifo(b / "model.safetensors")
    if layout == "index":
        _index(b, {n: "model.safetensors" for n in TENSORS})
    with _deadline():
        _refused(capsys, work, [_config(work, _ta(models)), "--out", work / "out"],
                 b / ("model.safetensors.index.json" if layout == "index" else "model.safetensors"),
                 "not a regular file")


def test_shard_hashes_keyed_by_relative_path(models, work):
    layout = {W: "s1/model.safetensors", TENSORS[1]: "s1/model.safetensors",
              TENSORS[2]: "s2/model.safetensors", TENSORS[3]: "s2/model.safetensors"}
    b = _split(work.parent / "split", -0.5, layout)
    cfg = _config(work, _ta({**models, "b": b}))
    assert main(["merge", str(cfg), "--out", str(work / "out"), "--no-progress"]) == 0
    prov = json.loads((work / "out" / "provenance.json").read_text())
    hashes = next(e["sha256"] for e in prov["inputs"] if e["path"] == str(b))
    assert sorted(hashes) == ["s1/model.safetensors", "s2/model.safetensors"]
    assert hashes["s1/model.safetensors"] != hashes["s2/model.safetensors"]
    assert hashes["s1/model.safetensors"] == rio.sha256_file(b / "s1" / "model.safetensors")


@pytest.mark.parametrize("key", ["dtype", "torch_dtype", None])
def test_config_dtype_follows_the_output_dtype(tmp_path, work, key):
    config = {"model_type": "llama", **({key: "float32"} if key else {})}
    ins = {name: _model(tmp_path / "in" / name, v, config) for name, v in (("base", 0.0), ("a", 1.0), ("b", 2.0))}
    cfg = _config(work, _ta(ins) + "dtype: bfloat16\n")
    assert main(["merge", str(cfg), "--out", str(work / "out"), "--no-progress"]) == 0
    written = json.loads((work / "out" / "config.json").read_text())
    assert written[key or "torch_dtype"] == "bfloat16"
    assert all(t.dtype == torch.bfloat16 for t in Checkpoint(work / "out").state_dict().values())


def _raw_header(path: Path, header: str, data: bytes) -> None:
    blob = header.encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


ENTRY = '"dtype":"F32","shape":[2,2],"data_offsets":[0,16]'
BAD_HEADERS = {
    "shape string": ('{"w":{"dtype":"F32","shape":"12","data_offsets":[0,8]}}', 8, "shape"),  # read as [1, 2]
    "shape float": ('{"w":{"dtype":"F32","shape":[8.9],"data_offsets":[0,32]}}', 32, "shape"),
    "shape bool": ('{"w":{"dtype":"F32","shape":[true,2],"data_offsets":[0,8]}}', 8, "shape"),
    "float offsets": ('{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0.0,16.0]}}', 16, "data_offsets"),
    "duplicate tensor": ('{"w":{' + ENTRY + '},"w":{' + ENTRY + '}}', 16, "appears twice"),
    "duplicate field": ('{"w":{' + ENTRY + ',"shape":[4]}}', 16, "'shape' is given twice"),
    "trailing bytes": ('{"w":{' + ENTRY + '}}', 20, "trailing byte"),
}


@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_malformed_safetensors_header(models, work, capsys, case):
    header, nbytes, needle = BAD_HEADERS[case]
    f = models["b"] / "model.safetensors"
    _raw_header(f, header, bytes(nbytes))
    _refused(capsys, work, [_config(work, _ta(models)), "--out", work / "out"], f, "tensor 'w'", needle)
    with pytest.raises(CheckpointError, match=needle):
        Checkpoint(f)


def test_check_output_path_creates_nothing(work):
    (work / "file").write_text("")
    with pytest.raises(OutputPathError, match="file is not a folder") as info:
        rio.check_output_path(work / "file" / "a" / "out")
    assert isinstance(info.value, ReprolibError) and str(work / "file" / "a" / "out") in str(info.value)
    assert _listing(work) == {"file"}
