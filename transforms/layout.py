"""Composite layouts: where each face goes on the canvas (pure geometry and pixels).

``vertical_gap`` is the WACV-2022 audit's 3×1 layout (583×3000: face 583×887, white 583×1226,
face 583×887); ``horizontal`` is Twitter's side-by-side layout, unscaled or scaled to a fixed
height. The face boxes (where face pixels actually are) travel with every composite.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cropaudit.config import LayoutConfig
from cropaudit.model.resize import round_half_away
from cropaudit.transforms.records import Box


def fit_into(image: np.ndarray, width: int, height: int, fit: str) -> tuple[np.ndarray, Box]:
    """Fit ``image`` into a width×height slot; returns the pixels to paste and their box
    relative to the slot. ``cover`` scales to fill and centre-crops, ``contain`` scales to fit
    (the rest of the slot keeps the fill colour), ``stretch`` ignores the aspect ratio."""
    h0, w0 = image.shape[:2]
    pil = Image.fromarray(image)
    if fit == "stretch":
        return np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS)), Box(
            0, 0, width, height
        )
    scale = max(width / w0, height / h0) if fit == "cover" else min(width / w0, height / h0)
    sw = max(1, round_half_away(w0 * scale))
    sh = max(1, round_half_away(h0 * scale))
    scaled = pil.resize((sw, sh), Image.Resampling.LANCZOS)
    if fit == "cover":
        left, top = (sw - width) // 2, (sh - height) // 2
        return np.asarray(scaled.crop((left, top, left + width, top + height))), Box(
            0, 0, width, height
        )
    if fit == "contain":
        return np.asarray(scaled), Box((width - sw) // 2, (height - sh) // 2, sw, sh)
    raise ValueError(f"unknown fit {fit!r}")


def prepare_face(image: np.ndarray, layout: LayoutConfig) -> tuple[np.ndarray, Box]:
    """Scale one face for this layout; the result depends only on the image and the layout,
    so it is what a worker caches."""
    if layout.kind == "vertical_gap":
        return fit_into(image, layout.width, layout.face_height, layout.fit)
    h0, w0 = image.shape[:2]
    if layout.height == 0:
        return image, Box(0, 0, w0, h0)
    width = max(1, round_half_away(w0 * layout.height / h0))
    return fit_into(image, width, layout.height, "stretch")


def compose(
    first: tuple[np.ndarray, Box], second: tuple[np.ndarray, Box], layout: LayoutConfig
) -> tuple[np.ndarray, Box, Box]:
    """Paste two prepared faces onto a canvas; returns the canvas and both face boxes."""
    (p1, b1), (p2, b2) = first, second
    if layout.kind == "vertical_gap":
        width = layout.width
        height = 2 * layout.face_height + layout.gap_height
        origins = [(0, 0), (0, layout.face_height + layout.gap_height)]
    else:
        width = p1.shape[1] + layout.gap + p2.shape[1]
        height = max(p1.shape[0], p2.shape[0])
        origins = [
            (0, (height - p1.shape[0]) // 2),
            (p1.shape[1] + layout.gap, (height - p2.shape[0]) // 2),
        ]
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = np.asarray(layout.fill, np.uint8)
    boxes = []
    for (pixels, box), (ox, oy) in zip(((p1, b1), (p2, b2)), origins):
        x, y = ox + box.x, oy + box.y
        canvas[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
        boxes.append(Box(x, y, pixels.shape[1], pixels.shape[0]))
    return canvas, boxes[0], boxes[1]
