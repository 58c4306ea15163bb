"""FastGaze behind the :class:`SaliencyModelHandler` contract.

The handler is cheap and picklable: it holds a path and options, hashes the model file lazily
and does the per-image CPU work (§3 pre-processing, §4 grid mapping). ``load_model`` builds the
TensorFlow network once per handler, from either the original ``.vxm`` file or a SavedModel
written by ``cropaudit model convert``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyGrid, SaliencyModel, SaliencyModelHandler, stride_grid
from cropaudit.model.fastgaze.vxm import STRIDE
from cropaudit.model.resize import (
    DEFAULT_OPTIONS,
    PreprocessOptions,
    decode_jpeg_for_model,
    resize_for_model,
)

#: Subtracted from R, G, B in that order (VGG's BGR means, applied as the binary did; §3.3).
MEANS = np.array([103.939, 116.779, 123.68], dtype=np.float32)
#: The provenance file ``model convert`` writes inside a converted model's folder.
METADATA_FILE = "cropaudit_model.json"
#: Refuse .vxm files larger than this (the real one is 489,616 bytes).
MAX_VXM_BYTES = 64 << 20
#: The spec's pre-processing (a frozen dataclass, so one shared default is safe).


def is_converted(path: str) -> bool:
    """Whether ``path`` is a folder written by ``cropaudit model convert``."""
    return fileio.exists(fileio.join(path, METADATA_FILE))


class FastGazeModel(SaliencyModel):
    """The loaded network; ``predict`` is the compiled batched forward pass."""

    def __init__(self, fn) -> None:
        self._fn = fn

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._fn(np.asarray(batch, dtype=np.float32)).numpy()


class FastGazeHandler(SaliencyModelHandler):
    """Twitter's FastGaze saliency model, from a ``.vxm`` file or a converted SavedModel."""

    name = "fastgaze"

    def __init__(self, path: str, options: PreprocessOptions = DEFAULT_OPTIONS) -> None:
        self.path = path
        self.options = options
        self._hash: str | None = None
        self._model: FastGazeModel | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}  # the TF model never travels to workers

    def __repr__(self) -> str:
        return f"FastGazeHandler({self.path!r}, {self.options!r})"

    @property
    def source(self) -> str:
        return self.path

    @property
    def converted(self) -> bool:
        return is_converted(self.path)

    @property
    def content_hash(self) -> str:
        if self._hash is None:
            if self.converted:
                self._hash = read_metadata(self.path)["content_hash"]
            else:
                self._hash = hashlib.sha256(self._read_vxm()).hexdigest()
        return self._hash

    @property
    def preprocessing(self) -> str:
        return self.options.describe()

    def _read_vxm(self) -> bytes:
        try:
            return fileio.read_bytes(self.path, limit=MAX_VXM_BYTES)
        except FileNotFoundError:
            raise UserError(f"FastGaze model not found: {self.path}") from None

    def load_model(self) -> FastGazeModel:
        if self._model is None:
            if self.converted:
                from cropaudit.model.keras_model import load_saved_model

                fn = load_saved_model(self.path)
            else:
                from cropaudit.model.fastgaze.network import FastGazeNet
                from cropaudit.model.fastgaze.vxm import read_model

                data = self._read_vxm()
                self._hash = hashlib.sha256(data).hexdigest()
                fn = FastGazeNet(read_model(data), self._hash)
            self._model = FastGazeModel(fn)
        return self._model

    def check(self) -> None:
        """A ``.vxm`` is parsed (cheap, no TensorFlow: framing, shapes, finite weights); a
        converted model is loaded."""
        if self.converted:
            self.load_model()
        else:
            from cropaudit.model.fastgaze.vxm import read_model

            read_model(self._read_vxm())

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return resize_for_model(image, self.options) - MEANS

    def preprocess_jpeg(self, data: bytes) -> tuple[tuple[int, int], np.ndarray]:
        """Encoded image bytes -> original (H0, W0) and model input, via the DCT decode path."""
        hw, resized = decode_jpeg_for_model(data, self.options)
        return hw, resized - MEANS

    def to_grid(
        self, scores: np.ndarray, image_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> SaliencyGrid:
        return stride_grid(scores, image_hw, input_hw, stride=STRIDE)


def read_metadata(path: str) -> dict:
    """The provenance record of a converted model."""
    try:
        meta = json.loads(fileio.read_bytes(fileio.join(path, METADATA_FILE), limit=1 << 16))
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"{path}: unreadable {METADATA_FILE}: {exc}") from None
    if meta.get("name") != FastGazeHandler.name or not isinstance(meta.get("content_hash"), str):
        raise UserError(f"{path}: {METADATA_FILE} does not describe a FastGaze model")
    return meta
