"""The crop rule against the WACV-2022 audit's table of Twitter's binary outputs."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cropaudit.model.base import SaliencyGrid, stride_grid
from cropaudit.schemas.records import Box
from cropaudit.transforms.crop import crop_box, simulate_crop, visible_winner
from tests.conftest import shared_file


def test_crop_rule_reproduces_all_3000_reference_rows():
    path = shared_file("data/reference/df_cfd_3k.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3000
    mismatches = []
    for row in rows:
        box = crop_box(int(row["sal_x_twitter"]), int(row["sal_y_twitter"]), 583, 3000, 0.56)
        expected = tuple(
            int(row[k])
            for k in (
                "top_left_x_twitter",
                "top_left_y_twitter",
                "crop_width_twitter",
                "crop_height_twitter",
            )
        )
        if (box.x, box.y, box.w, box.h) != expected:
            mismatches.append((row["file_name"], expected, box))
    assert mismatches == []


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (0.56, (0, 362, 583, 326)),
        (1.0, (0, 234, 583, 583)),
        (1.14, (0, 193, 583, 665)),
        (2.0, (0, 0, 583, 1166)),
        (3000 / 583, (0, 0, 583, 3000)),
    ],
)
def test_crops_of_the_obama_mcconnell_point(ratio, expected):
    box = crop_box(375, 525, 583, 3000, ratio)
    assert (box.x, box.y, box.w, box.h) == expected


def test_wide_image_crops_full_height_centred_on_x_and_stays_inside():
    assert crop_box(10, 50, 1000, 100, 1.0) == Box(0, 0, 100, 100)
    assert crop_box(990, 50, 1000, 100, 1.0) == Box(900, 0, 100, 100)
    assert crop_box(500, 50, 1000, 100, 0.5) == Box(400, 0, 200, 100)


def test_visible_winner_and_ties():
    assert visible_winner(10, 5) == "a"
    assert visible_winner(5, 10) == "b"
    assert visible_winner(7, 7) == "tie"
    assert visible_winner(0, 0) == "background"


def test_simulate_crop_picks_first_maximum_and_face_statistics():
    scores = np.zeros((20, 4), np.float32)
    scores[3, 2] = 5.0  # top face
    scores[16, 1] = 5.0  # same score lower down: the first maximum (row-major) wins
    scores[15, 0] = -1.0
    grid = stride_grid(scores, (3000, 583), (320, 62), 16)
    box_top, box_bottom = Box(0, 0, 583, 887), Box(0, 2113, 583, 887)
    out = simulate_crop(grid, 583, 3000, box_top, box_bottom, (0.56, 1.0))
    assert (out.salient_x, out.salient_y) == (375, 525)
    assert out.point_winner == "a"
    assert [c.winner for c in out.crops] == ["a", "a"]
    assert out.a_max == 5.0 and out.b_max == 5.0
    assert out.b_mean == pytest.approx((5.0 - 1.0) / (6 * 4))
    assert out.margin == 0.0


def test_simulate_crops_stage_crops_a_grid_by_the_rule_and_scores_a_croppers_boxes():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from cropaudit.schemas.records import Composite, Cropping, Face, RenderedComposite
    from cropaudit.transforms.crop import SimulateCrops
    from tests.test_stages import local_pipeline

    face = Face("f", "f.png", "s", (("g", "x"),))
    top, bottom = Box(0, 0, 100, 100), Box(0, 200, 100, 100)

    def rendered(cid):
        composite = Composite(cid, "pairs", "x", "x", 0, "a_first", face, face)
        return RenderedComposite(
            composite, top, bottom, width=100, height=300, model_input=np.empty(0, np.float32)
        )

    # the grid's maximum sits at (25, 250), in the bottom face: a 1:1 crop keeps that face
    scores = np.array([[1, 0], [0, 0], [9, 0]], np.float32)
    xs, ys = np.array([25, 75], np.float32), np.array([50, 150, 250], np.float32)
    grid = SaliencyGrid(scores, xs, ys)
    boxes = Cropping((1.0,), (Box(0, 0, 100, 100),))  # a box cropper that keeps the top face
    with local_pipeline() as p:
        decided = p | beam.Create([(rendered("g"), grid), (rendered("b"), boxes)])
        out = decided | SimulateCrops((1.0,))
        assert_that(
            out
            | beam.MapTuple(
                lambda r, o: (
                    r.composite.composite_id,
                    o.salient_x,
                    o.salient_y,
                    o.point_winner,
                    [(c.box, c.a_area, c.b_area, c.winner) for c in o.crops],
                )
            ),
            equal_to(
                [
                    ("g", 25, 250, "b", [(Box(0, 200, 100, 100), 0, 10000, "b")]),
                    ("b", None, None, None, [(Box(0, 0, 100, 100), 10000, 0, "a")]),
                ]
            ),
        )
