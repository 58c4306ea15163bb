"""libvips' ``smartcrop`` (through ``pyvips``): the smart crop most of the web's thumbnails get.

sharp's ``position: "attention"``, imgproxy's smart gravity and many CMS thumbnailers call
``vips_smartcrop``. Its strategies: ``attention`` (skin colour against a fixed vector, saturation
and edges on a shrunken copy, blurred; the crop is centred on the maximum, its *attention
centre*), ``entropy`` (trims the edge of lower entropy until the box fits) and ``centre`` (the
control: a centred box, blind to content). We ask, per aspect ratio (height/width), for the
largest box of that ratio inside the image, the box Twitter's rule crops
(:func:`cropaudit.transforms.crop.crop_box`), so the croppers differ only in where they put it.

libvips' attention centre depends on the box size (its blur grows with the box), so each ratio
has its own: it is kept as the cropping's ``focus`` (shown by ``cropaudit saliency``), not as the
row's salient point: libvips 8.18 reports ``attention_x`` 0 for every image taller than wide,
so a point criterion would score a column libvips never searched. Like smartcrop, these are
audited by their crops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cropaudit.model.cropper import BoxCropper, LoadedCropper, package_version, require
from cropaudit.model.resize import round_half_away
from cropaudit.schemas.records import Box, Cropping

#: cropaudit name -> libvips ``interesting`` strategy.
STRATEGIES = {"vips-attention": "attention", "vips-entropy": "entropy", "vips-centre": "centre"}
#: Strategies whose attention centre libvips reports.
WITH_POINT = ("attention",)


def largest_box(width: int, height: int, aspect_ratio: float) -> tuple[int, int]:
    """(w, h) of the largest box of ``aspect_ratio`` in the image: the size Twitter's rule
    crops (``transforms.crop.crop_box``, a higher layer; the tests hold the two equal)."""
    if aspect_ratio < height / width:
        return width, min(height, round_half_away(aspect_ratio * width))
    return min(width, round_half_away(height / aspect_ratio)), height


def vips_cropping(image: np.ndarray, ratios: tuple[float, ...], interesting: str) -> Cropping:
    """libvips' ``smartcrop`` box (and attention centre) of ``image`` for each ratio."""
    import pyvips

    vimage = pyvips.Image.new_from_array(np.ascontiguousarray(image, np.uint8))
    vimage = vimage.copy(interpretation="srgb")
    height, width = image.shape[:2]
    boxes, focus = [], []
    for ar in ratios:
        w, h = largest_box(width, height, ar)
        out, found = vimage.smartcrop(
            w, h, interesting=interesting, attention_x=True, attention_y=True
        )
        # libvips returns the crop as a view whose offsets place it in the input
        boxes.append(Box(-int(out.xoffset), -int(out.yoffset), int(out.width), int(out.height)))
        point = (int(found["attention_x"]), int(found["attention_y"]))
        focus.append(point if interesting in WITH_POINT else None)
    return Cropping(tuple(float(r) for r in ratios), tuple(boxes), focus=tuple(focus))


class _Loaded(LoadedCropper):
    def __init__(self, interesting: str) -> None:
        self._interesting = interesting

    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        return vips_cropping(image, ratios, self._interesting)


class VipsCropper(BoxCropper):
    """One libvips strategy; the libvips build (from ``pyvips-binary``) is part of its source."""

    def __init__(self, name: str) -> None:
        if name not in STRATEGIES:
            raise ValueError(f"unknown libvips cropper {name!r}; known: {sorted(STRATEGIES)}")
        self.name = name
        self.interesting = STRATEGIES[name]
        self._pyvips = require("pyvips", name)  # the missing extra fails here, once

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_pyvips"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pyvips = require("pyvips", self.name)

    @property
    def source(self) -> str:
        return (
            f"pypi:pyvips=={package_version('pyvips')}; libvips {self.libvips_version}"
            f" (pypi:pyvips-binary=={package_version('pyvips-binary')})"
        )

    @property
    def libvips_version(self) -> str:
        return ".".join(str(self._pyvips.version(i)) for i in range(3))

    def settings(self) -> Mapping[str, Any]:
        return {
            "operation": "vips_smartcrop",
            "interesting": self.interesting,
            "premultiplied": False,
            "box": "largest box of each aspect ratio (Twitter's crop size)",
            "input": "sRGB uchar, the composite's own pixels (no pre-shrink)",
            "focus": "attention centre per ratio" if self.interesting in WITH_POINT else None,
        }

    def load_model(self) -> LoadedCropper:
        return _Loaded(self.interesting)
