"""Layouts put faces where the boxes say."""

from __future__ import annotations

import numpy as np
import pytest

from cropaudit.config import LayoutConfig
from cropaudit.schemas.records import Box
from cropaudit.transforms.layout import (
    compose,
    face_height,
    face_key,
    face_slot,
    fit_into,
    pad_canvas,
    prepare_face,
)


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


def test_face_scale_scales_the_vertical_slot_and_keeps_the_gap():
    layout = LayoutConfig(face_scale=0.5)
    assert face_slot(layout) == (292, 444)  # round half away: 291.5 -> 292, 443.5 -> 444
    canvas, b1, b2 = compose(
        prepare_face(solid(400, 300, 10), layout), prepare_face(solid(400, 300, 20), layout), layout
    )
    assert canvas.shape == (2 * 444 + 1226, 292, 3)
    assert (b1, b2) == (Box(0, 0, 292, 444), Box(0, 444 + 1226, 292, 444))
    assert (canvas[444 : 444 + 1226] == 255).all()


def test_face_scale_scales_horizontal_faces_fixed_or_unscaled():
    fixed = LayoutConfig(kind="horizontal", height=256, face_scale=0.5)
    pixels, box = prepare_face(solid(100, 60, 5), fixed)
    assert pixels.shape == (128, 77, 3) and box == Box(0, 0, 77, 128)
    assert face_height(fixed, 100) == 128
    unscaled = LayoutConfig(kind="horizontal", face_scale=2.0)
    pixels, _ = prepare_face(solid(100, 60, 5), unscaled)
    assert pixels.shape == (200, 120, 3)


def test_pad_adds_fill_at_top_and_left_and_moves_the_boxes():
    plain = LayoutConfig(kind="horizontal", gap=4)
    padded = LayoutConfig(kind="horizontal", gap=4, pad=16, fill=(9, 8, 7))
    faces = [solid(50, 30, 100), solid(40, 20, 200)]
    c0, a0, b0 = compose(prepare_face(faces[0], plain), prepare_face(faces[1], plain), plain)
    c1, a1, b1 = compose(prepare_face(faces[0], padded), prepare_face(faces[1], padded), padded)
    assert c1.shape == (c0.shape[0] + 16, c0.shape[1] + 16, 3)
    assert (a1, b1) == (
        Box(a0.x + 16, a0.y + 16, a0.w, a0.h),
        Box(b0.x + 16, b0.y + 16, b0.w, b0.h),
    )
    assert (c1[:16] == (9, 8, 7)).all() and (c1[:, :16] == (9, 8, 7)).all()
    assert (c1[16 : 16 + 50, 16 : 16 + 30] == 100).all()
    canvas, boxes = pad_canvas(c0, (a0, b0), 0, (0, 0, 0))
    assert canvas is c0 and boxes == (a0, b0)


def test_gap_height_sets_the_vertical_gap():
    layout = LayoutConfig(gap_height=0)
    canvas, b1, b2 = compose(
        prepare_face(solid(10, 10, 1), layout), prepare_face(solid(10, 10, 2), layout), layout
    )
    assert canvas.shape == (2 * 887, 583, 3) and b2 == Box(0, 887, 583, 887)


def test_defaults_are_pixel_identical_and_face_key_groups_layouts():
    face = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    base = LayoutConfig()
    same = LayoutConfig(face_scale=1.0, pad=0)
    assert (prepare_face(face, base)[0] == prepare_face(face, same)[0]).all()
    assert face_key(base) == face_key(LayoutConfig(pad=8, gap_height=10))
    assert face_key(base) != face_key(LayoutConfig(face_scale=0.75))
    unscaled = LayoutConfig(kind="horizontal")
    assert prepare_face(face, unscaled)[0] is face
