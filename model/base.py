"""The one interface every saliency model implements: a Beam ``ModelHandler``.

:class:`CropperHandler` is an ``apache_beam.ml.inference.base.ModelHandler`` (so any cropaudit
model runs under ``RunInference`` in anyone's pipeline): small, picklable and cheap, it travels
to workers and does the per-element CPU work; :meth:`load_model` builds the heavy part once per
worker. Its input is a decoded RGB image, an ``(H, W, 3)`` uint8 array; its output a
``PredictionResult`` whose ``model_id`` is ``NAME@sha256:HASH``. A
:class:`SaliencyModelHandler` infers a :class:`SaliencyGrid` in original-image pixels; a box
cropper (:mod:`cropaudit.model.cropper`) infers a ``Cropping``. Every batch is predicted at one
fixed size (short ones zero-padded), so scores never depend on how a runner batches.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from cropaudit.errors import UserError
from cropaudit.model import DEFAULT_BATCH_SIZE
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


def check_image(image: Any) -> np.ndarray:
    """The handlers' input contract: ``ValueError`` unless an ``(H, W, 3)`` uint8 array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        kind = (
            f"{image.dtype} array of shape {image.shape}"
            if isinstance(image, np.ndarray)
            else (type(image).__name__)
        )
        raise ValueError(f"a cropaudit model takes an (H, W, 3) uint8 RGB image, got {kind}")
    if image.shape[2] != 3 or not image.shape[0] or not image.shape[1]:
        raise ValueError(f"a cropaudit model takes an (H, W, 3) RGB image, got {image.shape}")
    return image


class CropperHandler(ModelHandler[np.ndarray, PredictionResult, Any], abc.ABC):
    """What every model and cropper shares: identity, provenance and the Beam settings.

    The Beam settings are instance attributes set by :meth:`configure` (the factory
    :func:`cropaudit.model.model_handler` passes them on), with class defaults: batches of
    :data:`DEFAULT_BATCH_SIZE`, one model per process (``share_model_across_processes`` off:
    right on CPU; on a GPU one shared copy per machine saves its memory).
    """

    #: Short model identifier recorded in every result row (e.g. ``baseline-centre-surround``).
    name: str
    batch_size: int = DEFAULT_BATCH_SIZE
    _share_across_processes: bool = False
    _copies: int = 1

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

    @property
    def model_id(self) -> str:
        """``NAME@sha256:HASH``: every ``PredictionResult``'s ``model_id``."""
        return f"{self.name}@sha256:{self.content_hash}"

    def check(self) -> None:
        """Refuse a model that cannot run (unreadable, non-finite weights) with one-line
        ``UserError``, before a run starts rather than on a worker; by default nothing to do."""
        return

    def describe(self) -> dict[str, str]:
        """Provenance fields recorded with every result row."""
        return provenance(self)

    def configure(
        self,
        *,
        batch_size: int | None = None,
        share_model_across_processes: bool | None = None,
        model_copies: int | None = None,
    ):
        """Set the Beam settings in place (``None`` keeps one); returns the handler."""
        if batch_size is not None:
            if not 1 <= batch_size <= 1024:
                raise UserError(f"batch_size must be 1..1024, got {batch_size}")
            self.batch_size = int(batch_size)
        if share_model_across_processes is not None:
            self._share_across_processes = bool(share_model_across_processes)
        if model_copies is not None:
            if model_copies < 1:
                raise UserError(f"model_copies must be at least 1, got {model_copies}")
            self._copies = int(model_copies)
        return self

    # -- Beam's ModelHandler ----------------------------------------------------------------

    def share_model_across_processes(self) -> bool:
        return self._share_across_processes

    def model_copies(self) -> int:
        return self._copies

    def batch_elements_kwargs(self) -> dict[str, int]:
        """Full batches when the bundle has them; any batching scores alike (fixed-size calls)."""
        return {"min_batch_size": self.batch_size, "max_batch_size": self.batch_size}

    def get_metrics_namespace(self) -> str:
        return "cropaudit"

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return int(sum(np.asarray(x).nbytes for x in batch))

    def run_inference(
        self,
        batch: Sequence[np.ndarray],
        model: Any,
        inference_args: dict[str, Any] | None = None,
    ) -> list[PredictionResult]:
        """(H, W, 3) uint8 images -> ``PredictionResult(image, result, model_id)``, the result
        one per image from :meth:`infer` (a ``SaliencyGrid`` or a ``Cropping``)."""
        images = [check_image(x) for x in batch]
        results = self.infer(model, images, inference_args or {})
        return [PredictionResult(x, r, self.model_id) for x, r in zip(batch, results)]

    @abc.abstractmethod
    def infer(self, model: Any, images: list[np.ndarray], inference_args: dict) -> list:
        """Checked images -> one result each (``run_inference`` wraps them)."""


class SaliencyModelHandler(CropperHandler):
    """A saliency model: its inference is a :class:`SaliencyGrid` in original-image pixels."""

    @abc.abstractmethod
    def load_model(self) -> SaliencyModel:
        """Build the heavy model; called once per worker."""

    @abc.abstractmethod
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(H0, W0, 3) uint8 RGB -> (h, w, C) float32 model input."""

    @abc.abstractmethod
    def to_grid(
        self, scores: np.ndarray, image_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> SaliencyGrid:
        """Raw (rows, cols) output for one image -> :class:`SaliencyGrid` in original pixels."""

    def predict_grids(
        self,
        model: SaliencyModel,
        inputs: Sequence[np.ndarray],
        image_hws: Sequence[tuple[int, int]],
        batch_size: int | None = None,
    ) -> list[SaliencyGrid]:
        """Pre-processed inputs (any mix of shapes) and their images' (H, W) -> one grid each, in
        order: inputs of one shape are predicted together, every call at exactly ``batch_size``
        rows (default: the handler's). :meth:`run_inference` and the audit's prediction stage
        both come through here."""
        size = batch_size or self.batch_size
        by_shape: dict[tuple, list[int]] = {}
        for i, x in enumerate(inputs):
            by_shape.setdefault(x.shape, []).append(i)
        grids: list[SaliencyGrid | None] = [None] * len(inputs)
        for indices in by_shape.values():
            scores = model.predict_fixed(np.stack([inputs[i] for i in indices]), size)
            for i, s in zip(indices, scores):
                grids[i] = self.to_grid(s, image_hws[i], inputs[i].shape[:2])
        return grids  # type: ignore[return-value]

    def infer(self, model: SaliencyModel, images: list[np.ndarray], inference_args: dict) -> list:
        r"""Checked images -> their ``SaliencyGrid``\ s."""
        inputs = [self.preprocess(x) for x in images]
        return self.predict_grids(model, inputs, [x.shape[:2] for x in images])


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
