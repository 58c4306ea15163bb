"""The command line the benchmark scripts share: a description from the script's docstring and
one typed ``--option`` per default (run a script as ``python benchmarks/NAME.py``, which puts
this folder on the import path)."""

from __future__ import annotations

import argparse


def bench_parser(doc: str | None, **defaults: int | float) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--name`` (underscores as dashes)
    per keyword, of its default's type."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    for name, default in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return parser
