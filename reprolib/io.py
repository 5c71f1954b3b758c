"""Checkpoint I/O: read HF folders tensor by tensor (row ranges, no mmap), write shards atomically.

Reading uses ``os.pread`` at the offsets in the safetensors header instead of memory-mapping the
file, so pages of the inputs never count towards the merging process's resident memory and a
tensor can be read one block of rows at a time. Writing plans every shard's header up front (the
shapes and dtypes are known before any value is computed) and then streams each tensor's rows to
its offset, so no shard is ever held in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
import struct
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from reprolib.errors import CheckpointError, OutputExistsError, OutputPathError

# safetensors dtype names <-> torch dtypes
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
FLOAT_DTYPES = {torch.float64, torch.float32, torch.float16, torch.bfloat16}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
MAX_HEADER_BYTES = 100 * 1024 * 1024
# Files copied from the base checkpoint next to the merged weights.
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: file, dtype, shape and absolute byte range."""

    name: str
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class _JSONObject(dict):
    """A JSON object that remembers keys given more than once (``json`` keeps only the last)."""

    duplicates: list[str]


def _json_object(pairs: list[tuple[str, object]]) -> _JSONObject:
    obj = _JSONObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_regular(path: Path, what: str = "safetensors file") -> None:
    """Refuse FIFOs, devices and folders (reading a FIFO would hang)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from e
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: {what} is not a regular file")


def _entry(path: Path, name: str, entry) -> tuple[torch.dtype, tuple[int, ...], int, int]:
    """Validate one tensor's header entry: dtype name, shape of non-negative ints, two int offsets."""
    where = f"{path}: tensor '{name}'"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where}: header entry must be a JSON object, got {entry!r}")
    if getattr(entry, "duplicates", None):
        raise CheckpointError(f"{where}: header field '{entry.duplicates[0]}' is given twice")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in entry:
            raise CheckpointError(f"{where} has unsupported or missing field '{key}'")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CheckpointError(f"{where} has unsupported or missing field 'dtype' = {dtype!r} "
                              f"(supported: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
        raise CheckpointError(f"{where} has a malformed shape {shape!r} (must be a list of integers)")
    if any(d < 0 for d in shape):
        raise CheckpointError(f"{where} has a negative dimension in shape {shape}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(x) for x in offsets):
        raise CheckpointError(f"{where} has malformed data_offsets {offsets!r} (must be two integers)")
    begin, end = offsets
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if begin < 0 or end - begin != nbytes:
        raise CheckpointError(f"{where}: byte range [{begin}, {end}) does not match shape {shape} {dtype}")
    return DTYPES[dtype], tuple(shape), begin, end


def _read_header_json(path: Path) -> tuple[dict, int, int]:
    """(header object, bytes before the data, file size)."""
    _check_regular(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes, no header)")
            (n,) = struct.unpack("<Q", raw)
            if n > MAX_HEADER_BYTES or 8 + n > size:
                raise CheckpointError(
                    f"{path}: corrupt or truncated safetensors file (header claims {n} bytes, file has {size})"
                )
            header_bytes = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from e
    try:
        header = json.loads(header_bytes.decode("utf-8"), object_pairs_hook=_json_object)
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt safetensors header ({e})") from e
    if header.duplicates:
        raise CheckpointError(f"{path}: tensor '{header.duplicates[0]}' appears twice in the safetensors header")
    return header, 8 + n, size


def _parse_header(path: Path) -> tuple[dict[str, TensorInfo], dict]:
    """Parse and validate a safetensors header; raise CheckpointError naming the file/tensor.

    Every tensor's data must be contiguous with the next one's, and the last tensor's data must
    end exactly at the end of the file.
    """
    header, data_start, size = _read_header_json(path)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or getattr(metadata, "duplicates", None):
        raise CheckpointError(f"{path}: malformed __metadata__ in the safetensors header")
    infos: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        dtype, shape, begin, end = _entry(path, name, entry)
        infos[name] = TensorInfo(name, path, dtype, shape, data_start + begin, data_start + end)
    expected, last = data_start, None
    for info in sorted(infos.values(), key=lambda t: (t.start, t.end)):
        if info.start != expected:
            raise CheckpointError(f"{path}: tensor '{info.name}' overlaps another or leaves a gap (data offsets are "
                                  "not contiguous)")
        expected, last = info.end, info.name
    if expected > size:
        raise CheckpointError(
            f"{path}: truncated safetensors file: tensor '{last}' ends at byte {expected}, file has {size}"
        )
    if expected < size:
        after = f"after tensor '{last}'" if last else "after the header"
        raise CheckpointError(f"{path}: {size - expected} unexpected trailing byte(s) {after} "
                              f"(data ends at byte {expected}, file has {size})")
    return infos, metadata


def read_tensor_range(info: TensorInfo, start: int = 0, end: int | None = None,
                      files: "OpenFiles | None" = None) -> torch.Tensor:
    """Read flat entries [start, end) of a tensor (1-D, stored dtype) with ``pread``, without mmap.
    ``files`` keeps descriptors open across calls (the merge engine reads thousands of blocks)."""
    end = info.numel if end is None else end
    esize = info.dtype.itemsize
    nbytes = (end - start) * esize
    if nbytes <= 0:
        return torch.empty(0, dtype=info.dtype)
    buf = bytearray(nbytes)
    try:
        fd = files.get(info.file) if files is not None else os.open(info.file, os.O_RDONLY)
        try:
            view = memoryview(buf)
            got, offset = 0, info.start + start * esize
            while got < nbytes:
                n = os.preadv(fd, [view[got:]], offset + got)
                if n == 0:
                    raise CheckpointError(f"{info.file}: truncated while reading tensor '{info.name}'")
                got += n
        finally:
            if files is None:
                os.close(fd)
    except OSError as e:
        raise CheckpointError(f"{info.file}: cannot read tensor '{info.name}' ({e.strerror or e})") from e
    return torch.frombuffer(buf, dtype=info.dtype)


class OpenFiles:
    """Read-only descriptors kept open by path (``pread`` is safe from several threads); ``close()``
    or a ``with`` block releases them."""

    def __init__(self):
        import threading

        self._fds: dict = {}
        self._lock = threading.Lock()

    def get(self, path) -> int:
        with self._lock:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._fds[path] = os.open(path, os.O_RDONLY)
            return fd

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def __enter__(self) -> "OpenFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_tensor(info: TensorInfo) -> torch.Tensor:
    """The whole tensor, in its shape and stored dtype."""
    return read_tensor_range(info).reshape(info.shape)


class Checkpoint:
    """A checkpoint: an HF folder (single or sharded safetensors + index) or one .safetensors file.

    Nothing is loaded until a tensor is read. Pickle checkpoints (``.bin``/``.pt``) are refused:
    unpickling executes code; convert them to safetensors first.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise CheckpointError(f"{self.path}: checkpoint does not exist")
        self.config: dict = {}
        if not (self.path.is_file() or self.path.is_dir()):
            raise CheckpointError(f"{self.path}: checkpoint is neither a regular file nor a folder")
        if self.path.is_file():
            if self.path.suffix in PICKLE_SUFFIXES:
                raise CheckpointError(f"{self.path}: pickle weights are refused (pickle can execute code); "
                                      "convert to safetensors first")
            files = [self.path]
            folder = self.path.parent
        else:
            folder = self.path
            files = self._weight_files(folder)
            cfg = folder / "config.json"
            if cfg.exists():
                _check_regular(cfg, "config.json")
                try:
                    self.config = json.loads(cfg.read_text())
                except (OSError, ValueError) as e:
                    raise CheckpointError(f"{cfg}: unreadable config.json ({e})") from e
                if not isinstance(self.config, dict):
                    raise CheckpointError(f"{cfg}: config.json must hold a JSON object")
        self.folder = folder
        self.files = files
        self.tensors: dict[str, TensorInfo] = {}
        for f in files:
            infos, _ = _parse_header(f)
            for name, info in infos.items():
                if name in self.tensors:
                    first = _relative(self.tensors[name].file, folder)
                    raise CheckpointError(
                        f"{self.path}: tensor '{name}' is stored twice ({first}, {_relative(f, folder)})")
                self.tensors[name] = info
        if not self.tensors:
            raise CheckpointError(f"{self.path}: checkpoint holds no tensors")

    @staticmethod
    def _weight_files(folder: Path) -> list[Path]:
        index = folder / "model.safetensors.index.json"
        if index.exists():
            return _indexed_shards(index)
        files = sorted(folder.glob("*.safetensors"))
        for f in files:
            _check_regular(f)
        if files:
            return files
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise CheckpointError(
                f"{folder}: only pickle weights found ({', '.join(pickled)}); pickle can execute code, "
                "so reprolib reads safetensors only. Convert once with "
                "`transformers.AutoModel.from_pretrained(path).save_pretrained(out, safe_serialization=True)`."
            )
        raise CheckpointError(f"{folder}: no *.safetensors weights found")

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, {len(self.tensors)} tensors)"

    @property
    def nbytes(self) -> int:
        return sum(t.end - t.start for t in self.tensors.values())

    def info(self, name: str) -> TensorInfo:
        try:
            return self.tensors[name]
        except KeyError:
            raise CheckpointError(f"{self.path}: tensor '{name}' not found") from None

    def read(self, name: str) -> torch.Tensor:
        return read_tensor(self.info(name))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Load every tensor (for small models and tests)."""
        return {name: self.read(name) for name in self.tensors}

    def side_files(self) -> list[Path]:
        """Config and tokenizer files beside the weights (none for a bare .safetensors file)."""
        if self.path.is_file():
            return []
        return [self.folder / f for f in SIDE_FILES if (self.folder / f).is_file()]


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (POSIX separators), or its name when it lies elsewhere."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def _indexed_shards(index: Path) -> list[Path]:
    """The shards a ``model.safetensors.index.json`` lists: each must be a regular file inside the
    index's folder (named by a relative path without ``..``; symlinks, as in the HF cache, are followed)."""
    folder = index.parent
    try:
        _check_regular(index, "safetensors index")
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{index}: unreadable safetensors index ({type(e).__name__}: {e})") from e
    files, missing = [], []
    for name in names:
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"{index}: unreadable safetensors index (shard name {name!r} is not a file name)")
        rel = os.path.normpath(name)
        if os.path.isabs(rel) or rel == ".." or rel.startswith(".." + os.sep):
            raise CheckpointError(f"{index}: shard '{name}' lies outside the checkpoint folder {folder}")
        f = folder / rel
        if not f.exists():
            missing.append(str(f))
        elif not f.is_file():
            raise CheckpointError(f"{index}: shard '{name}' is not a regular file")
        files.append(f)
    if missing:
        raise CheckpointError(f"{index}: lists shard(s) that do not exist: {', '.join(missing)}")
    return files


# ----------------------------------------------------------------------------- writing


def _header_bytes(entries: list[tuple[str, torch.dtype, tuple[int, ...]]], metadata: dict) -> tuple[bytes, list[int]]:
    """Build a safetensors header (8-byte length + JSON padded to 8 bytes) and per-tensor byte sizes."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset, sizes = 0, []
    for name, dtype, shape in entries:
        n = math.prod(shape) * dtype.itemsize
        header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
        sizes.append(n)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    return struct.pack("<Q", len(blob)) + blob, sizes


class ShardedWriter:
    """Stream tensors into HF-style shards whose headers are planned before any value is known.

    Tensors must be written in plan order, each as one or more consecutive row blocks.
    ``max_shard_bytes`` bounds each shard; the file names follow ``transformers``
    (``model.safetensors`` or ``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``).
    """

    def __init__(self, folder: Path, entries: list[tuple[str, torch.dtype, tuple[int, ...]]],
                 max_shard_bytes: int = 2 * 1024**3, metadata: dict | None = None):
        self.folder = Path(folder)
        self.metadata = {"format": "pt", **(metadata or {})}
        shards: list[list] = [[]]
        size = 0
        for e in entries:
            n = math.prod(e[2]) * e[1].itemsize
            if shards[-1] and size + n > max_shard_bytes:
                shards.append([])
                size = 0
            shards[-1].append(e)
            size += n
        count = len(shards)
        self.shards = []
        for i, shard_entries in enumerate(shards):
            fname = "model.safetensors" if count == 1 else f"model-{i + 1:05d}-of-{count:05d}.safetensors"
            self.shards.append((fname, shard_entries))
        self._order = [(fname, name, dtype, shape) for fname, es in self.shards for name, dtype, shape in es]
        self._pos = 0
        self._file = None
        self._file_name: str | None = None
        self._remaining = 0
        self._sizes: dict[str, int] = {}
        self.total_bytes = 0

    def _open(self, fname: str) -> None:
        if self._file is not None:
            self._file.close()
        entries = next(es for f, es in self.shards if f == fname)
        header, sizes = _header_bytes(entries, self.metadata)
        self._sizes.update({e[0]: s for e, s in zip(entries, sizes)})
        self._file = open(self.folder / fname, "wb")
        self._file.write(header)
        self._file_name = fname

    def write(self, name: str, block: torch.Tensor, last: bool) -> None:
        """Append one row block of tensor ``name``; ``last`` marks its final block."""
        fname, expected, dtype, shape = self._order[self._pos]
        if name != expected:
            raise RuntimeError(f"ShardedWriter: got tensor '{name}', expected '{expected}' next")
        if block.dtype != dtype:
            raise RuntimeError(f"ShardedWriter: tensor '{name}' has dtype {block.dtype}, planned {dtype}")
        if self._file_name != fname:
            self._open(fname)
            self._remaining = self._sizes[name]
        elif self._remaining == 0:
            self._remaining = self._sizes[name]
        data = block.contiguous().reshape(-1).view(torch.uint8).numpy() if block.numel() else b""
        nbytes = len(data)
        if nbytes > self._remaining:
            raise RuntimeError(f"ShardedWriter: tensor '{name}' received more bytes than its shape {list(shape)}")
        self._file.write(memoryview(data))
        self._remaining -= nbytes
        self.total_bytes += nbytes
        if last:
            if self._remaining:
                raise RuntimeError(f"ShardedWriter: tensor '{name}' is {self._remaining} bytes short")
            self._pos += 1

    def close(self) -> list[str]:
        """Close the last shard, write the index for sharded output, return the file names."""
        if self._pos != len(self._order):
            raise RuntimeError(f"ShardedWriter: {len(self._order) - self._pos} tensors were never written")
        if self._file is not None:
            self._file.close()
            self._file = None
        names = [f for f, _ in self.shards]
        if len(names) > 1:
            index = {
                "metadata": {"total_size": self.total_bytes},
                "weight_map": {name: f for f, es in self.shards for name, _, _ in es},
            }
            (self.folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        return names

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class BackgroundWriter:
    """A :class:`ShardedWriter` fed from the caller's thread and writing in its own, so the disk
    writes overlap the next blocks' reads and arithmetic. At most ``depth`` blocks wait in the queue
    (bounded memory); an error in the writer thread is raised in the caller at its next call."""

    def __init__(self, writer: ShardedWriter, depth: int = 4):
        import queue
        import threading

        self.writer, self._error = writer, None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="reprolib-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self.writer.write(*item)
                except BaseException as e:  # handed to the caller
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, name: str, block: torch.Tensor, last: bool) -> None:
        self._raise()
        self._queue.put((name, block, last))

    def _join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> list[str]:
        self._join()
        self._raise()
        return self.writer.close()

    def abort(self) -> None:
        self._join()
        self.writer.abort()


TMP_MARKER = ".reprolib-partial.json"   # in every temporary output folder: who is writing it
_TMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{8}$")
_TMP_KEEP = 60                          # characters of the output's name kept in its temporary sibling's name


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_output_path(out: str | os.PathLike) -> None:
    """Refuse, before any work, an output path that cannot be created as a new folder: one that
    exists (a dangling symlink included), lies under a file, in a read-only folder, or has a name
    longer than the file system allows. Creates nothing."""
    out = Path(out)
    if os.path.lexists(out):
        raise OutputExistsError(f"{out}: output path already exists; choose a new path or remove it")
    ancestor, missing = out.parent, [out.name]
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        missing.append(ancestor.name)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"{out}: cannot create the output: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{out}: cannot create the output: {ancestor} is not writable")
    limit = _name_max(ancestor)
    for name in missing:
        if len(os.fsencode(name)) > limit:
            raise OutputPathError(f"{out}: cannot create the output: the name '{name[:40]}...' is "
                                  f"{len(os.fsencode(name))} bytes; the file system allows {limit}")


def _owner() -> dict:
    """Who writes a temporary output: this process, its host and its PID namespace (containers)."""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = ""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_ns": pid_ns}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        return True
    return True


def remove_stale_outputs(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary output folders left in ``folder`` by reprolib processes that died (SIGKILL,
    power loss). Only folders named ``.<name>.tmp-<8 hex>`` holding reprolib's marker file, written
    on this host and in this PID namespace by a process that no longer exists, are removed. Returns them."""
    me, removed = _owner(), []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for tmp in entries:
        if not _TMP_NAME.match(tmp.name) or tmp.is_symlink() or not tmp.is_dir():
            continue
        try:
            owner = json.loads((tmp / TMP_MARKER).read_text())
            pid, same_place = owner["pid"], all(owner[k] == me[k] for k in ("host", "pid_ns"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if same_place and _is_int(pid) and pid > 0 and not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the folders created, outermost first."""
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
    except BaseException:
        _remove_empty(created)
        raise
    return created


def _remove_empty(folders: list[Path]) -> None:
    for d in reversed(folders):
        try:
            d.rmdir()
        except OSError:
            return


@contextmanager
def atomic_output_dir(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder that is renamed to ``out`` only if the block succeeds.

    Refuses an ``out`` that already exists or cannot be created (:func:`check_output_path`). On
    any exception (including KeyboardInterrupt) the temporary folder and the parent folders made
    for it are removed, so nothing half-written is ever left behind; an OSError (disk full, ...)
    becomes an OutputPathError naming ``out``. The folder holds a marker naming this process until
    the rename, so :func:`remove_stale_outputs` (run here first) can clear it if this process is killed.
    """
    out = Path(out)
    check_output_path(out)
    remove_stale_outputs(out.parent)
    created: list[Path] = []
    tmp = out.parent / f".{out.name[:_TMP_KEEP]}.tmp-{uuid.uuid4().hex[:8]}"
    made_tmp = False
    try:
        created = _make_parents(out.parent)
        tmp.mkdir()
        made_tmp = True
        (tmp / TMP_MARKER).write_text(json.dumps(_owner()))
        yield tmp
        (tmp / TMP_MARKER).unlink()
        if os.path.lexists(out):
            raise OutputExistsError(f"{out}: output path appeared while merging; refusing to overwrite")
        os.rename(tmp, out)
    except BaseException as e:
        if made_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        if isinstance(e, OSError):
            raise OutputPathError(f"{out}: cannot write the output ({e.strerror or e})") from e
        raise


# ----------------------------------------------------------------------------- provenance


def sha256_file(path: str | os.PathLike, block: int = 8 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_hashes(ckpt: Checkpoint) -> dict[str, str]:
    """sha256 of every weight file and config of a checkpoint, keyed by path relative to its folder."""
    files = list(ckpt.files) + [p for p in ckpt.side_files() if p.name == "config.json"]
    hashes = {}
    for p in files:
        try:
            hashes[_relative(p, ckpt.folder)] = sha256_file(p)
        except OSError as e:
            raise CheckpointError(f"{p}: cannot read ({e.strerror or e})") from e
    return hashes


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows of it."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        return cpu


def machine() -> dict:
    """The hardware this process computes on: CPU model, the CPU kernel level torch dispatches to
    (e.g. AVX2, AVX512), cores, and the GPU when torch sees one. Trained bytes can depend on the kernel
    level (float reductions are split differently), so every training record and summary keeps it."""
    out = {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count()}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def package_versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("reprolib", "torch", "safetensors", "transformers", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
