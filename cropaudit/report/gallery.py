"""The report's gallery: close calls re-rendered, re-scored and drawn.

Pair composites are picked from the survival table by ``|margin|`` (``a_max - b_max``, the gap
between the two faces' best saliency scores) ascending: close calls are where a small,
systematic bias decides the crop; single images (no margin) by id. Each one is re-rendered from
the run's config and manifest (rendering is deterministic), the run's model is run on it again,
drawn untinted (the faces' skin colour is the attribute under audit, so nothing is painted over
it) with thick crop boxes, face outlines and the salient point, the saliency map in a panel
beside it, and a legend inside the picture. The recomputed salient point, winners and boxes are
checked against the recorded row (what its design kind's ``replay_key`` names).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from cropaudit.config import ExperimentConfig
from cropaudit.model.base import SaliencyGrid, SaliencyModelHandler
from cropaudit.schemas.records import Box, Face
from cropaudit.schemas.survival import PAIRS
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.candidate_crops import candidate_crops
from cropaudit.transforms.crop import grid_cropping
from cropaudit.transforms.design_kind import DesignKind, design_kind
from cropaudit.transforms.overlay import _CROP_COLOURS
from cropaudit.transforms.render import FaceCache

#: Face outline colours in the gallery: face a, face b.
FACE_COLOURS = ((0, 90, 255), (255, 110, 0))
POINT_COLOUR = (255, 230, 0)
#: Pixels between the picture and the map panel, and the legend's line height.
GAP, LINE, LEGEND_W = 6, 15, 112


def crop_colours(n: int) -> list[tuple[int, int, int]]:
    """The outline colour of the i-th crop box, as the overlay draws it."""
    return [_CROP_COLOURS[i % len(_CROP_COLOURS)] for i in range(n)]


@dataclass(frozen=True)
class GalleryItem:
    """One drawn composite and what the page says about it."""

    composite_id: str
    png: bytes
    width: int
    height: int
    row: dict[str, Any]
    #: whether re-scoring gave the recorded salient point, winners and boxes
    reproduced: bool


def pick_rows(
    survival: pd.DataFrame,
    n: int,
    handler: SaliencyModelHandler | None = None,
    layout_params: str | None = None,
):
    """The ``n`` rows to show: ``pairs`` design first (the comparisons under audit, controls
    only fill up), then smallest ``|margin|`` first (rows without a margin last, as every row of
    a single-image table; these take turns by group), then id.

    Rows of a sweep's other variants (``variant`` other than ``base``) and, with ``handler`` and
    ``layout_params``, rows another model, pre-processing or layout produced are left out when
    the run's own rows exist, since the gallery re-renders with the run's config and re-runs only
    the run's own model."""
    if n <= 0 or survival.empty:
        return survival.iloc[0:0]
    df = survival
    wanted: dict[str, str] = {"variant": BASE_VARIANT}
    if handler is not None:
        wanted.update(model_hash=handler.content_hash, preprocessing=handler.preprocessing)
    if layout_params is not None:
        wanted["layout_params"] = layout_params
    for column, value in wanted.items():
        if column in df.columns and (df[column] == value).any():
            df = df[df[column] == value]
    margin = pd.to_numeric(df.get("margin", pd.Series(math.nan, df.index)), errors="coerce").abs()
    order = pd.DataFrame(
        {
            "controls": (df.get("design", pd.Series(PAIRS, df.index)) != PAIRS).astype(int),
            "missing": margin.isna().astype(int),
            "margin": margin.fillna(math.inf),
            # single images (one group each) take turns by group, so every group is shown
            "turn": (
                df.sort_values("composite_id").groupby("group").cumcount()
                if "group" in df.columns
                else 0
            ),
            "id": df["composite_id"],
        },
        index=df.index,
    ).sort_values(["controls", "missing", "margin", "turn", "id"], kind="mergesort")
    return df.loc[order.index[:n]]


def _scaled(value: float, k: float) -> int:
    return int(round(value * k))


