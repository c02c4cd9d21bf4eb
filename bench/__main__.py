"""`python -m bench <benchmark> [options]`: one subcommand per benchmark."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import deadline_sweep, fanout, money_path, supplier_search


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="command", metavar="<benchmark>")
    supplier_search.add_parser(sub)
    money_path.add_parser(sub)
    deadline_sweep.add_parser(sub)
    fanout.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 2
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
