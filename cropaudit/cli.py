"""The ``cropaudit`` command line: one sub-command per module in :mod:`cropaudit.commands`.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Heavy imports (Beam, TensorFlow) happen inside the handlers so that
``cropaudit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cropaudit import __version__
from cropaudit.errors import UserError

#: Command modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "run", "validate", "stats", "plan", "report", "manifest", "model", "saliency")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cropaudit",
        description="Audit saliency-based image cropping for demographic bias.",
    )
    parser.add_argument("--version", action="version", version=f"cropaudit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"cropaudit.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"cropaudit.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_pipeline_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pipeline_args = extra
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"cropaudit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # SIGINT; SIGTERM exits 143 (cropaudit.ownership)
        print("cropaudit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
