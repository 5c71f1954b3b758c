"""python -m reprolib.zoo build|report --profile tiny|mini [--root zoo] [--groups core,lata,...] [--names base,instruct] [--out FILE]"""

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reprolib.zoo", description=__doc__)
    ap.add_argument("command", choices=["build", "report"])
    ap.add_argument("--profile", default="mini", help="tiny (tests) | mini (the book's default)")
    ap.add_argument("--root", default="zoo", help="cache folder of built models")
    ap.add_argument("--groups", default=None,
                    help="build: comma-separated model groups (core, lata, m3, ptm, noise); default all but noise")
    ap.add_argument("--names", default=None, help="build: comma-separated model names (instead of --groups)")
    ap.add_argument("--no-noise", action="store_true", help="report: skip the 3-seed score-noise study")
    ap.add_argument("--out", default=None, help="report: JSON file to write (with .md and .png beside it)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.command == "build":
        from reprolib.zoo.build import Zoo

        zoo = Zoo(args.profile, root=args.root)
        names = zoo.names(tuple(args.groups.split(","))) if args.groups else None
        if args.names:
            if args.groups:
                ap.error("give --groups or --names, not both")
            names = [n for n in args.names.split(",") if n]
            unknown = [n for n in names if n not in zoo.recipes]
            if unknown:
                ap.error(f"--names: unknown model(s) {unknown} (known: {', '.join(zoo.recipes)})")
        from reprolib.buildstate import note_output

        for name, path in zoo.build(names).items():
            note_output(path)      # this stage's output, built now or found built (make book's stage runner)
            prov = json.loads((path / "provenance.json").read_text())
            print(f"{name:14s} {path}  steps={prov['train']['steps']} tokens/s={prov['train']['tokens_per_s']}")
    else:
        from reprolib.zoo.report import markdown, report

        result = report(args.profile, root=args.root, out=args.out, with_noise=not args.no_noise)
        print(markdown(result))
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
