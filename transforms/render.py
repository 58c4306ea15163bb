"""Render planned composites into model inputs (RenderComposites).

Decode -> fit into the layout -> compose -> pre-process happen in one DoFn, so full-size pixels
never cross a stage boundary; only the small model input travels on. Faces recur in many
composites, so each worker keeps an LRU cache of faces already fitted to the layout.
"""

from __future__ import annotations

from collections import OrderedDict

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from cropaudit.config import LayoutConfig
from cropaudit.model.base import SaliencyModelHandler
from cropaudit.transforms.images import ImageError, load_image
from cropaudit.transforms.layout import compose, prepare_face
from cropaudit.transforms.records import Box, Composite, DeadLetter, Face, RenderedComposite

DEAD_LETTER = "dead_letter"
RENDERED = Metrics.counter("cropaudit", "composites_rendered")
DEAD_LETTERED = Metrics.counter("cropaudit", "composites_dead_lettered")


class FaceCache:
    """LRU of prepared faces (pixels fitted to the layout), bounded by bytes."""

    def __init__(self, layout: LayoutConfig, max_bytes: int = 256 << 20):
        self._layout = layout
        self._max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[np.ndarray, Box]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, face: Face) -> tuple[np.ndarray, Box]:
        item = self._items.get(face.image_uri)
        if item is not None:
            self._items.move_to_end(face.image_uri)
            self.hits += 1
            return item
        self.misses += 1
        item = prepare_face(load_image(face.image_uri), self._layout)
        self._items[face.image_uri] = item
        self._bytes += item[0].nbytes
        while self._bytes > self._max_bytes and len(self._items) > 1:
            _, (old, _) = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return item


def render_canvas(
    composite: Composite, layout: LayoutConfig, cache: FaceCache
) -> tuple[np.ndarray, Box, Box]:
    """The composite's pixels and the boxes of face ``a`` and face ``b``."""
    first, second = composite.faces_in_order()
    canvas, box_first, box_second = compose(cache.get(first), cache.get(second), layout)
    if composite.position == "a_first":
        return canvas, box_first, box_second
    return canvas, box_second, box_first


def composite_record(composite: Composite) -> dict:
    return {
        "composite_id": composite.composite_id,
        "a_image_id": composite.face_a.image_id,
        "b_image_id": composite.face_b.image_id,
        "position": composite.position,
        "design": composite.design,
    }


class _RenderDoFn(beam.DoFn):
    def __init__(self, handler: SaliencyModelHandler, layout: LayoutConfig):
        self._handler = handler
        self._layout = layout

    def setup(self):
        self._cache = FaceCache(self._layout)

    def process(self, composite: Composite):
        try:
            canvas, box_a, box_b = render_canvas(composite, self._layout, self._cache)
        except ImageError as exc:
            DEAD_LETTERED.inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER,
                DeadLetter(
                    "render",
                    exc.reason,
                    composite.composite_id,
                    exc.detail,
                    composite_record(composite),
                ),
            )
            return
        model_input = self._handler.preprocess(canvas)
        RENDERED.inc()
        yield RenderedComposite(
            composite, canvas.shape[1], canvas.shape[0], box_a, box_b, model_input
        )


class RenderComposites(beam.PTransform):
    """Composite -> RenderedComposite; unusable images -> dead letters (tag ``dead_letter``)."""

    def __init__(self, handler: SaliencyModelHandler, layout: LayoutConfig):
        super().__init__()
        self._handler = handler
        self._layout = layout

    def expand(self, composites):
        return composites | "Render" >> beam.ParDo(
            _RenderDoFn(self._handler, self._layout)
        ).with_outputs(DEAD_LETTER, main="rendered")
