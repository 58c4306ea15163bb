"""``cropaudit model ...``: managing saliency model files.

Sub-subcommands register themselves in :data:`ACTIONS`, so ``list``, ``fetch`` and ``info`` can be
added later beside ``convert`` without touching the top-level parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from cropaudit.commands.catalogue_command import register_catalogue


def _add_convert(actions) -> None:
    p = actions.add_parser(
        "convert",
        help="convert a FastGaze .vxm file into a TensorFlow SavedModel",
        description="Write a SavedModel (with the .vxm's sha256 recorded) usable as "
        "--model fastgaze:OUT.",
    )
    p.add_argument("vxm", metavar="VXM", help="FastGaze .vxm file (local or gs://)")
    p.add_argument("out", metavar="OUT", help="output folder for the SavedModel")
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    from cropaudit.model.fastgaze.convert import convert

    result = convert(args.vxm, args.out)
    print(f"wrote {result.out} ({result.parameters} parameters, sha256 {result.content_hash})")
    return 0


#: One function per action, each adding its parser to the ``model`` sub-subparsers.
ACTIONS: tuple[Callable, ...] = (_add_convert, register_catalogue)


def register(subparsers) -> None:
    parser = subparsers.add_parser("model", help="manage saliency model files")
    actions = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    for add in ACTIONS:
        add(actions)
