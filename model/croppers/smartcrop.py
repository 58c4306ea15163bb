"""``smartcrop``: the Python port of smartcrop.js, a box cropper with a built-in skin colour.

It scores every candidate crop by skin (distance to a fixed skin colour), edges and saturation
and returns the best one for a requested output size. We ask, per aspect ratio (height/width),
for a thumbnail whose longer side is :data:`THUMBNAIL` pixels, as thumbnailing services do, so
smartcrop pre-scales the image and picks a crop between 90% and 100% of the largest box of that
ratio (its defaults). Every setting, the library's defaults included, is recorded with each row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from cropaudit.model.cropper import BoxCropper, LoadedCropper, package_version, require
from cropaudit.model.resize import round_half_away
from cropaudit.transforms.records import Box, Cropping

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


class _Loaded(LoadedCropper):
    def __init__(self, smartcrop_module) -> None:
        from PIL import Image

        self._image = Image
        self._cropper = smartcrop_module.SmartCrop()

    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        pil = self._image.fromarray(np.asarray(image, np.uint8))
        boxes = []
        for ar in ratios:
            w, h = thumbnail_size(ar)
            top = self._cropper.crop(pil, w, h, **CROP_OPTIONS)["top_crop"]
            boxes.append(Box(int(top["x"]), int(top["y"]), int(top["width"]), int(top["height"])))
        return Cropping(tuple(float(r) for r in ratios), tuple(boxes))


class SmartcropCropper(BoxCropper):
    name = "smartcrop"

    def __init__(self) -> None:
        self._module = require("smartcrop", self.name)  # the missing extra fails here, once

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

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
        return _Loaded(self._module)
