"""`python -m bench [<benchmark>] [options]`: one subcommand per benchmark; none (or
`all`) runs the whole suite."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import (
    deadline_sweep,
    fanout,
    money_path,
    order_cpu,
    order_status,
    suite,
    supplier_search,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="command", metavar="<benchmark>")
    supplier_search.add_parser(sub)
    money_path.add_parser(sub)
    deadline_sweep.add_parser(sub)
    fanout.add_parser(sub)
    order_status.add_parser(sub)
    order_cpu.add_parser(sub)
    suite.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        # No benchmark named: the suite, with its options (`python -m bench --engine sqlite`).
        suite_parser = argparse.ArgumentParser(prog="python -m bench", description=suite.__doc__)
        suite.add_arguments(suite_parser)
        return suite.run(suite_parser.parse_args(args_list))
    args = parser().parse_args(args_list)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
