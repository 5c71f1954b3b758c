"""Command line: ``reprolib merge CONFIG.yaml --out DIR [--device cuda]``, ``reprolib methods`` and
``reprolib book [--only NOTEBOOK] [-p NAME VALUE]`` (see ``reprolib.book``)."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from contextlib import contextmanager

from reprolib.errors import ReprolibError

# Signals that end a merge like Ctrl-C does: the temporary output folder is removed on the way out.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, frame):
    for s in STOP_SIGNALS:  # a second signal must not interrupt the cleanup
        signal.signal(s, signal.SIG_IGN)
    raise Stopped(signum)


@contextmanager
def stop_signals_interrupt():
    """Within the block, SIGTERM/SIGHUP raise :class:`Stopped` (previous handlers restored after).
    Only the main thread can take signals; elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _size(text: str) -> int:
    """'2GB', '500MB', '2GiB', '1048576' → bytes (binary units)."""
    from reprolib.errors import ConfigError

    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except (ValueError, IndexError):
        raise ConfigError(f"--max-shard-size {text!r} is not a size (e.g. 2GB, 500MB)") from None
    if not math.isfinite(value) or value < 1:
        raise ConfigError(f"--max-shard-size {text!r} must be a positive, finite size (e.g. 2GB, 500MB)")
    return int(value)


def _merge(args: argparse.Namespace) -> int:
    from reprolib.merge.config import load_config
    from reprolib.merge.engine import merge

    from reprolib.io import check_output_path

    check_output_path(args.out)
    max_shard = _size(args.max_shard_size)
    spec = load_config(args.config)
    with stop_signals_interrupt():
        merge(spec, args.out, device=args.device, block_elems=args.block_elems,
              max_shard_bytes=max_shard, progress=not args.no_progress,
              hash_inputs=not args.no_hash)
    return 0


def _methods(args: argparse.Namespace) -> int:
    from reprolib.merge.registry import REGISTRY, methods_markdown

    if args.markdown:
        print(methods_markdown())
        return 0
    for name, m in sorted(REGISTRY.items()):
        print(name)
        for p in m.params:
            print(f"    {p.name}: {p.kind.__name__} = {p.default!r}  # {p.doc}")
        for p in m.model_params:
            print(f"    models[].{p.name}: {p.kind.__name__} = {p.default!r}  # {p.doc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["book"]:  # its own argument parser (papermill-style -p NAME VALUE pairs)
        from reprolib.book import main as book_main

        return book_main(argv[1:])
    parser = argparse.ArgumentParser(prog="reprolib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pm = sub.add_parser("merge", help="merge checkpoints described by a mergekit-style YAML")
    pm.add_argument("config", help="merge YAML (merge_method, base_model, models, parameters, dtype, seed)")
    pm.add_argument("--out", required=True, help="output folder (must not exist)")
    pm.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    pm.add_argument("--block-elems", type=int, default=1 << 20, help="float32 entries per model per block (memory bound)")
    pm.add_argument("--max-shard-size", default="2GB", help="largest output shard, e.g. 2GB, 500MB")
    pm.add_argument("--no-progress", action="store_true", help="no progress bars")
    pm.add_argument("--no-hash", action="store_true", help="skip sha256 of inputs in provenance.json")
    pm.set_defaults(func=_merge)
    pl = sub.add_parser("methods", help="list merge methods and their parameters")
    pl.add_argument("--markdown", action="store_true", help="print one Markdown table (used by the book)")
    pl.set_defaults(func=_methods)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ReprolibError as e:
        return _error(str(e))
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        return _error(f"{where}{e.strerror or e}")
    except ValueError as e:
        return _error(str(e))
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"reprolib: interrupted ({signal.Signals(signum).name}); no output was written", file=sys.stderr)
        return 128 + signum


def _error(message: str) -> int:
    """Print one line ``reprolib: error: ...`` to stderr; the exit status for bad input."""
    print(f"reprolib: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
