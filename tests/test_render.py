"""RenderComposites on its own: composites -> canvases pre-processed for the model, boxes where
the layout puts the faces; an unreadable image -> a dead letter with its reason."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from cropaudit.config import LayoutConfig
from cropaudit.model.baseline import CentreSurroundHandler
from cropaudit.schemas.records import Box, Composite, Face
from cropaudit.transforms.render import RenderComposites
from tests.test_stages import local_pipeline

RED, BLUE, WHITE = (200, 0, 0), (0, 0, 200), (255, 255, 255)
LAYOUT = LayoutConfig(kind="horizontal", height=0, gap=8)


def face(tmp_path, name: str, colour) -> Face:
    path = tmp_path / f"{name}.png"
    Image.fromarray(np.full((60, 40, 3), colour, np.uint8)).save(path)
    return Face(name, str(path), f"s-{name}", (("g", name),))


def test_render_puts_the_faces_where_the_layout_says_and_dead_letters_a_missing_image(tmp_path):
    red, blue = face(tmp_path, "red", RED), face(tmp_path, "blue", BLUE)
    missing = Face("gone", str(tmp_path / "gone.png"), "s-gone", (("g", "gone"),))
    composites = [
        Composite("c0", "pairs", "red", "blue", 0, "a_first", red, blue),
        Composite("c1", "pairs", "red", "blue", 0, "b_first", red, blue),
        Composite("c2", "pairs", "red", "gone", 1, "a_first", red, missing),
    ]
    handler = CentreSurroundHandler()
    # the canvas by hand: red 40x60, white gap of 8, blue 40x60 (a_first); swapped for b_first
    canvas = np.full((60, 88, 3), WHITE, np.uint8)
    canvas[:, :40], canvas[:, 48:] = RED, BLUE
    swapped = np.full((60, 88, 3), WHITE, np.uint8)
    swapped[:, :40], swapped[:, 48:] = BLUE, RED
    left, right = Box(0, 0, 40, 60), Box(48, 0, 40, 60)
    expected = [
        ("c0", 88, 60, left, right, handler.preprocess(canvas).tobytes()),
        ("c1", 88, 60, right, left, handler.preprocess(swapped).tobytes()),
    ]
    with local_pipeline() as p:
        out = p | beam.Create(composites) | RenderComposites(handler, LAYOUT)
        assert_that(
            out.rendered
            | beam.Map(
                lambda r: (
                    r.composite.composite_id,
                    r.width,
                    r.height,
                    r.box_a,
                    r.box_b,
                    r.model_input.tobytes(),
                )
            ),  # fmt: skip
            equal_to(expected),
        )
        assert_that(
            out.dead_letter | beam.Map(lambda d: (d.stage, d.reason, d.element_id)),
            equal_to([("render", "image_missing", "c2")]),
            label="DeadLetters",
        )
