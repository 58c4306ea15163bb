"""Composite layouts: where each face goes on the canvas (pure geometry and pixels).

``vertical_gap`` is the WACV-2022 audit's 3×1 layout (583×3000: face 583×887, white 583×1226,
face 583×887); ``horizontal`` is Twitter's side-by-side layout, unscaled or scaled to a fixed
height; ``single`` is one full-body image alone (the "male gaze" check), whose face box from the
manifest is scaled with it (:func:`compose_single`). The face boxes (where face pixels actually
are) travel with every composite.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cropaudit.config import LayoutConfig
from cropaudit.model.resize import round_half_away
from cropaudit.schemas.records import Box
from cropaudit.transforms.images import ImageError

#: Largest canvas (or scaled face) in pixels: 200 MP is 600 MB of RGB. Plans whose canvas the
#: config fixes are refused before a run (``transforms.plan``); faces kept at native size are
#: checked here, per composite, so one huge image is a dead letter, not a crashed worker.
MAX_CANVAS_PIXELS = 200_000_000


def check_canvas(width: int, height: int, what: str) -> None:
    """``ImageError("canvas_too_large")`` before allocating more than :data:`MAX_CANVAS_PIXELS`."""
    if width * height > MAX_CANVAS_PIXELS:
        raise ImageError(
            "canvas_too_large",
            f"the {what} would be {width}x{height} = {width * height:,} pixels "
            f"(limit {MAX_CANVAS_PIXELS:,})",
        )


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


def face_slot(layout: LayoutConfig) -> tuple[int, int]:
    """(width, height) of a ``vertical_gap`` face slot: the configured slot times
    ``face_scale``, rounded half away from zero, at least 1 pixel."""
    s = layout.face_scale
    return (
        max(1, round_half_away(layout.width * s)),
        max(1, round_half_away(layout.face_height * s)),
    )


def face_height(layout: LayoutConfig, native_height: int) -> int:
    """Height of a ``horizontal`` face (or a ``single`` image): the fixed height (or the face's
    own height when unscaled) times ``face_scale``, at least 1 pixel."""
    base = layout.height or native_height
    return max(1, round_half_away(base * layout.face_scale))


def face_key(layout: LayoutConfig) -> tuple:
    """The layout values :func:`prepare_face` depends on: layouts with equal keys prepare every
    face identically (so they can share a cache of prepared faces)."""
    if layout.kind == "vertical_gap":
        return (layout.kind, layout.width, layout.face_height, layout.fit, layout.face_scale)
    return (layout.kind, layout.height, layout.face_scale)


def prepare_face(image: np.ndarray, layout: LayoutConfig) -> tuple[np.ndarray, Box]:
    """Scale one face for this layout; the result depends only on the image and
    :func:`face_key` of the layout, so it is what a worker caches. ``single`` images are scaled
    as ``horizontal`` faces are: kept at native size, or to :func:`face_height`, aspect kept."""
    if layout.kind == "vertical_gap":
        return fit_into(image, *face_slot(layout), layout.fit)
    h0, w0 = image.shape[:2]
    if layout.height == 0 and layout.face_scale == 1.0:
        return image, Box(0, 0, w0, h0)
    height = face_height(layout, h0)
    width = max(1, round_half_away(w0 * height / h0))
    check_canvas(width, height, "scaled image")
    return fit_into(image, width, height, "stretch")


def blank_canvas(height: int, width: int, fill: tuple[int, int, int]) -> np.ndarray:
    """A ``fill``-coloured (height, width, 3) canvas. Broadcasting one filled row over the rows
    copies whole rows; broadcasting the 3-vector itself is ~80× slower on a 583×3000 canvas."""
    row = np.empty((width, 3), np.uint8)
    row[:] = np.asarray(fill, np.uint8)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = row
    return canvas


def pad_canvas(
    canvas: np.ndarray, boxes: tuple[Box, ...], pad: int, fill: tuple[int, int, int]
) -> tuple[np.ndarray, tuple[Box, ...]]:
    """Add ``pad`` fill-coloured pixels at the top and at the left of ``canvas``; every box
    moves by (pad, pad). ``pad=0`` returns the inputs unchanged."""
    if pad == 0:
        return canvas, boxes
    h, w = canvas.shape[:2]
    out = blank_canvas(h + pad, w + pad, fill)
    out[pad:, pad:] = canvas
    return out, tuple(Box(b.x + pad, b.y + pad, b.w, b.h) for b in boxes)


def compose(
    first: tuple[np.ndarray, Box], second: tuple[np.ndarray, Box], layout: LayoutConfig
) -> tuple[np.ndarray, Box, Box]:
    """Paste two prepared faces onto a canvas; returns the canvas and both face boxes.

    ``vertical_gap``: slot, gap of ``gap_height``, slot (slots per :func:`face_slot`);
    ``horizontal``: face, gap of ``gap``, face, vertically centred. Then :func:`pad_canvas`."""
    (p1, b1), (p2, b2) = first, second
    if layout.kind == "vertical_gap":
        width, slot_height = face_slot(layout)
        height = 2 * slot_height + layout.gap_height
        origins = [(0, 0), (0, slot_height + layout.gap_height)]
    else:
        width = p1.shape[1] + layout.gap + p2.shape[1]
        height = max(p1.shape[0], p2.shape[0])
        origins = [
            (0, (height - p1.shape[0]) // 2),
            (p1.shape[1] + layout.gap, (height - p2.shape[0]) // 2),
        ]
    check_canvas(width + layout.pad, height + layout.pad, "composite canvas")
    canvas = blank_canvas(height, width, layout.fill)
    boxes = []
    for (pixels, box), (ox, oy) in zip(((p1, b1), (p2, b2)), origins):
        x, y = ox + box.x, oy + box.y
        canvas[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
        boxes.append(Box(x, y, pixels.shape[1], pixels.shape[0]))
    canvas, (box1, box2) = pad_canvas(canvas, tuple(boxes), layout.pad, layout.fill)
    return canvas, box1, box2


def face_box_inside(box: tuple[float, float, float, float], width: int, height: int) -> bool:
    """Whether a face box (x, y, w, h) has a positive size and lies inside a width×height image."""
    x, y, w, h = box
    return w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height


def scale_box(
    box: tuple[float, float, float, float], src: tuple[int, int], dst: tuple[int, int]
) -> Box:
    """A box (x, y, w, h) in an image of size ``src`` (width, height) -> the same region of that
    image resized to ``dst``: each edge scaled and rounded half away from zero, kept inside the
    image, at least one pixel wide and high."""
    x, y, w, h = box
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    x0 = min(max(0, round_half_away(x * sx)), dst[0] - 1)
    y0 = min(max(0, round_half_away(y * sy)), dst[1] - 1)
    x1 = min(max(x0 + 1, round_half_away((x + w) * sx)), dst[0])
    y1 = min(max(y0 + 1, round_half_away((y + h) * sy)), dst[1])
    return Box(x0, y0, x1 - x0, y1 - y0)


def compose_single(
    image: np.ndarray, face_box: tuple[float, float, float, float], layout: LayoutConfig
) -> tuple[np.ndarray, Box, Box]:
    """The ``single`` layout: one image alone, prepared by :func:`prepare_face` (native size or
    scaled to ``height`` × ``face_scale``), then :func:`pad_canvas`. ``face_box`` is in the
    image's own (displayed) pixels and must lie inside it (``ValueError`` otherwise). Returns the
    canvas, the face box and the image box on the canvas."""
    h0, w0 = image.shape[:2]
    if not face_box_inside(face_box, w0, h0):
        raise ValueError(f"face box {list(face_box)} is not inside the {w0}x{h0} image")
    pixels, _ = prepare_face(image, layout)
    h, w = pixels.shape[:2]
    face = scale_box(face_box, (w0, h0), (w, h))
    canvas, (face, whole) = pad_canvas(pixels, (face, Box(0, 0, w, h)), layout.pad, layout.fill)
    return canvas, face, whole
