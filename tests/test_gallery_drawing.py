"""The gallery's drawing: the composite is shown untinted (skin colour is the attribute under
audit), the saliency map beside it, thick crop boxes and the legend inside the picture."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cropaudit.model.base import SaliencyGrid
from cropaudit.report.gallery import LEGEND_W, crop_colours, draw_item
from cropaudit.schemas.records import Box


def composite() -> tuple[np.ndarray, SaliencyGrid, Box, Box]:
    """A tall two-face canvas (skin-coloured face blocks) with a map peaking on face a."""
    canvas = np.full((600, 120, 3), 255, np.uint8)
    canvas[40:160, 20:100] = (141, 85, 36)  # face a
    canvas[440:560, 20:100] = (224, 172, 105)  # face b
    ys, xs = np.arange(15, 600, 30, dtype=np.float32), np.arange(15, 120, 30, dtype=np.float32)
    scores = np.exp(-(((ys[:, None] - 100) / 60) ** 2) - ((xs[None, :] - 60) / 40) ** 2)
    grid = SaliencyGrid(scores.astype(np.float32), xs, ys)
    return canvas, grid, Box(20, 40, 80, 120), Box(20, 440, 80, 120)


def test_skin_is_untinted_map_beside_boxes_thick_legend_inside():
    canvas, grid, a, b = composite()
    png, width, height = draw_item(canvas, grid.scores, grid, a, b, (0.56, 1.0), 600, 900)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape == (height, width, 3)
    # the faces' inner pixels keep their colour exactly (no tint over the faces)
    assert (image[480:520, 40:80] == (224, 172, 105)).all()
    inner_a = image[60:150, 40:80].reshape(-1, 3)
    assert (inner_a == (141, 85, 36)).all(axis=1).mean() > 0.8  # the rest: point and boxes
    # the map is a panel beside the composite, brightest where the scores peak
    panel = image[:600, 126:246].astype(int).sum(axis=2)
    assert panel[100, 60] > panel[500, 60] + 200
    # crop boxes: outlines at least 3 px thick (a run of rows where an edge crosses x = 60)
    for colour in crop_colours(2):
        edge = (image[:600, 60] == colour).all(axis=1)
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, edge.astype(int), 0])))[::2]
        assert len(runs) and 3 <= runs.max() < 20, (colour, runs)
    # the legend is drawn inside the picture, to the right of the panel
    legend = image[:200, width - LEGEND_W :]
    assert (legend != 255).any(axis=2).sum() > 200
