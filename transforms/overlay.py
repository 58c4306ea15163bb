"""A PNG that shows what the cropper saw: saliency map, salient point and crops over the image
(:func:`draw_overlay`), or a box cropper's crops over the untouched image (:func:`draw_crops`)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cropaudit.schemas.records import Box
from cropaudit.transforms.candidate_crops import CandidateCrops

_CROP_COLOURS = ((0, 200, 255), (0, 255, 0), (255, 200, 0), (255, 0, 255), (255, 255, 255))
_POINT = (255, 255, 0)


def draw_overlay(image: np.ndarray, scores: np.ndarray, result: CandidateCrops) -> bytes:
    """PNG bytes: the image tinted red by the min-max normalised map, point and crop boxes."""
    base = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    s = np.asarray(scores, np.float32)
    span = float(s.max() - s.min()) or 1.0
    norm = ((s - s.min()) / span * 255).astype(np.uint8)
    heat = Image.fromarray(norm).resize(base.size, Image.Resampling.BILINEAR)
    red = Image.new("RGB", base.size, (255, 0, 0))
    out = Image.composite(red, base, heat.point(lambda v: v * 6 // 10))
    draw = ImageDraw.Draw(out)
    for i, crop in enumerate(result.crops):
        colour = _CROP_COLOURS[i % len(_CROP_COLOURS)]
        draw.rectangle([crop.x, crop.y, crop.x + crop.w - 1, crop.y + crop.h - 1], outline=colour)
    r = max(3, min(base.size) // 60)
    x, y = result.salient_x, result.salient_y
    draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 0), outline=(0, 0, 0))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def draw_crops(
    image: np.ndarray,
    crops: Sequence[tuple[float, Box]],
    point: tuple[int, int] | None = None,
) -> bytes:
    """PNG bytes: the image unchanged under a box cropper's crops (``(aspect ratio, box)``),
    drawn thick enough to see at page scale, its point when it has one, and a legend."""
    out = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(out)
    line = max(2, min(out.size) // 150)
    for i, (_, box) in enumerate(crops):
        colour = _CROP_COLOURS[i % len(_CROP_COLOURS)]
        draw.rectangle(
            [box.x, box.y, box.x + box.w - 1, box.y + box.h - 1], outline=colour, width=line
        )
    entries = [
        (_CROP_COLOURS[i % len(_CROP_COLOURS)], f"crop {ar:g} (h/w)")
        for i, (ar, _) in enumerate(crops)
    ]
    if point is not None:
        r = max(3, min(out.size) // 60)
        x, y = point
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_POINT, outline=(0, 0, 0))
        entries.append((_POINT, "salient point"))
    _legend(draw, entries)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def _legend(draw: ImageDraw.ImageDraw, entries: Sequence[tuple[tuple[int, int, int], str]]) -> None:
    """A swatch and a label per entry, top left, on a dark panel that keeps them readable."""
    font = ImageFont.load_default()
    row = 14
    width = 24 + max(int(draw.textlength(label, font=font)) for _, label in entries)
    draw.rectangle([2, 2, 8 + width, 6 + row * len(entries)], fill=(0, 0, 0))
    for i, (colour, label) in enumerate(entries):
        top = 5 + i * row
        draw.rectangle([6, top + 2, 16, top + 10], fill=colour)
        draw.text((22, top), label, fill=(255, 255, 255), font=font)
