"""Layouts put faces where the boxes say."""

from __future__ import annotations

import numpy as np
import pytest

from cropaudit.config import LayoutConfig
from cropaudit.transforms.layout import compose, fit_into, prepare_face
from cropaudit.transforms.records import Box


def solid(h, w, value):
    return np.full((h, w, 3), value, np.uint8)


def test_vertical_gap_is_583_by_3000_with_the_audit_boxes():
    layout = LayoutConfig()
    first = prepare_face(solid(400, 300, 10), layout)
    second = prepare_face(solid(1718, 2444, 200), layout)
    canvas, b1, b2 = compose(first, second, layout)
    assert canvas.shape == (3000, 583, 3)
    assert (b1, b2) == (Box(0, 0, 583, 887), Box(0, 2113, 583, 887))
    assert (canvas[:887] == 10).all() and (canvas[2113:] == 200).all()
    assert (canvas[887:2113] == 255).all()  # the white gap


def test_contain_keeps_aspect_and_reports_the_inner_box():
    pixels, box = fit_into(solid(100, 400, 0), 583, 887, "contain")
    assert box == Box(0, (887 - 146) // 2, 583, 146)
    assert pixels.shape == (146, 583, 3)
    layout = LayoutConfig(fit="contain", fill=(0, 128, 0))
    canvas, b1, _ = compose(
        prepare_face(solid(100, 400, 9), layout), prepare_face(solid(100, 400, 9), layout), layout
    )
    assert b1 == Box(0, 370, 583, 146)
    assert tuple(canvas[10, 10]) == (0, 128, 0)


@pytest.mark.parametrize("fit", ["cover", "stretch"])
def test_cover_and_stretch_fill_the_slot(fit):
    pixels, box = fit_into(solid(50, 80, 3), 583, 887, fit)
    assert pixels.shape == (887, 583, 3) and box == Box(0, 0, 583, 887)


def test_horizontal_unscaled_and_fixed_height():
    unscaled = LayoutConfig(kind="horizontal", gap=10, fill=(1, 2, 3))
    canvas, b1, b2 = compose(
        prepare_face(solid(100, 60, 50), unscaled),
        prepare_face(solid(80, 40, 60), unscaled),
        unscaled,
    )
    assert canvas.shape == (100, 110, 3)
    assert (b1, b2) == (Box(0, 0, 60, 100), Box(70, 10, 40, 80))
    assert tuple(canvas[0, 65]) == (1, 2, 3)
    scaled = LayoutConfig(kind="horizontal", height=256)
    canvas, b1, b2 = compose(
        prepare_face(solid(100, 60, 50), scaled), prepare_face(solid(80, 40, 60), scaled), scaled
    )
    assert canvas.shape == (256, 154 + 128, 3)
    assert (b1, b2) == (Box(0, 0, 154, 256), Box(154, 0, 128, 256))
