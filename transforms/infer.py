"""Batched saliency inference in a DoFn (PredictSaliency).

The model loads once per worker process (Beam's ``Shared`` handle), and inputs are batched by
shape inside each bundle (composites of one layout share a size), then run under ``tf.function``
at exactly ``batch_size`` rows (a bundle's short last batch is zero-padded), so a composite's
scores never depend on how the runner cut bundles.
A full batch is predicted on a background thread while the fused stages before this one render
and pre-process the next batch: TensorFlow releases the GIL, so the core the model leaves idle
during rendering does work instead (one batch in flight; outputs keep their own windows).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import shared
from apache_beam.utils.windowed_value import WindowedValue

from cropaudit.model.base import SaliencyModelHandler
from cropaudit.schemas.records import DeadLetter, RenderedComposite
from cropaudit.transforms.render import DEAD_LETTER, composite_record

PREDICTED = Metrics.counter("cropaudit", "composites_predicted")
DEAD_LETTERED = Metrics.counter("cropaudit", "composites_dead_lettered")
RETRIES = Metrics.counter("cropaudit", "inference_retries")
#: Zero rows that filled short batches: model work spent on nothing (tune batch_size with it).
PADDING = Metrics.counter("cropaudit", "batch_padding_rows")


class _ModelHolder:
    """Weak-referenceable holder, as ``Shared`` requires."""

    def __init__(self, model):
        self.model = model


class _PredictDoFn(beam.DoFn):
    def __init__(
        self, handler: SaliencyModelHandler, batch_size: int, attempts: int = 3, id_suffix: str = ""
    ):
        self._handler = handler
        self._batch_size = batch_size
        self._attempts = attempts
        self._suffix = id_suffix
        self._shared = shared.Shared()

    def setup(self):
        key = f"{self._handler.name}:{self._handler.content_hash}"
        self._model = self._shared.acquire(
            lambda: _ModelHolder(self._handler.load_model()), tag=key
        ).model
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cropaudit-predict")

    def teardown(self):
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True)

    def start_bundle(self):
        self._buffers: dict[tuple, list] = {}
        self._pending: deque[tuple[list[WindowedValue], Future]] = deque()

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
            self._submit(buffer)
            yield from self._drain(keep=1)

    def finish_bundle(self):
        for buffer in self._buffers.values():
            self._submit(buffer)
        self._buffers = {}
        yield from self._drain(keep=0)

    def _submit(self, buffer: list[WindowedValue]) -> None:
        batch = np.stack([wv.value.model_input for wv in buffer])
        PADDING.inc(-len(buffer) % self._batch_size)
        self._pending.append((buffer, self._executor.submit(self._predict, batch)))

    def _drain(self, keep: int):
        """Outputs of the finished batches, oldest first, leaving ``keep`` batches in flight."""
        while len(self._pending) > keep:
            buffer, future = self._pending.popleft()
            for tag, wv in self._outputs(buffer, future):
                yield wv if tag is None else beam.pvalue.TaggedOutput(tag, wv)

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        """Predict with a few retries: a transient failure must not cost the batch."""
        for attempt in range(1, self._attempts + 1):
            try:
                with self._lock:
                    return self._model.predict_fixed(batch, self._batch_size)
            except Exception:
                if attempt == self._attempts:
                    raise
                RETRIES.inc()
        raise AssertionError("unreachable")  # pragma: no cover

    def _outputs(self, buffer: list[WindowedValue], future: Future):
        """One predicted batch; yields (output tag or None, windowed value)."""
        try:
            scores = future.result()
        except Exception as exc:  # a model failure dead-letters its batch, never the run
            for wv in buffer:
                c = wv.value.composite
                letter = DeadLetter(
                    "predict",
                    "inference_error",
                    c.composite_id + self._suffix,
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
    """RenderedComposite -> (RenderedComposite, SaliencyGrid); failures -> dead letters.
    ``id_suffix`` marks dead letters of one model among several (``#<model_name>``)."""

    def __init__(self, handler: SaliencyModelHandler, batch_size: int = 16, id_suffix: str = ""):
        super().__init__()
        self._handler = handler
        self._batch_size = batch_size
        self._suffix = id_suffix

    def expand(self, rendered):
        return rendered | "Predict" >> beam.ParDo(
            _PredictDoFn(self._handler, self._batch_size, id_suffix=self._suffix)
        ).with_outputs(DEAD_LETTER, main="predicted")
