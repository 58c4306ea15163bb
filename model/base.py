"""The one interface every saliency model implements.

Mirrors Beam's ``ModelHandler`` split: a :class:`SaliencyModelHandler` is small, picklable and
cheap (it travels to workers and does the per-element CPU work: pre-processing and mapping the
output grid back to image pixels); :meth:`SaliencyModelHandler.load_model` builds the heavy
:class:`SaliencyModel` once per worker, which only runs batched prediction. The pipeline never
branches on which model it runs.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from cropaudit.errors import UserError
from cropaudit.model.resize import DEFAULT_OPTIONS, PreprocessOptions, resize_for_model


@dataclass(frozen=True)
class SaliencyGrid:
    """A model's raw output over one image, with where each cell lands in the original image.

    ``scores[r, c]`` is the raw score of cell (r, c); ``xs[c]`` and ``ys[r]`` are that cell's
    coordinates in original-image pixels (float, before truncation).
    """

    scores: np.ndarray  # (rows, cols) float32
    xs: np.ndarray  # (cols,) float32
    ys: np.ndarray  # (rows,) float32

    def salient_point(self) -> tuple[int, int, float]:
        """First maximum in row-major order, as integer original-image pixels and its score."""
        flat = int(np.argmax(self.scores))  # argmax returns the first maximum
        r, c = divmod(flat, self.scores.shape[1])
        return int(self.xs[c]), int(self.ys[r]), float(self.scores[r, c])


def stride_grid(
    scores: np.ndarray, image_hw: tuple[int, int], input_hw: tuple[int, int], stride: int
) -> SaliencyGrid:
    """Map a stride-``stride`` output grid to original pixels (FastGaze spec §4).

    Cell (r, c) sits at ``min(W-1, stride*c + stride/2)`` in the resized input and is scaled to
    the original by ``k = min(W0/W, H0/H)`` in float32.
    """
    h0, w0 = image_hw
    h, w = input_hw
    rows, cols = scores.shape
    half = stride // 2
    k = np.float32(min(np.float32(w0) / np.float32(w), np.float32(h0) / np.float32(h)))
    xs = np.minimum(w - 1, stride * np.arange(cols) + half).astype(np.float32) * k
    ys = np.minimum(h - 1, stride * np.arange(rows) + half).astype(np.float32) * k
    return SaliencyGrid(np.asarray(scores, np.float32), xs, ys)


class SaliencyModel(abc.ABC):
    """A loaded model: batched prediction only. Built once per worker."""

    @abc.abstractmethod
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(B, h, w, C) float32 pre-processed inputs of one shape -> (B, rows, cols) raw scores."""

    def predict_fixed(self, batch: np.ndarray, batch_size: int) -> np.ndarray:
        """``predict`` with every call exactly ``batch_size`` rows: zero rows pad a short batch.

        Kernels may pick their algorithm by batch size (oneDNN computes a lone image differently
        from a batch of 32, in the last bits), so a composite must not be scored at whatever size
        the runner's bundle left over: at one fixed size its scores are the same in every run.
        """
        n = len(batch)
        if n == batch_size:
            return self.predict(batch)
        if n > batch_size:
            return np.concatenate(
                [
                    self.predict_fixed(batch[i : i + batch_size], batch_size)
                    for i in range(0, n, batch_size)
                ]
            )
        padding = np.zeros((batch_size - n, *batch.shape[1:]), batch.dtype)
        return self.predict(np.concatenate([batch, padding]))[:n]


def provenance(model) -> dict[str, str]:
    """The provenance fields every result row records about the model or cropper that made it."""
    return {
        "model_name": model.name,
        "model_hash": model.content_hash,
        "model_source": model.source,
        "preprocessing": model.preprocessing,
    }


class SaliencyModelHandler(abc.ABC):
    """Describes a model and does its per-element CPU work; cheap to build and to pickle."""

    #: Short model identifier recorded in every result row (e.g. ``baseline-spectral``).
    name: str

    @property
    @abc.abstractmethod
    def content_hash(self) -> str:
        """sha256 (hex) of the model's weights/definition: the provenance of every result."""

    @property
    @abc.abstractmethod
    def preprocessing(self) -> str:
        """A short, recorded description of the pre-processing (resize method, JPEG round trip)."""

    @property
    def source(self) -> str:
        """Where the model came from: a path or URL, or ``builtin``."""
        return "builtin"

    @abc.abstractmethod
    def load_model(self) -> SaliencyModel:
        """Build the heavy model; called once per worker."""

    def check(self) -> None:
        """Refuse a model that cannot run (unreadable, non-finite weights) with one-line
        ``UserError``, before a run starts rather than on a worker; by default nothing to do."""
        return

    @abc.abstractmethod
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(H0, W0, 3) uint8 RGB -> (h, w, C) float32 model input."""

    @abc.abstractmethod
    def to_grid(
        self, scores: np.ndarray, image_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> SaliencyGrid:
        """Raw (rows, cols) output for one image -> :class:`SaliencyGrid` in original pixels."""

    def describe(self) -> dict[str, str]:
        """Provenance fields recorded with every result row."""
        return provenance(self)


def check_finite_weights(weights, source: str) -> None:
    """``UserError`` naming the first weight (``(name, array)`` pairs) holding NaN or inf: such a
    model scores every image NaN, and a run would still write winners from it."""
    for name, value in weights:
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            bad = int(array.size - np.isfinite(array).sum())
            raise UserError(f"{source}: weight {name} holds {bad} non-finite value(s) (NaN/inf)")


def variable_weights(obj) -> list[tuple[str, np.ndarray]]:
    """(name, value) of every TensorFlow/Keras variable an object tracks."""
    variables = getattr(obj, "weights", None) or getattr(obj, "variables", None) or ()
    return [(getattr(v, "path", None) or v.name, v.numpy()) for v in variables]


class StrideGridHandler(SaliencyModelHandler):
    """A handler whose model sees the image resized by :class:`PreprocessOptions` and returns
    one score per ``stride`` x ``stride`` cell (the built-in baseline, the OpenCV croppers)."""

    #: Input pixels per output cell, along each side.
    stride: int

    def __init__(self, options: PreprocessOptions = DEFAULT_OPTIONS):
        self._options = options

    @property
    def preprocessing(self) -> str:
        return self._options.describe()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return resize_for_model(image, self._options)

    def to_grid(
        self, scores: np.ndarray, image_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> SaliencyGrid:
        return stride_grid(scores, image_hw, input_hw, self.stride)
