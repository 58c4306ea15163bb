"""A composite, or an uploaded image, cropped again by every cropper of the run and drawn.

A composite is re-rendered from its survival row through its design kind (the pipeline's decoder,
layout and renderer: ``kind.from_row`` and ``kind.render``, as the report's gallery does), then
each cropper decides on it as the audit did (a saliency model's grid cropped by the crop rule, a
box cropper's own boxes) and the design kind scores it; the result is checked against that
cropper's recorded row. An uploaded image goes through the one decoder
(:func:`cropaudit.transforms.images.decode_image`, with its limits and reason codes) and is
cropped the same way; it lives only in memory for the request.

Every cropper gets a panel: the image at display size with its saliency map tinted in (when it
has one), its salient point and one crop box per aspect ratio; the untinted image is drawn once
beside them.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cropaudit.config import ExperimentConfig
from cropaudit.model.cropper import BoxCropper, checked, crop_batch
from cropaudit.model.registry import load_handler
from cropaudit.report.gallery import FACE_COLOURS, crop_colours
from cropaudit.schemas.records import Box, Cropping, Face
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.crop import grid_cropping
from cropaudit.transforms.design_kind import design_kind
from cropaudit.transforms.images import decode_image
from cropaudit.transforms.render import FaceCache

#: Largest side of a drawn panel, in pixels.
MAX_HEIGHT = 720
MAX_WIDTH = 480


@dataclass(frozen=True)
class Panel:
    """One cropper's decision on one image, drawn."""

    model_name: str
    png: str  # data: URI
    point: tuple[int, int, float] | None
    crops: list[dict]
    has_map: bool
    #: For a composite: whether the re-run gave the cropper's recorded point, winners and
    #: boxes (None for an upload, or where the run has no row of this cropper).
    reproduced: bool | None = None
    error: str | None = None


def data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def display_scale(width: int, height: int) -> float:
    return min(1.0, MAX_HEIGHT / height, MAX_WIDTH / width)


def _box(box: Box, k: float) -> list[int]:
    x0, y0 = round(box.x * k), round(box.y * k)
    return [
        x0,
        y0,
        max(x0, round((box.x + box.w) * k) - 1),
        max(y0, round((box.y + box.h) * k) - 1),
    ]


