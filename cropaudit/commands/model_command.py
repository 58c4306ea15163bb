"""``cropaudit model ...``: managing saliency model files (``convert`` here, the catalogue's
``list``, ``fetch`` and ``info`` from :mod:`cropaudit.commands.catalogue_command`)."""

from __future__ import annotations

import argparse

from cropaudit.commands import options as o
from cropaudit.commands.catalogue_command import ACTIONS as CATALOGUE_ACTIONS


def _convert(args: argparse.Namespace) -> int:
    from cropaudit.model.fastgaze.convert import convert

    result = convert(args.vxm, args.out)
    print(f"wrote {result.out} ({result.parameters} parameters, sha256 {result.content_hash})")
    return 0


COMMAND = o.Command(
    "model",
    "manage saliency model files",
    dest="model_command",
    metavar="ACTION",
    actions=(
        o.Command(
            "convert",
            "convert a FastGaze .vxm file into a TensorFlow SavedModel",
            (
                o.arg("vxm", metavar="VXM", help="FastGaze .vxm file (local or gs://)"),
                o.arg("out", metavar="OUT", help="output folder for the SavedModel"),
            ),
            _convert,
            "Write a SavedModel (with the .vxm's sha256 recorded) usable as --model fastgaze:OUT.",
        ),
        *CATALOGUE_ACTIONS,
    ),
)
