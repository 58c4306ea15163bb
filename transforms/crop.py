"""Simulate the crop: salient point, crop boxes, and which face survives (SimulateCrops).

The geometry follows Twitter's rule (FastGaze spec §4) and is pure; ``SimulateCrops`` is a thin
Beam wrapper. A saliency model becomes a cropper through :func:`grid_cropping` (the crop rule
around its salient point); every cropper's boxes are then scored by :func:`score_cropping`, so
survival, ties and background never depend on the kind of cropper. The pair design's winners
are here (:func:`score_cropping`); each design kind scores its own rendered records
(``transforms.pair_design``, ``transforms.single_design``) and ``SimulateCrops`` takes the
run's kind.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from cropaudit.model.base import SaliencyGrid
from cropaudit.model.resize import round_half_away
from cropaudit.schemas.criteria import TWITTER_ASPECT_RATIOS
from cropaudit.schemas.records import Box, CropOutcome, Cropping, CropResult, Outcome, Rendered
from cropaudit.schemas.survival import WINNERS

A, B, TIE, BACKGROUND = WINNERS


def crop_box(salient_x: int, salient_y: int, width: int, height: int, aspect_ratio: float) -> Box:
    """Twitter's crop for ``aspect_ratio`` (height/width) around the salient point.

    Narrower than the image: keep the full width, height ``round(ar*W)``, centred on the salient
    y and shifted inside the image; otherwise keep the full height, width ``round(H/ar)``,
    centred on the salient x.
    """
    if aspect_ratio <= 0:
        raise ValueError(f"aspect ratio must be positive, got {aspect_ratio}")
    if aspect_ratio < height / width:
        h = min(height, round_half_away(aspect_ratio * width))
        y = min(max(0, salient_y - h // 2), height - h)
        return Box(0, y, width, h)
    w = min(width, round_half_away(height / aspect_ratio))
    x = min(max(0, salient_x - w // 2), width - w)
    return Box(x, 0, w, height)


def visible_winner(a_area: int, b_area: int) -> str:
    """The face a crop keeps: larger visible area; equal areas are a recorded tie."""
    if a_area == b_area:
        return TIE if a_area > 0 else BACKGROUND
    return A if a_area > b_area else B


def point_owner(x: int, y: int, box_a: Box, box_b: Box) -> str:
    if box_a.contains(x, y):
        return A
    if box_b.contains(x, y):
        return B
    return BACKGROUND


def _face_cells(grid: SaliencyGrid, box: Box) -> np.ndarray:
    """Scores of the grid cells whose (truncated) position lies in ``box``."""
    xs = grid.xs.astype(np.int64)
    ys = grid.ys.astype(np.int64)
    cols = (xs >= box.x) & (xs < box.x + box.w)
    rows = (ys >= box.y) & (ys < box.y + box.h)
    return grid.scores[np.ix_(rows, cols)]


def box_saliency(grid: SaliencyGrid | None, box: Box) -> tuple[float, float]:
    """(max, mean) of the grid's scores inside ``box``; NaN without a grid or cells there."""
    cells = _face_cells(grid, box) if grid is not None else np.empty(0)
    return (float(cells.max()), float(cells.mean())) if cells.size else (np.nan, np.nan)


def grid_cropping(
    grid: SaliencyGrid,
    width: int,
    height: int,
    aspect_ratios: tuple[float, ...] = TWITTER_ASPECT_RATIOS,
    centre_x: bool = False,
) -> Cropping:
    """A saliency model as a cropper: Twitter's crop around the grid's salient point for each
    ratio (``centre_x``: centred horizontally instead, as for a symmetric image)."""
    sx, sy, score = grid.salient_point()
    cx = width // 2 if centre_x else sx
    boxes = tuple(crop_box(cx, sy, width, height, ar) for ar in aspect_ratios)
    return Cropping(tuple(float(r) for r in aspect_ratios), boxes, (sx, sy, score), grid)


