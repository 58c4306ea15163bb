"""Batched saliency inference in a DoFn (PredictSaliency), through the model's Beam handler.

The stage runs the same ``ModelHandler`` a user's ``RunInference`` would
(:func:`cropaudit.model.model_handler`): ``load_model`` once per worker process (Beam's
``Shared`` handle, or one copy per machine under ``share_model_across_processes``), and the
handler's batched core :meth:`~cropaudit.model.base.SaliencyModelHandler.predict_grids`, which
``run_inference`` also ends in. Render has already pre-processed each composite (only the
small model input travels), so this stage starts from the model inputs. Inputs are batched by
shape inside each bundle and every call runs at exactly ``batch_size`` rows (a short last batch
is zero-padded), so a composite's scores never depend on how the runner cut bundles.
A full batch is predicted on a background thread while the fused stages before this one render
and pre-process the next batch: TensorFlow releases the GIL, so the core the model leaves idle
during rendering does work instead (one batch in flight; outputs keep their own windows). Beam's
``RunInference`` predicts in line: side by side on the same FastGaze composites it did 0.83 and
0.90 of this stage's throughput (``benchmarks/bench_run_inference.py``; README), so the audit
keeps this DoFn.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import multi_process_shared, shared
from apache_beam.utils.windowed_value import WindowedValue

from cropaudit.model.base import CropperHandler, SaliencyGrid, SaliencyModelHandler
from cropaudit.schemas.records import DeadLetter, Rendered, RenderedComposite
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


def acquire_model(handler: CropperHandler, handle: shared.Shared):
    """The handler's loaded model for this worker: one per process through ``handle``, or, when
    the handler shares its model across processes (a GPU), a proxy to one of its
    ``model_copies()`` copies per machine (chosen by process id; ``RunInference`` takes turns)."""
    if handler.share_model_across_processes():
        copy = os.getpid() % handler.model_copies()
        return multi_process_shared.MultiProcessShared(
            handler.load_model, tag=f"{handler.model_id}/copy{copy}", always_proxy=True
        ).acquire()
    return handle.acquire(lambda: _ModelHolder(handler.load_model()), tag=handler.model_id).model


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
        self._model = acquire_model(self._handler, self._shared)
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
        PADDING.inc(-len(buffer) % self._batch_size)
        rendered = [wv.value for wv in buffer]
        self._pending.append((buffer, self._executor.submit(self._predict, rendered)))

    def _drain(self, keep: int):
        """Outputs of the finished batches, oldest first, leaving ``keep`` batches in flight."""
        while len(self._pending) > keep:
            buffer, future = self._pending.popleft()
            for tag, wv in self._outputs(buffer, future):
                yield wv if tag is None else beam.pvalue.TaggedOutput(tag, wv)

    def _predict(self, rendered: list[RenderedComposite]) -> list[SaliencyGrid]:
        """Predict with a few retries: a transient failure must not cost the batch."""
        inputs = [r.model_input for r in rendered]
        hws = [(r.height, r.width) for r in rendered]
        for attempt in range(1, self._attempts + 1):
            try:
                with self._lock:
                    return self._handler.predict_grids(self._model, inputs, hws, self._batch_size)
            except Exception:
                if attempt == self._attempts:
                    raise
                RETRIES.inc()
        raise AssertionError("unreachable")  # pragma: no cover

    def _outputs(self, buffer: list[WindowedValue], future: Future):
        """One predicted batch; yields (output tag or None, windowed value)."""
        try:
            grids = future.result()
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
        for wv, grid in zip(buffer, grids):
            slim = dataclasses.replace(wv.value, model_input=np.empty(0, np.float32))
            yield None, wv.with_value((slim, grid))


@beam.typehints.with_input_types(Rendered)
class PredictSaliency(beam.PTransform):
    """RenderedComposite -> (RenderedComposite, SaliencyGrid); failures -> dead letters.
    ``id_suffix`` marks dead letters of one model among several (``#<model_name>``)."""

    def __init__(self, handler: SaliencyModelHandler, batch_size: int = 16, id_suffix: str = ""):
        super().__init__()
        self._handler = handler
        self._batch_size = batch_size
        self._suffix = id_suffix

    def expand(self, rendered):
        fn = _PredictDoFn(self._handler, self._batch_size, id_suffix=self._suffix)
        predict = beam.ParDo(fn).with_input_types(Rendered)
        return rendered | "Predict" >> predict.with_output_types(
            tuple[Rendered, SaliencyGrid]
        ).with_outputs(DEAD_LETTER, main="predicted")
