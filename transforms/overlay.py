"""A PNG that shows what the cropper saw: saliency map, salient point and crops over the image."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from cropaudit.transforms.candidate_crops import CandidateCrops

_CROP_COLOURS = ((0, 200, 255), (0, 255, 0), (255, 200, 0), (255, 0, 255), (255, 255, 255))


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
