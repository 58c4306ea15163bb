"""Render planned records into model inputs (RenderComposites).

Decode -> fit into the layout -> compose -> pre-process happen in one DoFn, so full-size pixels
never cross a stage boundary; only the small model input travels on. How a record is drawn is
its design kind's (``DesignKind.render``). Faces recur in many pair composites, so each worker
keeps an LRU cache of faces already fitted to the layout.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from cropaudit.config import LayoutConfig
from cropaudit.model.base import SaliencyModelHandler
from cropaudit.schemas.records import Box, DeadLetter, Face, Planned, Rendered
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.design_kind import kind_of
from cropaudit.transforms.images import ImageError, load_image
from cropaudit.transforms.layout import face_key, prepare_face

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


def render_canvas(item, layout: LayoutConfig, cache: FaceCache) -> tuple:
    """A planned record's pixels and boxes, drawn by its design kind: ``(canvas, box of face a,
    box of face b)`` for a pair composite, ``(canvas, face box, image box)`` for a single
    image."""
    canvas, boxes = kind_of(item.design).render(item, layout, cache)
    return (canvas, *boxes)


def composite_record(item) -> dict:
    """What a dead letter of a planned record records (its ``record()``)."""
    return item.record()


#: Sweep variant name -> the layout and the handler (for its pre-processing) it renders with.
Variants = Mapping[str, tuple[LayoutConfig, SaliencyModelHandler]]


class _RenderDoFn(beam.DoFn):
    def __init__(self, variants: Variants, others: tuple):
        # ``variants`` includes ``base``: what a composite of an unlisted variant renders with
        self._variants = variants
        self._others = others

    def setup(self):
        # Variants whose layouts prepare faces alike share one cache (see layout.face_key).
        caches: dict[tuple, FaceCache] = {}
        self._by_variant = {}
        for name, (layout, handler) in self._variants.items():
            cache = caches.setdefault(face_key(layout), FaceCache(layout))
            self._by_variant[name] = (layout, handler, cache)

    def process(self, composite):
        layout, handler, cache = self._by_variant.get(
            composite.variant, self._by_variant[BASE_VARIANT]
        )
        kind = kind_of(composite.design)
        try:
            canvas, boxes = kind.render(composite, layout, cache)
        except ImageError as exc:
            DEAD_LETTERED.inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER,
                DeadLetter(
                    "render",
                    exc.reason,
                    composite.composite_id,
                    exc.detail,
                    composite.record(),
                ),
            )
            return
        RENDERED.inc()
        # rendered once; each of the run's croppers gets its own input (``model`` = its index)
        for i, h in enumerate((handler, *self._others)):
            yield kind.rendered_record.on_canvas(composite, canvas, boxes, h.preprocess(canvas), i)


@beam.typehints.with_input_types(Planned)
class RenderComposites(beam.PTransform):
    """Planned record -> rendered record (``RenderedComposite``, ``RenderedSingle``); unusable
    images -> dead letters (tag ``dead_letter``).

    ``variants`` maps sweep variant names to their layout and handler; a composite of another
    variant (``base``) renders with ``layout`` and ``handler``. Handlers differ only in their
    pre-processing: the model itself is loaded once, by PredictSaliency. ``others``: further
    croppers scored on the same composites; each composite is rendered once and comes out once
    per cropper (``RenderedComposite.model``: 0 for ``handler``, i for ``others[i - 1]``)."""

    def __init__(
        self,
        handler: SaliencyModelHandler,
        layout: LayoutConfig,
        variants: Variants | None = None,
        others: Sequence = (),
    ):
        super().__init__()
        self._variants = {BASE_VARIANT: (layout, handler), **(variants or {})}
        self._others = tuple(others)

    def expand(self, composites):
        render = beam.ParDo(_RenderDoFn(self._variants, self._others))
        return composites | "Render" >> render.with_input_types(Planned).with_output_types(
            Rendered
        ).with_outputs(DEAD_LETTER, main="rendered")
