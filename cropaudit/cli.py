"""The ``cropaudit`` command line: one sub-command per ``<name>_command`` module in
:mod:`cropaudit.commands`.

Each command module declares its parser once, as data: ``COMMAND``, a
:class:`~cropaudit.commands.options.Command`; :func:`add_command` builds the parser from it.
Heavy imports (Beam, TensorFlow) happen inside the handlers so that
``cropaudit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys

from cropaudit import __version__, shutdown, startup_logs
from cropaudit.commands.options import Command
from cropaudit.errors import UserError, disk_full

VERBOSE_HELP = "also show the libraries' start-up logging (TensorFlow, absl, Beam)"

#: Command modules, in the order ``--help`` lists them.
COMMANDS = (
    "demo",
    "run",
    "validate",
    "stats",
    "plan",
    "report",
    "manifest",
    "model",
    "saliency",
    "explore",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cropaudit",
        description="Audit saliency-based image cropping for demographic bias.",
    )
    parser.add_argument("--version", action="version", version=f"cropaudit {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"cropaudit.commands.{name}_command")
        except ModuleNotFoundError as exc:
            if exc.name != f"cropaudit.commands.{name}_command":
                raise
            continue
        add_command(sub, module.COMMAND)
    _add_verbose(parser)
    return parser


def add_command(subparsers, command: Command) -> argparse.ArgumentParser:
    """Adds ``command``'s parser (and its actions' parsers) to ``subparsers``."""
    parser = subparsers.add_parser(command.name, help=command.help, description=command.description)
    for argument in command.arguments:
        parser.add_argument(*argument.flags, **argument.options)
    if command.actions:
        actions = parser.add_subparsers(dest=command.dest, metavar=command.metavar, required=True)
        for action in command.actions:
            add_command(actions, action)
    if command.run is not None:
        parser.set_defaults(func=command.run, accepts_pipeline_args=command.pipeline_args)
        parser.set_defaults(command_flags=tuple(parser._option_string_actions))
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` after any (sub-)command too (``cropaudit demo --verbose``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                if "--verbose" not in child._option_string_actions:
                    child.add_argument(
                        "--verbose",
                        action="store_true",
                        default=argparse.SUPPRESS,
                        help=VERBOSE_HELP,
                    )
                _add_verbose(child)


def unknown_option(args: argparse.Namespace, extra: list[str]) -> str | None:
    """One line for the first option neither the command nor Beam's option classes define
    (Beam would drop it silently and run another experiment), naming the nearest flag."""
    if not extra:
        return None
    candidates: tuple[str, ...] = getattr(args, "command_flags", ())
    unknown = extra
    if getattr(args, "accepts_pipeline_args", False):
        from cropaudit.pipelines.runners import beam_flags, unknown_pipeline_args

        unknown = unknown_pipeline_args(extra)
        candidates = (*candidates, *sorted(beam_flags()))
    if not unknown:
        return None
    first = unknown[0]
    near = difflib.get_close_matches(first, candidates, n=1, cutoff=0.6)
    kind = "option" if first.startswith("-") else "argument"
    hint = f"; did you mean {near[0]}?" if near else "; see --help"
    return f"cropaudit {args.command}: error: unknown {kind} {first}{hint}"


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # this process's own command line: one way out of it (cropaudit.shutdown)
        return shutdown.run_command_line(main, sys.argv[1:], quiet="--verbose" not in sys.argv)
    if "--verbose" not in argv:  # before the parser: building it imports Beam
        startup_logs.quiet()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.pipeline_args = extra
    try:
        refused = unknown_option(args, extra)
        if refused:
            print(refused, file=sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"cropaudit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # SIGINT; SIGTERM exits 143 (cropaudit.rundir.ownership)
        print("cropaudit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        full = disk_full(exc, getattr(args, "out", None))
        if full is None:
            raise
        print(f"cropaudit: error: {full}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
