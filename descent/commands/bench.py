"""``descent bench NAME``: run one of the benchmarks in ``bench`` and print its tables.

Every benchmark takes ``--quick`` (its smallest run), ``--markdown`` (print Markdown tables) and
``--write [PATH]`` (replace its block in docs/benchmarks.md, with the date and the machine).
torch is imported only when a benchmark runs, so ``descent --help`` stays fast."""

from __future__ import annotations

import argparse
from importlib import import_module
from pathlib import Path

COMMON = ("quick", "markdown", "write")


def register(name: str, parser: argparse.ArgumentParser) -> None:
    from bench import BENCHMARKS

    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for bench_name, module_name in BENCHMARKS.items():
        module = import_module(module_name)
        p = sub.add_parser(bench_name, help=module.HELP, description=module.__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.add_argument("--quick", action="store_true",
                       help="the smallest run: " + " ".join(_flags(module.QUICK)))
        p.add_argument("--markdown", action="store_true", help="print Markdown tables")
        p.add_argument("--write", nargs="?", const="docs/benchmarks.md", default=None, metavar="PATH",
                       help="also replace this benchmark's block in PATH (default docs/benchmarks.md)")
        p.set_defaults(_bench=module_name, _bench_defaults={k: p.get_default(k) for k in module.QUICK},
                       _bench_parser=p)


def _flags(values: dict) -> list[str]:
    """Command-line flags setting ``values`` (option dest -> value)."""
    out = []
    for dest, value in values.items():
        flag = "--" + dest.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value not in (False, None):
            out.append(f"{flag} {','.join(map(str, value)) if isinstance(value, list) else value}")
    return out


def command_line(args: argparse.Namespace) -> str:
    """``descent bench NAME`` with the options that differ from their defaults."""
    parser = args._bench_parser
    values = {a.dest: getattr(args, a.dest) for a in parser._actions
              if a.dest not in ("help", "write") and getattr(args, a.dest, None) != a.default}
    return " ".join(["descent bench", args.benchmark, *_flags(values)])


def run(args: argparse.Namespace) -> int:
    from bench.docs import block, write_section
    from bench.table import render_all

    module = import_module(args._bench)
    line = command_line(args)
    if args.quick:  # options left at their defaults take the quick values
        for dest, value in module.QUICK.items():
            if getattr(args, dest) == args._bench_defaults[dest]:
                setattr(args, dest, value)
    tables = module.measure(args)
    print(render_all(tables, markdown=args.markdown))
    if args.write:
        path = Path(args.write)
        write_section(path, args.benchmark, module.TITLE, block(args.benchmark, line, tables))
        print(f"\nwrote the {args.benchmark} block of {path}")
    return 0