def per_crop(cropping: Cropping, crop) -> tuple:
    """``crop(aspect_ratio, box)`` of each of the cropping's boxes, in the order asked."""
    return tuple(crop(float(ar), box) for ar, box in zip(cropping.ratios, cropping.boxes))


def at_point(cropping: Cropping, where):
    """``where(x, y)`` of the salient point; ``None`` for a box-only cropper."""
    return None if cropping.point is None else where(*cropping.point[:2])


def cropping_columns(cropping: Cropping) -> dict:
    """The outcome fields every design kind takes from the cropping alone: the salient point
    (``None`` for a box-only cropper) and the grid's shape (``None`` without a grid)."""
    sx, sy, score = (None, None, None) if cropping.point is None else cropping.point
    grid = cropping.grid
    return {
        "salient_x": sx,
        "salient_y": sy,
        "salient_score": score,
        "grid_rows": None if grid is None else int(grid.scores.shape[0]),
        "grid_cols": None if grid is None else int(grid.scores.shape[1]),
    }


def score_cropping(cropping: Cropping, box_a: Box, box_b: Box) -> CropOutcome:
    """Everything the cropper decided for one pair composite, from its boxes (and its salient
    point and grid, when it has them)."""

    def crop(ar: float, box: Box) -> CropResult:
        a_area = box.intersection_area(box_a)
        b_area = box.intersection_area(box_b)
        return CropResult(ar, box, a_area, b_area, visible_winner(a_area, b_area))

    a_max, a_mean = box_saliency(cropping.grid, box_a)
    b_max, b_mean = box_saliency(cropping.grid, box_b)
    return CropOutcome(
        point_winner=at_point(cropping, lambda x, y: point_owner(x, y, box_a, box_b)),
        crops=per_crop(cropping, crop),
        a_max=a_max,
        a_mean=a_mean,
        b_max=b_max,
        b_mean=b_mean,
        **cropping_columns(cropping),
    )


def score_rendered(cropping: Cropping, rendered) -> CropOutcome:
    """A pair composite's outcome (``PairDesign.score``)."""
    return score_cropping(cropping, rendered.box_a, rendered.box_b)


def simulate_crop(
    grid: SaliencyGrid,
    width: int,
    height: int,
    box_a: Box,
    box_b: Box,
    aspect_ratios: tuple[float, ...] = TWITTER_ASPECT_RATIOS,
) -> CropOutcome:
    """A saliency model's outcome for one pair composite: :func:`grid_cropping` then
    :func:`score_cropping`."""
    return score_cropping(grid_cropping(grid, width, height, aspect_ratios), box_a, box_b)


@beam.typehints.with_input_types(tuple[Rendered, SaliencyGrid | Cropping])
@beam.typehints.with_output_types(tuple[Rendered, Outcome])
class SimulateCrops(beam.PTransform):
    """(rendered record, SaliencyGrid | Cropping) -> (rendered record, outcome): a grid is
    cropped by the crop rule, a box cropper's :class:`Cropping` is scored as it is; ``score`` is
    the design kind's (``DesignKind.score``; default: pairs)."""

    def __init__(self, aspect_ratios: tuple[float, ...] = TWITTER_ASPECT_RATIOS, score=None):
        super().__init__()
        self._ratios = tuple(aspect_ratios)
        self._score = score or score_rendered

    def expand(self, pcoll):
        ratios, score = self._ratios, self._score

        def outcome(rendered, decided):
            if not isinstance(decided, Cropping):
                decided = grid_cropping(decided, rendered.width, rendered.height, ratios)
            return rendered, score(decided, rendered)

        return pcoll | "SimulateCrop" >> beam.MapTuple(outcome).with_output_types(
            tuple[Rendered, Outcome]
        )


__all__ = [
    "TWITTER_ASPECT_RATIOS",
    "SimulateCrops",
    "crop_box",
    "grid_cropping",
    "point_owner",
    "box_saliency",
    "score_cropping",
    "score_rendered",
    "simulate_crop",
    "visible_winner",
]
