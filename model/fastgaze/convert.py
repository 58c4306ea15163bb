"""Convert a ``.vxm`` file into a TensorFlow SavedModel that keeps the file's content hash.

The SavedModel holds the batched ``tf.function`` (callable directly after
``tf.saved_model.load``, which works under Keras 3 where Beam's stock Keras loader does not) and
the source hash twice: as a variable inside the model and in ``cropaudit_model.json`` beside it,
so handlers can record provenance without importing TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.model.fastgaze.handler import METADATA_FILE, FastGazeHandler, is_converted
from cropaudit.model.fastgaze.vxm import read_model


@dataclass(frozen=True)
class ConvertResult:
    out: str
    content_hash: str
    parameters: int


def check_output_folder(out: str) -> None:
    """``out`` must be missing, an empty folder, or a folder an earlier convert wrote (it holds
    :data:`METADATA_FILE`): a conversion never writes into, or over, anything else."""
    if not fileio.is_remote(out) and os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"{out} exists and is not a folder; choose an empty or new folder")
    if fileio.glob(fileio.join(out, "*")) and not is_converted(out):
        raise UserError(
            f"{out} is not empty and was not written by cropaudit model convert; choose an "
            "empty or new folder"
        )


def convert(vxm_path: str, out: str) -> ConvertResult:
    """Write the SavedModel for ``vxm_path`` to the folder ``out``."""
    import tensorflow as tf

    from cropaudit.model.fastgaze.network import FastGazeNet

    check_output_folder(out)
    data = FastGazeHandler(vxm_path)._read_vxm()
    digest = hashlib.sha256(data).hexdigest()
    model = read_model(data)
    net = FastGazeNet(model, digest)
    tf.saved_model.save(net, out, signatures={"serving_default": net.__call__})
    meta = {
        "name": FastGazeHandler.name,
        "content_hash": digest,
        "source": vxm_path,
        "parameters": model.parameter_count,
        "format": "tf-saved-model",
    }
    fileio.write_bytes(fileio.join(out, METADATA_FILE), json.dumps(meta, indent=2).encode())
    return ConvertResult(out, digest, model.parameter_count)
