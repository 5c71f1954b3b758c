"""python -m reprolib.zoo build|report --profile tiny|mini [--root zoo] [--out FILE]"""

import argparse
import json
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reprolib.zoo", description=__doc__)
    ap.add_argument("command", choices=["build", "report"])
    ap.add_argument("--profile", default="mini", help="tiny (tests) | mini (the book's default)")
    ap.add_argument("--root", default="zoo", help="cache folder of built models")
    ap.add_argument("--out", default=None, help="report: JSON file to write")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.command == "build":
        from reprolib.zoo.build import Zoo

        for name, path in Zoo(args.profile, root=args.root).build().items():
            prov = json.loads((path / "provenance.json").read_text())
            print(f"{name:10s} {path}  steps={prov['train']['steps']} tokens/s={prov['train']['tokens_per_s']}")
    else:
        from reprolib.zoo.report import report

        result = report(args.profile, root=args.root, out=args.out)
        for name, scores in result["scores"].items():
            print(name.ljust(10), " ".join(f"{k}={v:.3f}" for k, v in scores.items()))
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
