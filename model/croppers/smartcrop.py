"""``smartcrop``: the Python port of smartcrop.js, a box cropper with a built-in skin colour.

It scores every candidate crop by skin (distance to a fixed skin colour), edges and saturation
and returns the best one for a requested output size. We ask, per aspect ratio (height/width),
for a thumbnail whose longer side is :data:`THUMBNAIL` pixels, as thumbnailing services do, so
smartcrop pre-scales the image and picks a crop between 90% and 100% of the largest box of that
ratio (its defaults). Every setting, the library's defaults included, is recorded with each row.

smartcrop is pure Python and holds the GIL (about a second per 583x3000 composite for four
ratios), so a batch is spread over a pool of ``workers`` processes (spawned: never forked from
a process that runs TensorFlow); the pool size does not change any result.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from cropaudit.model.cropper import BoxCropper, LoadedCropper, package_version, require
from cropaudit.model.resize import round_half_away
from cropaudit.schemas.records import Box, Cropping

#: Longer side of the thumbnail requested from smartcrop (sets its pre-scaling).
THUMBNAIL = 256
#: ``SmartCrop.crop`` keyword arguments, its defaults spelled out so they are recorded.
CROP_OPTIONS = {
    "prescale": True,
    "max_scale": 1.0,
    "min_scale": 0.9,
    "num_scale_steps": 2,
    "step": 8,
}


def thumbnail_size(aspect_ratio: float, longer: int = THUMBNAIL) -> tuple[int, int]:
    """(width, height) of the requested thumbnail for ``aspect_ratio`` (height/width)."""
    if aspect_ratio >= 1:
        return max(1, round_half_away(longer / aspect_ratio)), longer
    return longer, max(1, round_half_away(longer * aspect_ratio))


def smartcrop_boxes(image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
    """smartcrop's best crop of ``image`` for each ratio, with the recorded settings."""
    import smartcrop
    from PIL import Image

    cropper = smartcrop.SmartCrop()
    pil = Image.fromarray(np.asarray(image, np.uint8))
    boxes = []
    for ar in ratios:
        w, h = thumbnail_size(ar)
        top = cropper.crop(pil, w, h, **CROP_OPTIONS)["top_crop"]
        boxes.append(Box(int(top["x"]), int(top["y"]), int(top["width"]), int(top["height"])))
    return Cropping(tuple(float(r) for r in ratios), tuple(boxes))


def _crop_or_error(args: tuple[np.ndarray, tuple[float, ...]]):
    try:
        return smartcrop_boxes(*args)
    except Exception as exc:  # noqa: BLE001 - dead-lettered by the caller
        return exc


class _Loaded(LoadedCropper):
    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool = None

    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        return smartcrop_boxes(image, ratios)

    def crop_many(self, images: list[np.ndarray], ratios: tuple[float, ...]) -> list:
        if self._workers <= 1 or len(images) <= 1:
            return [_crop_or_error((im, ratios)) for im in images]
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context)
        return list(self._pool.map(_crop_or_error, [(im, ratios) for im in images]))

    def __del__(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class SmartcropCropper(BoxCropper):
    name = "smartcrop"

    def __init__(self, workers: int | None = None) -> None:
        self._module = require("smartcrop", self.name)  # the missing extra fails here, once
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)

    def __getstate__(self) -> dict:
        return {"workers": self.workers}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["workers"])

    @property
    def source(self) -> str:
        return f"pypi:smartcrop=={package_version('smartcrop')}"

    def settings(self) -> Mapping[str, Any]:
        defaults = {
            f.name: list(v) if isinstance(v, tuple) else v
            for f in dataclasses.fields(self._module.SmartCrop)
            for v in [f.default]
        }
        return {"SmartCrop": defaults, "crop": CROP_OPTIONS, "thumbnail_longer_side": THUMBNAIL}

    def load_model(self) -> LoadedCropper:
        return _Loaded(self.workers)
