"""`python -m bench [<benchmark>] [options]`: one subcommand per benchmark; none (or
`all`) runs the whole suite."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import deadline_sweep, money_path, order_status, suite, supplier_search


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="command", metavar="<benchmark>")
    supplier_search.add_parser(sub)
    money_path.add_parser(sub)
    deadline_sweep.add_parser(sub)
    order_status.add_parser(sub)
    suite.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:  # the suite, with its options: `python -m bench --engine sqlite`
        suite_args = argparse.ArgumentParser(prog="python -m bench")
        suite.add_arguments(suite_args)
        return suite.run(suite_args.parse_args(argv))
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
