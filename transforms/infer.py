"""Batched saliency inference in a DoFn (PredictSaliency).

The model loads once per worker process (Beam's ``Shared`` handle), and inputs are batched by
shape inside each bundle (composites of one layout share a size), then run under ``tf.function``.
"""

from __future__ import annotations

import dataclasses
import threading

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import shared
from apache_beam.utils.windowed_value import WindowedValue

from cropaudit.model.base import SaliencyModelHandler
from cropaudit.transforms.records import DeadLetter, RenderedComposite
from cropaudit.transforms.render import DEAD_LETTER, composite_record

PREDICTED = Metrics.counter("cropaudit", "composites_predicted")
DEAD_LETTERED = Metrics.counter("cropaudit", "composites_dead_lettered")
RETRIES = Metrics.counter("cropaudit", "inference_retries")


class _ModelHolder:
    """Weak-referenceable holder, as ``Shared`` requires."""

    def __init__(self, model):
        self.model = model


class _PredictDoFn(beam.DoFn):
    def __init__(self, handler: SaliencyModelHandler, batch_size: int, attempts: int = 3):
        self._handler = handler
        self._batch_size = batch_size
        self._attempts = attempts
        self._shared = shared.Shared()

    def setup(self):
        key = f"{self._handler.name}:{self._handler.content_hash}"
        self._model = self._shared.acquire(
            lambda: _ModelHolder(self._handler.load_model()), tag=key
        ).model
        self._lock = threading.Lock()

    def start_bundle(self):
        self._buffers: dict[tuple, list] = {}

    def process(
        self,
        rendered: RenderedComposite,
        window=beam.DoFn.WindowParam,
        timestamp=beam.DoFn.TimestampParam,
    ):
        shape = rendered.model_input.shape
        buffer = self._buffers.setdefault(shape, [])
        buffer.append(WindowedValue(rendered, timestamp, [window]))
        if len(buffer) >= self._batch_size:
            del self._buffers[shape]
            for tag, wv in self._flush(buffer):
                yield wv.value if tag is None else beam.pvalue.TaggedOutput(tag, wv.value)

    def finish_bundle(self):
        for buffer in self._buffers.values():
            for tag, wv in self._flush(buffer):
                yield wv if tag is None else beam.pvalue.TaggedOutput(tag, wv)
        self._buffers = {}

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        """Predict with a few retries: a transient failure must not cost the batch."""
        for attempt in range(1, self._attempts + 1):
            try:
                with self._lock:
                    return self._model.predict(batch)
            except Exception:
                if attempt == self._attempts:
                    raise
                RETRIES.inc()
        raise AssertionError("unreachable")  # pragma: no cover

    def _flush(self, buffer: list[WindowedValue]):
        """Predict one batch; yields (output tag or None, windowed value)."""
        batch = np.stack([wv.value.model_input for wv in buffer])
        try:
            scores = self._predict(batch)
        except Exception as exc:  # a model failure dead-letters its batch, never the run
            for wv in buffer:
                c = wv.value.composite
                letter = DeadLetter(
                    "predict",
                    "inference_error",
                    c.composite_id,
                    f"{type(exc).__name__}: {exc}",
                    composite_record(c),
                )
                yield DEAD_LETTER, wv.with_value(letter)
            DEAD_LETTERED.inc(len(buffer))
            return
        PREDICTED.inc(len(buffer))
        for wv, s in zip(buffer, scores):
            r = wv.value
            grid = self._handler.to_grid(s, (r.height, r.width), r.model_input.shape[:2])
            slim = dataclasses.replace(r, model_input=np.empty(0, np.float32))
            yield None, wv.with_value((slim, grid))


class PredictSaliency(beam.PTransform):
    """RenderedComposite -> (RenderedComposite, SaliencyGrid); failures -> dead letters."""

    def __init__(self, handler: SaliencyModelHandler, batch_size: int = 16):
        super().__init__()
        self._handler = handler
        self._batch_size = batch_size

    def expand(self, rendered):
        return rendered | "Predict" >> beam.ParDo(
            _PredictDoFn(self._handler, self._batch_size)
        ).with_outputs(DEAD_LETTER, main="predicted")
