"""The report's gallery: close calls re-rendered, re-scored and drawn.

Pair composites are picked from the survival table by ``|margin|`` (``a_max - b_max``, the gap
between the two faces' best saliency scores) ascending: close calls are where a small,
systematic bias decides the crop; single images (no margin) by id. Each one is re-rendered from
the run's config and manifest (rendering is deterministic), the run's model is run on it again,
and the saliency map, salient point and one crop box per aspect ratio are drawn over it with
:func:`cropaudit.transforms.overlay.draw_overlay`. The recomputed salient point, winners and
boxes are checked against the recorded row (what its design kind's ``replay_key`` names).
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from cropaudit.config import ExperimentConfig
from cropaudit.model.base import SaliencyGrid, SaliencyModelHandler
from cropaudit.schemas.records import Box, Face
from cropaudit.schemas.survival import PAIRS
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.candidate_crops import candidate_crops
from cropaudit.transforms.crop import grid_cropping
from cropaudit.transforms.design_kind import DesignKind, design_kind
from cropaudit.transforms.overlay import _CROP_COLOURS, draw_overlay
from cropaudit.transforms.render import FaceCache

#: Face outline colours in the gallery: face a, face b.
FACE_COLOURS = ((0, 90, 255), (255, 110, 0))


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
    """PNG of the composite at display size with map, salient point, crops and face boxes.

    The composite is downscaled first and the geometry scaled with it, so the overlay's 1-pixel
    outlines stay crisp."""
    h0, w0 = canvas.shape[:2]
    k = min(1.0, max_height / h0, max_width / w0)
    w, h = max(1, _scaled(w0, k)), max(1, _scaled(h0, k))
    small = np.asarray(Image.fromarray(canvas).resize((w, h), Image.Resampling.LANCZOS))
    result = candidate_crops(grid, w0, h0, aspect_ratios=tuple(aspect_ratios))
    scaled = dataclasses.replace(
        result,
        salient_x=_scaled(result.salient_x, k),
        salient_y=_scaled(result.salient_y, k),
        crops=tuple(
            dataclasses.replace(
                c,
                x=_scaled(c.x, k),
                y=_scaled(c.y, k),
                w=max(1, _scaled(c.w, k)),
                h=max(1, _scaled(c.h, k)),
            )
            for c in result.crops
        ),
    )
    image = Image.open(io.BytesIO(draw_overlay(small, scores, scaled))).convert("RGB")
    draw = ImageDraw.Draw(image)
    for label, box, colour in zip("ab", (box_a, box_b), FACE_COLOURS):
        x0, y0 = _scaled(box.x, k), _scaled(box.y, k)
        x1, y1 = _scaled(box.x + box.w, k) - 1, _scaled(box.y + box.h, k) - 1
        draw.rectangle([x0 + 1, y0 + 1, x1 - 1, y1 - 1], outline=colour, width=2)
        draw.rectangle([x0 + 2, y0 + 2, x0 + 14, y0 + 16], fill=colour)
        draw.text((x0 + 5, y0 + 3), label, fill=(255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue(), w, h


def build_gallery(
    rows: pd.DataFrame,
    config: ExperimentConfig,
    faces: dict[str, Face],
    handler: SaliencyModelHandler,
    *,
    kind: DesignKind | None = None,
    max_height: int = 600,
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
