"""`python -m bench [name ...] [--quick] [--output DIR]`: run benchmarks, update the results, rewrite the report.

With no names, every benchmark in bench.BENCHMARKS runs. A full run writes docs/bench-results.json
and docs/PERFORMANCE.md; a --quick run (smaller, for smoke tests) writes into a scratch folder
unless --output says where, so it never replaces the reference figures by accident.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from bench import BENCHMARKS, DOCS, Context, log


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller smoke run (e.g. 100 tenants)")
    parser.add_argument("--output", type=Path, help="folder for bench-results.json and PERFORMANCE.md")
    parser.add_argument("--database", default="crm_bench", help="scratch database (dropped and created)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of HTTP sign-ups and stop")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark database behind")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    names = args.names or list(BENCHMARKS)
    if args.output is not None:
        out = args.output
    elif args.quick:
        out = Path(tempfile.gettempdir()) / "crm-bench-quick"
    else:
        out = DOCS
    ctx = Context.start(quick=args.quick, database=args.database)
    from bench import report

    try:
        if args.profile:
            from bench.signup import profile

            print(profile(ctx))
            return 0
        sections = {}
        for name in names:
            started = time.perf_counter()
            log(f"{name}: starting{' (quick)' if args.quick else ''}")
            module = importlib.import_module(BENCHMARKS[name])
            sections[name] = module.run(ctx)
            log(f"{name}: done in {time.perf_counter() - started:.1f}s")
            # Written after each benchmark, so a later one failing keeps what was measured.
            report.merge(out / "bench-results.json", {name: sections[name]})
            report.write(out / "bench-results.json", out / "PERFORMANCE.md")
    finally:
        if args.keep:
            ctx.close_apps()
        else:
            ctx.drop_database()
    log(f"wrote {out / 'PERFORMANCE.md'} and {out / 'bench-results.json'}")
    missed = [
        f"{name}: {r['measure']}"
        for name, s in sections.items()
        for t in s["tables"]
        for r in t["rows"]
        if r.get("met") is False
    ]
    for m in missed:
        log(f"target missed: {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
