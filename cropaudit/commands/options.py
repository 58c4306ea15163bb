"""Options that several sub-commands share, defined once so their names and help agree."""

from __future__ import annotations

import argparse


def add_trust_modified(parser: argparse.ArgumentParser, recorded: bool = True) -> None:
    """``--trust-modified``: read survival tables that differ from their run summary
    (``recorded``: the command's outputs say so)."""
    note = " (the outputs record it)" if recorded else ""
    parser.add_argument(
        "--trust-modified",
        action="store_true",
        help=f"use survival tables that differ from their run summary{note}",
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