def draw_item(
    canvas: np.ndarray,
    scores: np.ndarray,
    grid,
    box_a: Box,
    box_b: Box,
    aspect_ratios: Sequence[float],
    max_height: int,
    max_width: int,
) -> tuple[bytes, int, int]:
    """PNG of the composite at display size, untinted, with thick crop boxes, face outlines and
    the salient point; the min-max normalised saliency map in a panel beside it (below it for a
    wide composite) with the same point; a legend underneath. Returns (png, width, height).

    The composite is downscaled first and the geometry scaled with it, so outlines stay crisp."""
    h0, w0 = canvas.shape[:2]
    wide = w0 > h0
    k = min(1.0, max_height / h0, max_width / w0 / (1 if wide else 2))
    w, h = max(1, _scaled(w0, k)), max(1, _scaled(h0, k))
    image = Image.fromarray(canvas).resize((w, h), Image.Resampling.LANCZOS).convert("RGB")
    result = candidate_crops(grid, w0, h0, aspect_ratios=tuple(aspect_ratios))
    point = (_scaled(result.salient_x, k), _scaled(result.salient_y, k))
    thick = max(3, min(w, h) // 40)
    draw = ImageDraw.Draw(image)
    for crop, colour in zip(result.crops, crop_colours(len(result.crops))):
        x0, y0 = _scaled(crop.x, k), _scaled(crop.y, k)
        x1, y1 = x0 + max(1, _scaled(crop.w, k)) - 1, y0 + max(1, _scaled(crop.h, k)) - 1
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=thick)
    font = ImageFont.load_default(size=11)
    for label, box, colour in zip("ab", (box_a, box_b), FACE_COLOURS):
        x0, y0 = _scaled(box.x, k), _scaled(box.y, k)
        x1, y1 = _scaled(box.x + box.w, k) - 1, _scaled(box.y + box.h, k) - 1
        draw.rectangle([x0 + 1, y0 + 1, x1 - 1, y1 - 1], outline=colour, width=2)
        draw.rectangle([x0 + 2, y0 + 2, x0 + 14, y0 + 16], fill=colour)
        draw.text((x0 + 5, y0 + 3), label, fill=(255, 255, 255), font=font)
    _dot(draw, point, max(4, min(w, h) // 30))
    panel = _map_panel(scores, (w, h))
    _dot(ImageDraw.Draw(panel), point, max(4, min(w, h) // 30))
    entries = [
        ("salient point", POINT_COLOUR),
        *((f"face {label}", colour) for label, colour in zip("ab", FACE_COLOURS)),
        *(
            (f"crop h/w {ratio:g}", colour)
            for ratio, colour in zip(aspect_ratios, crop_colours(len(aspect_ratios)))
        ),
        (f"{'below' if wide else 'right'}: saliency map", None),
    ]
    pw, ph = (w, 2 * h + GAP) if wide else (2 * w + GAP, h)
    legend_h = LINE * len(entries) + 4
    beside = not wide and legend_h <= ph  # a tall composite: the legend to the right
    lx, ly = (pw + GAP, 2) if beside else (2, ph + 3)
    size = (pw + GAP + LEGEND_W, ph) if beside else (max(pw, LEGEND_W), ph + legend_h)
    out = Image.new("RGB", size, (255, 255, 255))
    out.paste(image, (0, 0))
    out.paste(panel, (0, h + GAP) if wide else (w + GAP, 0))
    ldraw = ImageDraw.Draw(out)
    for i, (text, colour) in enumerate(entries):
        y = ly + i * LINE
        if colour is not None:
            ldraw.rectangle([lx, y + 2, lx + 10, y + 11], fill=colour, outline=(0, 0, 0))
        ldraw.text((lx + 14, y), text, fill=(0, 0, 0), font=font)
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    return buf.getvalue(), out.width, out.height


def _dot(draw: ImageDraw.ImageDraw, point: tuple[int, int], r: int) -> None:
    x, y = point
    draw.ellipse([x - r, y - r, x + r, y + r], fill=POINT_COLOUR, outline=(0, 0, 0), width=2)


def _map_panel(scores: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """The min-max normalised map in a perceptual colour map, at ``size``."""
    from matplotlib import colormaps

    s = np.asarray(scores, np.float32)
    span = float(s.max() - s.min()) or 1.0
    norm = Image.fromarray(((s - s.min()) / span * 255).astype(np.uint8))
    norm = np.asarray(norm.resize(size, Image.Resampling.BILINEAR), np.float32) / 255
    return Image.fromarray((colormaps["magma"](norm)[..., :3] * 255).astype(np.uint8))


def build_gallery(
    rows: pd.DataFrame,
    config: ExperimentConfig,
    faces: dict[str, Face],
    handler: SaliencyModelHandler,
    *,
    kind: DesignKind | None = None,
    max_height: int = 420,
    max_width: int = 900,
) -> tuple[list[GalleryItem], list[str]]:
    """Re-render, re-score and draw ``rows`` (of the table of ``kind``, by default the config's
    design kind); returns the items and a note per row that failed."""
    kind = kind or design_kind(config.design.kind)
    cache = FaceCache(config.layout)
    ratios = tuple(config.crop.aspect_ratios)
    rendered, problems = [], []
    for row in rows.to_dict("records"):
        try:
            item = kind.from_row(row, faces)
            canvas, boxes = kind.render(item, config.layout, cache)
            rendered.append((row, item, canvas, boxes, handler.preprocess(canvas)))
        except Exception as exc:  # noqa: BLE001 - one unreadable image must not sink the report
            problems.append(f"{row['composite_id']}: {type(exc).__name__}: {exc}")
    grids = _regrid(
        [r[-1] for r in rendered],
        [r[2].shape[:2] for r in rendered],
        handler,
        config.model.batch_size,
    )
    items = []
    for (row, item, canvas, boxes, model_input), grid in zip(rendered, grids):
        cid = row["composite_id"]
        try:
            if isinstance(grid, Exception):
                raise grid
            again = kind.rendered_record.on_canvas(item, canvas, boxes, model_input, 0)
            cropping = grid_cropping(grid, canvas.shape[1], canvas.shape[0], ratios)
            outcome = kind.score(cropping, again)
            reproduced = kind.replay_key(kind.row(again, outcome, {})) == kind.replay_key(row)
            png, w, h = draw_item(canvas, grid.scores, grid, *boxes, ratios, max_height, max_width)
        except Exception as exc:  # noqa: BLE001 - one unreadable image must not sink the report
            problems.append(f"{cid}: {type(exc).__name__}: {exc}")
            continue
        items.append(GalleryItem(cid, png, w, h, row, reproduced))
    return items, problems


def _regrid(
    inputs: list[np.ndarray],
    image_hws: list[tuple[int, int]],
    handler: SaliencyModelHandler,
    batch_size: int,
) -> list[SaliencyGrid | Exception]:
    """Grids of each model input through the handler's ``predict_grids``, batched by shape at
    the run's batch size as the pipeline scored them (so they match the recorded rows bit for
    bit); a failure is reported per row by the caller."""
    if not inputs:
        return []
    try:
        return handler.predict_grids(handler.load_model(), inputs, image_hws, batch_size)
    except Exception as exc:  # noqa: BLE001
        return [exc] * len(inputs)