def draw_panel(
    small: np.ndarray, k: float, cropping: Cropping | None, faces: Sequence[Box] = ()
) -> Image.Image:
    """``small`` (the image at scale ``k``) with the cropping's map tinted red, its crop boxes,
    its salient point, and outlines of ``faces`` (a composite's faces a and b)."""
    image = Image.fromarray(small).convert("RGB")
    grid = cropping.grid if cropping is not None else None
    if grid is not None:
        s = np.asarray(grid.scores, np.float32)
        span = float(s.max() - s.min()) or 1.0
        heat = Image.fromarray(((s - s.min()) / span * 255).astype(np.uint8))
        heat = heat.resize(image.size, Image.Resampling.BILINEAR)
        red = Image.new("RGB", image.size, (255, 0, 0))
        image = Image.composite(red, image, heat.point(lambda v: v * 6 // 10))
    draw = ImageDraw.Draw(image)
    for box, colour in zip(faces, FACE_COLOURS):
        draw.rectangle(_box(box, k), outline=colour, width=2)
    if cropping is not None:
        for box, colour in zip(cropping.boxes, crop_colours(len(cropping.boxes))):
            draw.rectangle(_box(box, k), outline=colour, width=2)
        if cropping.point is not None:
            x, y = round(cropping.point[0] * k), round(cropping.point[1] * k)
            r = max(3, min(image.size) // 40)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 0), outline=(0, 0, 0))
    return image


class Croppers:
    """The run's croppers (``model.spec`` then ``model.compare``), each with the run's
    pre-processing (a sweep variant's own for its rows), loaded on first use and kept."""

    def __init__(self, config: ExperimentConfig):
        self.config = config
        self.ratios = tuple(float(r) for r in config.crop.aspect_ratios)
        self._variants = {v.name: v.config for v in config.variants()}
        self._loaded: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def specs(self) -> tuple[str, ...]:
        return self.config.model.specs

    def variant_config(self, variant: str) -> ExperimentConfig:
        return self._variants.get(variant, self._variants[BASE_VARIANT])

    def loaded(self, spec: str, variant: str = BASE_VARIANT) -> tuple[Any, Any]:
        """(handler, loaded model) of ``spec`` with ``variant``'s pre-processing."""
        options = self.variant_config(variant).model.preprocess_options()
        key = (spec, repr(options))
        with self._lock:
            if key not in self._loaded:
                handler = load_handler(spec, options)
                self._loaded[key] = (handler, handler.load_model())
            return self._loaded[key]

    def crop(self, handler, model, image: np.ndarray) -> tuple[Cropping | None, str | None]:
        """What ``handler`` decides on ``image``, as the audit decides it: (cropping, None) or
        (None, the reason it failed)."""
        h, w = image.shape[:2]
        x = handler.preprocess(image)
        if isinstance(handler, BoxCropper):
            (result,) = crop_batch(model, [x], self.ratios)
            problem = checked(result, w, h)
            return (None, f"{problem[0]}: {problem[1]}") if problem else (result, None)
        batch = self.config.model.batch_size
        with self._lock:  # one prediction at a time per model
            (grid,) = handler.predict_grids(model, [x], [(h, w)], batch)
        return grid_cropping(grid, w, h, self.ratios), None

    def decide(
        self, spec: str, image: np.ndarray, variant: str = BASE_VARIANT
    ) -> tuple[str, Cropping | None, str | None]:
        """(cropper name, cropping, None), or (name or spec, None, why not): a cropper that
        cannot load or crop must not hide the others."""
        name = spec
        try:
            handler, model = self.loaded(spec, variant)
            name = handler.name
            return (name, *self.crop(handler, model, image))
        except Exception as exc:  # noqa: BLE001 - said on its panel
            return name, None, f"{type(exc).__name__}: {exc}"


def _crops(cropping: Cropping | None) -> list[dict]:
    if cropping is None:
        return []
    return [{"aspect_ratio": r, **b.to_dict()} for r, b in zip(cropping.ratios, cropping.boxes)]


def _panel(name, cropping, error, faces=(), reproduced=None, *, small, k) -> Panel:
    return Panel(
        model_name=name,
        png=data_uri(draw_panel(small, k, cropping, faces)),
        point=None if cropping is None or cropping.point is None else tuple(cropping.point),
        crops=_crops(cropping),
        has_map=cropping is not None and cropping.grid is not None,
        reproduced=reproduced,
        error=error,
    )


def _small(image: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    k = display_scale(w, h)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    small = Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(small), k


@dataclass(frozen=True)
class Drawn:
    """An image and every cropper's panel of it."""

    width: int
    height: int
    untinted: str  # data: URI
    panels: list[Panel]


def draw_composite(
    rows: Sequence[Mapping[str, Any]], croppers: Croppers, faces: Mapping[str, Face]
) -> Drawn:
    """The rendered composite that ``rows`` (its survival rows, one per cropper) describe,
    cropped by every cropper of the run, each checked against its own row."""
    first = rows[0]
    config = croppers.variant_config(first["variant"])
    kind = design_kind(croppers.config.design.kind)
    item = kind.from_row(first, faces)
    canvas, boxes = kind.render(item, config.layout, FaceCache(config.layout))
    small, k = _small(canvas)
    by_name = {r["model_name"]: r for r in rows}
    panels = []
    for i, spec in enumerate(croppers.specs()):
        name, cropping, error = croppers.decide(spec, canvas, first["variant"])
        row, reproduced = by_name.get(name), None
        if cropping is not None and row is not None:
            model_input = np.empty(0, np.uint8)
            again = kind.rendered_record.on_canvas(item, canvas, boxes, model_input, i)
            outcome = kind.score(cropping, again)
            reproduced = kind.replay_key(kind.row(again, outcome, {})) == kind.replay_key(row)
        panels.append(_panel(name, cropping, error, boxes, reproduced, small=small, k=k))
    untinted = data_uri(draw_panel(small, k, None, boxes))
    return Drawn(canvas.shape[1], canvas.shape[0], untinted, panels)


def draw_upload(data: bytes, croppers: Croppers) -> Drawn:
    """An uploaded image (bytes, never stored) decoded by the one decoder and cropped by every
    cropper of the run; :class:`~cropaudit.transforms.images.ImageError` for a bad image."""
    image = decode_image(data, "the uploaded image")
    small, k = _small(image)
    panels = [_panel(*croppers.decide(spec, image), small=small, k=k) for spec in croppers.specs()]
    return Drawn(image.shape[1], image.shape[0], data_uri(Image.fromarray(small)), panels)


def as_json(drawn: Drawn) -> dict:
    return dataclasses.asdict(drawn)
