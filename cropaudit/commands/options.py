"""Options that several sub-commands share, defined once so their names and help agree."""

from __future__ import annotations

import argparse


def add_trust_modified(parser: argparse.ArgumentParser) -> None:
    """``--trust-modified``: read survival tables that differ from their run summary (every
    command that takes it records it in its outputs)."""
    parser.add_argument(
        "--trust-modified",
        action="store_true",
        help="use survival tables that differ from their run summary (the outputs record it)",
    )


def add_criterion(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--criterion NAME`` (repeatable, into ``criteria``); ``verb``: what is done with it."""
    parser.add_argument(
        "--criterion",
        action="append",
        dest="criteria",
        metavar="NAME",
        help=f"criterion to {verb} (point, crop_0.56 ...); repeat for several; default all",
    )
