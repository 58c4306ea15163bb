"""Any Keras (``.keras``) or SavedModel saliency model, loaded by path (local or ``gs://``).

Contract for such a model: input (B, h, w, 3) float32 RGB on a 0..255 scale, resized to fit the
configured box; output (B, rows, cols) or (B, rows, cols, 1) saliency. Output cells map back to
the image by the model's effective stride (input size / output size).
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import numpy as np

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.model.base import (
    SaliencyGrid,
    SaliencyModel,
    SaliencyModelHandler,
    check_finite_weights,
    stride_grid,
    variable_weights,
)
from cropaudit.model.resize import DEFAULT_OPTIONS, PreprocessOptions, resize_for_model


def _files_under(path: str) -> list[str]:
    if path.endswith(".keras") or path.endswith(".h5"):
        return [path]
    return fileio.glob(fileio.join(path, "**"))


def content_hash(path: str) -> str:
    """sha256 over the model's files (relative names and bytes), in sorted order."""
    path = path.rstrip("/")
    files = _files_under(path)
    if not files:
        raise UserError(f"no model files found at {path}")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f[len(path) :].encode())
        digest.update(hashlib.sha256(fileio.read_bytes(f)).digest())
    return digest.hexdigest()


def localize(path: str) -> str:
    """A local copy of a remote model (TF and Keras load local paths most reliably)."""
    if not fileio.is_remote(path):
        return path
    local = tempfile.mkdtemp(prefix="cropaudit-model-")
    for f in _files_under(path):
        rel = f[len(path) :].lstrip("/") or os.path.basename(path)
        fileio.write_bytes(os.path.join(local, rel), fileio.read_bytes(f))
    return local if not path.endswith((".keras", ".h5")) else os.path.join(local, rel)


def load_saved_model(path: str):
    """``tf.saved_model.load`` of a local copy (TF's own gs:// client ignores Beam's GCS
    settings and emulators), with one-line errors and its weights checked finite."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(localize(path))
    except Exception as exc:  # TF raises many types for a folder that is not a SavedModel
        raise UserError(f"cannot load SavedModel {path}: {_first_line(exc)}") from None
    check_finite_weights(variable_weights(loaded), path)
    return loaded


def load_keras_file(path: str):
    """A ``.keras``/``.h5`` model file, with one-line errors and its weights checked finite."""
    import keras

    try:
        model = keras.models.load_model(localize(path), compile=False)
    except Exception as exc:  # Keras raises many types for a file that is not a model
        raise UserError(f"cannot load Keras model {path}: {_first_line(exc)}") from None
    check_finite_weights(variable_weights(model), path)
    return model


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


class KerasSaliencyModel(SaliencyModel):
    def __init__(self, path: str):
        import tensorflow as tf

        self._tf = tf
        if path.endswith((".keras", ".h5")):
            fn = load_keras_file(path)
        else:
            loaded = load_saved_model(path)
            self._loaded = loaded  # keep the trackable alive
            fn = loaded.signatures["serving_default"] if loaded.signatures else loaded

        @tf.function(reduce_retracing=True)
        def predict(batch):
            out = fn(batch)
            if isinstance(out, dict):
                out = next(iter(out.values()))
            if out.shape.rank == 4:
                out = out[..., 0]
            return out

        self._predict = predict

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._predict(self._tf.constant(batch, self._tf.float32)).numpy()


class KerasSaliencyHandler(SaliencyModelHandler):
    def __init__(self, path: str, options: PreprocessOptions = DEFAULT_OPTIONS):
        if not fileio.exists(path):
            raise UserError(f"model not found: {path}")
        self._path = path
        self._options = options
        self._hash = content_hash(path)
        self.name = f"keras:{os.path.basename(path.rstrip('/'))}"

    @property
    def source(self) -> str:
        return self._path

    @property
    def content_hash(self) -> str:
        return self._hash

    @property
    def preprocessing(self) -> str:
        return self._options.describe()

    def load_model(self) -> SaliencyModel:
        return KerasSaliencyModel(self._path)

    def check(self) -> None:
        self.load_model()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return resize_for_model(image, self._options)

    def to_grid(
        self, scores: np.ndarray, image_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> SaliencyGrid:
        rows, cols = scores.shape
        stride = max(1, round(max(input_hw[0] / rows, input_hw[1] / cols)))
        return stride_grid(scores, image_hw, input_hw, stride)
