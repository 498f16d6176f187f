"""`python -m enhancer SUBCOMMAND ...`: the same science the web uses, for beamline scripts.

Every error a user can cause ends as one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from . import Cancelled, UserError, enhance_cli, maps_cli, probe_cli, score_cli, train_cli

EXIT_USER = 2


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error here (scripts read stderr's last line)."""

    def error(self, message):
        self.exit(EXIT_USER, f"error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m enhancer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    # Each module wires its own subcommands; this order is the order --help lists them in.
    maps_cli.add_info_parser(sub)
    maps_cli.add_degrade_parser(sub)
    train_cli.add_parser(sub)
    enhance_cli.add_enhance_parser(sub)
    score_cli.add_evaluate_parser(sub)
    score_cli.add_bench_parser(sub)
    enhance_cli.add_consistency_parser(sub)
    maps_cli.add_roi_parser(sub)
    probe_cli.add_parser(sub)
    probe_cli.add_validate_parser(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER
    except Cancelled as e:
        print(f"stopped: {e}", file=sys.stderr)
        return EXIT_USER
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
