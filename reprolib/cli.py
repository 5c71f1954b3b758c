"""Command line: ``reprolib merge CONFIG.yaml --out DIR [--device cuda]``, ``reprolib methods`` and
``reprolib book [--only NOTEBOOK] [-p NAME VALUE]`` (see ``reprolib.book``)."""

from __future__ import annotations

import argparse
import sys

from reprolib.errors import ReprolibError


def _size(text: str) -> int:
    """'2GB', '500MB', '2GiB', '1048576' → bytes (binary units)."""
    from reprolib.errors import ConfigError

    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except (ValueError, IndexError):
        raise ConfigError(f"--max-shard-size {text!r} is not a size (e.g. 2GB, 500MB)") from None
    if value < 1:
        raise ConfigError(f"--max-shard-size {text!r} must be positive")
    return int(value)


def _merge(args: argparse.Namespace) -> int:
    from reprolib.merge.config import load_config
    from reprolib.merge.engine import merge

    spec = load_config(args.config)
    max_shard = _size(args.max_shard_size)
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
        print(f"reprolib: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reprolib: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
