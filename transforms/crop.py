"""Simulate the crop: salient point, crop boxes, and which face survives (SimulateCrops).

The geometry follows Twitter's rule (FastGaze spec §4) and is pure; ``SimulateCrops`` is a thin
Beam wrapper. A saliency model becomes a cropper through :func:`grid_cropping` (the crop rule
around its salient point); every cropper's boxes are then scored by :func:`score_cropping`, so
survival, ties and background never depend on the kind of cropper.

``single`` composites (one full-body image, the "male gaze" check) have a face box and an image
box instead of two faces: the salient point is ``face`` (in the face box), ``body`` (elsewhere
on the image: in a full-body image everything but the face counts as body) or ``background``
(off the image, on padding). A crop is ``face`` when it keeps more than half of the face box
(:func:`single_crop_winner`), else ``body`` when it keeps some of the image, else ``background``;
its ``a_area`` is the visible face area and ``b_area`` the visible rest of the image.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from cropaudit.model.base import SaliencyGrid
from cropaudit.model.resize import round_half_away
from cropaudit.schemas.criteria import TWITTER_ASPECT_RATIOS
from cropaudit.transforms.records import (
    Box,
    CropOutcome,
    Cropping,
    CropResult,
    RenderedComposite,
)


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
        return "tie" if a_area > 0 else "background"
    return "a" if a_area > b_area else "b"


def point_owner(x: int, y: int, box_a: Box, box_b: Box) -> str:
    if box_a.contains(x, y):
        return "a"
    if box_b.contains(x, y):
        return "b"
    return "background"


def single_point_owner(x: int, y: int, face: Box, image: Box) -> str:
    if face.contains(x, y):
        return "face"
    return "body" if image.contains(x, y) else "background"


def single_crop_winner(face_area: int, body_area: int, face: Box) -> str:
    """``face`` when the crop keeps the face whole or its larger part (more than half of the face
    box's area), else ``body`` when it keeps any of the rest of the image, else ``background``."""
    if 2 * face_area > face.area:
        return "face"
    return "body" if body_area > 0 else "background"


def _face_cells(grid: SaliencyGrid, box: Box) -> np.ndarray:
    """Scores of the grid cells whose (truncated) position lies in ``box``."""
    xs = grid.xs.astype(np.int64)
    ys = grid.ys.astype(np.int64)
    cols = (xs >= box.x) & (xs < box.x + box.w)
    rows = (ys >= box.y) & (ys < box.y + box.h)
    return grid.scores[np.ix_(rows, cols)]


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


def score_cropping(cropping: Cropping, box_a: Box, box_b: Box, single: bool = False) -> CropOutcome:
    """Everything the cropper decided for one composite, from its boxes (and its salient point
    and grid, when it has them). ``single``: a one-image composite, ``box_a`` its face box and
    ``box_b`` the image (module docstring); ``b_max``/``b_mean`` are then NaN."""
    crops = []
    for ar, box in zip(cropping.ratios, cropping.boxes):
        a_area = box.intersection_area(box_a)
        b_area = box.intersection_area(box_b)
        if single:  # the face lies inside the image: the rest of the visible image is body
            b_area -= a_area
            winner = single_crop_winner(a_area, b_area, box_a)
        else:
            winner = visible_winner(a_area, b_area)
        crops.append(CropResult(float(ar), box, a_area, b_area, winner))
    grid = cropping.grid
    stats = []
    for face_box in (box_a,) if single else (box_a, box_b):
        cells = _face_cells(grid, face_box) if grid is not None else np.empty(0)
        stats += [float(cells.max()), float(cells.mean())] if cells.size else [np.nan, np.nan]
    if single:
        stats += [np.nan, np.nan]
    sx = sy = score = owner = None
    if cropping.point is not None:
        sx, sy, score = cropping.point
        owner = (
            single_point_owner(sx, sy, box_a, box_b)
            if single
            else point_owner(sx, sy, box_a, box_b)
        )
    return CropOutcome(
        salient_x=sx,
        salient_y=sy,
        salient_score=score,
        point_winner=owner,
        crops=tuple(crops),
        a_max=stats[0],
        a_mean=stats[1],
        b_max=stats[2],
        b_mean=stats[3],
        grid_rows=None if grid is None else int(grid.scores.shape[0]),
        grid_cols=None if grid is None else int(grid.scores.shape[1]),
    )


def simulate_crop(
    grid: SaliencyGrid,
    width: int,
    height: int,
    box_a: Box,
    box_b: Box,
    aspect_ratios: tuple[float, ...] = TWITTER_ASPECT_RATIOS,
    single: bool = False,
) -> CropOutcome:
    """A saliency model's outcome for one composite: :func:`grid_cropping` then
    :func:`score_cropping`."""
    return score_cropping(grid_cropping(grid, width, height, aspect_ratios), box_a, box_b, single)


@beam.typehints.with_input_types(tuple[RenderedComposite, SaliencyGrid | Cropping])
@beam.typehints.with_output_types(tuple[RenderedComposite, CropOutcome])
class SimulateCrops(beam.PTransform):
    """(RenderedComposite, SaliencyGrid | Cropping) -> (RenderedComposite, CropOutcome): a grid
    is cropped by the crop rule, a box cropper's :class:`Cropping` is scored as it is."""

    def __init__(self, aspect_ratios: tuple[float, ...] = TWITTER_ASPECT_RATIOS):
        super().__init__()
        self._ratios = tuple(aspect_ratios)

    def expand(self, pcoll):
        ratios = self._ratios

        def outcome(rendered, decided):
            if not isinstance(decided, Cropping):
                decided = grid_cropping(decided, rendered.width, rendered.height, ratios)
            single = rendered.composite.design == "single"
            return rendered, score_cropping(decided, rendered.box_a, rendered.box_b, single)

        return pcoll | "SimulateCrop" >> beam.MapTuple(outcome).with_output_types(
            tuple[RenderedComposite, CropOutcome]
        )


__all__ = [
    "TWITTER_ASPECT_RATIOS",
    "SimulateCrops",
    "crop_box",
    "grid_cropping",
    "point_owner",
    "score_cropping",
    "simulate_crop",
    "single_crop_winner",
    "single_point_owner",
    "visible_winner",
]
