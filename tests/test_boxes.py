"""CropBoxes on its own: a box cropper's boxes for each rendered composite; a crash or a box
outside the image -> a dead letter with its reason, never the run."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from cropaudit.model.registry import load_handler
from cropaudit.schemas.records import Box, Composite, Face, RenderedComposite
from cropaudit.transforms.boxes import CropBoxes
from tests.test_stages import local_pipeline

RATIOS = (1.0, 2.0)


def rendered(n: int, width: int = 90, height: int = 60) -> list[RenderedComposite]:
    out = []
    for i in range(n):
        f = Face(f"img-{i}", f"img-{i}.png", f"s-{i}", (("g", "x"),))
        c = Composite(f"c{i}", "pairs", "x", "x", i, "a_first", f, f)
        image = np.full((height, width, 3), i, np.uint8)
        out.append(
            RenderedComposite(
                c,
                Box(0, 0, 45, 60),
                Box(45, 0, 45, 60),
                width=width,
                height=height,
                model_input=image,
            )
        )
    return out


def test_crop_boxes_gives_each_composite_its_boxes_across_a_short_last_batch():
    cropper = load_handler("plugin:cropper_plugins:centred")
    # centred boxes of a 90x60 image, by hand: ratio 1 -> 60x60 at x=15; ratio 2 -> 30x60 at 30
    boxes = (Box(15, 0, 60, 60), Box(30, 0, 30, 60))
    with local_pipeline() as p:
        out = p | beam.Create(rendered(3)) | CropBoxes(cropper, RATIOS, batch_size=2)
        assert_that(
            out.predicted | beam.MapTuple(lambda r, c: (r.composite.composite_id, c.boxes)),
            equal_to([(f"c{i}", boxes) for i in range(3)]),
        )
        assert_that(out.dead_letter, equal_to([]), label="NoDeadLetters")


def test_crop_boxes_dead_letters_a_crash_and_a_box_outside_the_image():
    with local_pipeline() as p:
        elements = p | beam.Create(rendered(2))
        crashed = elements | "Broken" >> CropBoxes(
            load_handler("plugin:cropper_plugins:broken"), RATIOS, 4, "#broken"
        )
        outside = elements | "Outside" >> CropBoxes(
            load_handler("plugin:cropper_plugins:outside"), RATIOS, 4
        )
        letters = (crashed.dead_letter, outside.dead_letter) | beam.Flatten()
        assert_that(
            letters | beam.Map(lambda d: (d.stage, d.reason, d.element_id)),
            equal_to(
                [("predict", "cropper_error", f"c{i}#broken") for i in range(2)]
                + [("predict", "bad_crop_box", f"c{i}") for i in range(2)]
            ),
        )
        nothing = (crashed.predicted, outside.predicted) | "AllPredicted" >> beam.Flatten()
        assert_that(nothing, equal_to([]), label="NothingCropped")
