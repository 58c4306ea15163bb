"""Convert a ``.vxm`` file into a TensorFlow SavedModel that keeps the file's content hash.

The SavedModel holds the batched ``tf.function`` (callable directly after
``tf.saved_model.load``, which works under Keras 3 where Beam's stock Keras loader does not) and
the source hash twice: as a variable inside the model and in ``cropaudit_model.json`` beside it,
so handlers can record provenance without importing TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cropaudit import fileio
from cropaudit.model.fastgaze.handler import METADATA_FILE, FastGazeHandler
from cropaudit.model.fastgaze.vxm import read_model
from cropaudit.rundir import ownership

#: A converted model's folder: written only when missing, empty or an earlier conversion's.
MODEL_OUTPUT = ownership.OutputKind(
    "model", ("saved_model.pb", "fingerprint.pb", "variables/*", "assets/*", METADATA_FILE)
)


@dataclass(frozen=True)
class ConvertResult:
    out: str
    content_hash: str
    parameters: int


def convert(vxm_path: str, out: str) -> ConvertResult:
    """Write the SavedModel for ``vxm_path`` to the folder ``out``."""
    import tensorflow as tf

    from cropaudit.model.fastgaze.network import FastGazeNet

    data = FastGazeHandler(vxm_path)._read_vxm()
    digest = hashlib.sha256(data).hexdigest()
    model = read_model(data)
    net = FastGazeNet(model, digest)
    meta = {
        "name": FastGazeHandler.name,
        "content_hash": digest,
        "source": vxm_path,
        "parameters": model.parameter_count,
        "format": "tf-saved-model",
    }
    command = "cropaudit model convert"
    with ownership.writing(out, MODEL_OUTPUT, overwrite=False, rerun=True, command=command):
        tf.saved_model.save(net, out, signatures={"serving_default": net.__call__})
        fileio.write_bytes(fileio.join(out, METADATA_FILE), json.dumps(meta, indent=2).encode())
        ownership.finish(out, MODEL_OUTPUT)
    return ConvertResult(out, digest, model.parameter_count)
