"""How a sub-command's parser is declared: one :class:`Command` of :class:`Arg` entries per
command module (``cropaudit.cli`` builds the parsers from them), and the options several
commands share, defined once so their names and help agree (help parameterised where it differs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Arg:
    """One ``add_argument(*flags, **options)`` call."""

    flags: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    """A (sub-)command: its parser's texts and arguments, and ``run(args) -> int``, or
    ``actions``, the sub-sub-commands (``dest`` and ``metavar`` name their subparsers)."""

    name: str
    help: str
    arguments: tuple[Arg, ...] = ()
    run: Callable[..., int] | None = None
    description: str | None = None
    pipeline_args: bool = False  # options of Beam's option classes pass through to Beam
    actions: tuple[Command, ...] = ()
    dest: str | None = None
    metavar: str | None = None


def out(help: str, **options: Any) -> Arg:
    return arg("--out", help=help, **options)


def overwrite(help: str) -> Arg:
    return arg("--overwrite", action="store_true", help=help)


def flag(name: str, help: str) -> Arg:
    """A ``store_true`` option (``--quiet``, ``--no-progress``, ``--allow-large-plan`` ...)."""
    return arg(name, action="store_true", help=help)


def allow_large_plan(verb: str) -> Arg:
    return flag(
        "--allow-large-plan",
        f"{verb} a plan estimated far beyond the local runner (a cluster is meant)",
    )


def model(help: str, **options: Any) -> Arg:
    return arg("--model", help=help, **options)


def seed(help: str, **options: Any) -> Arg:
    return arg("--seed", type=int, help=help, **options)


def replicates(help: str, **options: Any) -> Arg:
    return arg("--replicates", type=int, default=1000, help=help, **options)


def level(help: str, **options: Any) -> Arg:
    return arg("--level", type=float, help=help, **options)


def image_root(help: str = "folder relative image_uris resolve against") -> Arg:
    return arg("--image-root", help=help)


def manifest_path() -> Arg:
    return arg("manifest", help="manifest path or gs:// URI")


#: ``--allow-plugins``: run ``plugin:`` croppers, which import and run Python code
#: (:func:`cropaudit.model.plugin.require_allowed`).
ALLOW_PLUGINS = flag(
    "--allow-plugins",
    "run plugin: croppers named by the config or the command line (they import and run Python "
    "code); without it only those in the user's allow list run",
)

#: ``--trust-modified``: read survival tables that differ from their run summary (every command
#: that takes it records it in its outputs).
TRUST_MODIFIED = flag(
    "--trust-modified",
    "use survival tables that differ from their run summary (the outputs record it)",
)


def criterion(verb: str) -> Arg:
    """``--criterion NAME`` (repeatable, into ``criteria``); ``verb``: what is done with it."""
    return arg(
        "--criterion",
        action="append",
        dest="criteria",
        metavar="NAME",
        help=f"criterion to {verb} (point, crop_0.56 ...); repeat for several; default all",
    )
