"""Run a box cropper in a DoFn (CropBoxes), beside PredictSaliency for saliency models.

The cropper (a Beam ``ModelHandler``, :class:`~cropaudit.model.cropper.BoxCropper`) loads once
per worker process (:func:`~cropaudit.transforms.infer.acquire_model`). Images are handed over in
batches of ``batch_size`` per bundle: a cropper that works on many images at once (an HTTP
endpoint under a concurrency limit) gets them together, one that works image by image loops.
A failure, or boxes that are not one per ratio inside the image, dead-letters that composite
only (stage ``predict``, reason ``cropper_error``, ``bad_crop_box`` or the plugin's own reason,
e.g. ``timeout``), never the run.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import shared
from apache_beam.utils.windowed_value import WindowedValue

from cropaudit.model.cropper import BoxCropper, checked, crop_batch
from cropaudit.schemas.records import Cropping, DeadLetter, Rendered, RenderedComposite
from cropaudit.transforms.infer import acquire_model
from cropaudit.transforms.render import DEAD_LETTER, composite_record

CROPPED = Metrics.counter("cropaudit", "composites_cropped")
DEAD_LETTERED = Metrics.counter("cropaudit", "composites_dead_lettered")


class _CropDoFn(beam.DoFn):
    def __init__(self, cropper: BoxCropper, ratios, batch_size: int, id_suffix: str = ""):
        self._cropper = cropper
        self._ratios = tuple(float(r) for r in ratios)
        self._batch_size = batch_size
        self._suffix = id_suffix
        self._shared = shared.Shared()

    def setup(self):
        self._model = acquire_model(self._cropper, self._shared)

    def start_bundle(self):
        self._buffer: list[WindowedValue] = []

    def process(
        self,
        rendered: RenderedComposite,
        window=beam.DoFn.WindowParam,
        timestamp=beam.DoFn.TimestampParam,
    ):
        self._buffer.append(WindowedValue(rendered, timestamp, [window]))
        if len(self._buffer) >= self._batch_size:
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()

    def _flush(self):
        buffer, self._buffer = self._buffer, []
        if not buffer:
            return
        results = crop_batch(self._model, [wv.value.model_input for wv in buffer], self._ratios)
        for wv, result in zip(buffer, results):
            r = wv.value
            problem = checked(result, r.width, r.height)
            if problem is not None:
                c = r.composite
                DEAD_LETTERED.inc()
                letter = DeadLetter(
                    "predict", problem[0], c.composite_id + self._suffix, problem[1],
                    {**composite_record(c), "model_name": self._cropper.name},
                )  # fmt: skip
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, wv.with_value(letter))
                continue
            CROPPED.inc()
            slim = dataclasses.replace(r, model_input=np.empty(0, np.uint8))
            yield wv.with_value((slim, result))


@beam.typehints.with_input_types(Rendered)
class CropBoxes(beam.PTransform):
    """RenderedComposite -> (RenderedComposite, Cropping) for a box cropper; failures -> dead
    letters (tag ``dead_letter``). ``id_suffix`` marks dead letters of one cropper among several
    (``#<model_name>``, as its survival rows are marked)."""

    def __init__(self, cropper: BoxCropper, ratios, batch_size: int = 16, id_suffix: str = ""):
        super().__init__()
        self._fn = _CropDoFn(cropper, ratios, batch_size, id_suffix)

    def expand(self, rendered):
        crop = beam.ParDo(self._fn).with_input_types(Rendered)
        return rendered | "Crop" >> crop.with_output_types(tuple[Rendered, Cropping]).with_outputs(
            DEAD_LETTER, main="predicted"
        )
