"""Sampling is a pure function of (seed, design, pair, index)."""

from __future__ import annotations

import random

import pytest

from cropaudit.config import DesignConfig
from cropaudit.errors import ManifestError
from cropaudit.schemas.records import Face
from cropaudit.transforms.design import (
    check_design,
    design_cells,
    expected_composites,
    index_groups,
    sample_composites,
)


def faces(groups=("A", "B", "C"), subjects=4, photos=2):
    return [
        Face(f"{g}{s}-{p}", f"/img/{g}{s}-{p}.jpg", f"{g}{s}", (("race", g),))
        for g in groups
        for s in range(subjects)
        for p in range(photos)
    ]


def test_all_unordered_pairs_by_default_and_controls():
    design = DesignConfig(composites_per_pair=3, controls=("same_image",), controls_per_group=2)
    cells = design_cells(["C", "A", "B"], design)
    pairs = [(c.group_a, c.group_b) for c in cells if c.design == "pairs"]
    assert pairs == [("A", "B"), ("A", "C"), ("B", "C")]
    assert [c.group_a for c in cells if c.design == "same_image"] == ["A", "B", "C"]
    assert expected_composites(cells, "counterbalanced") == 2 * (9 + 6)
    assert expected_composites(cells, "random") == 15


def test_sampling_ignores_input_order_and_is_reproducible():
    fs = faces()
    shuffled = fs[:]
    random.Random(1).shuffle(shuffled)
    idx1, idx2 = index_groups(fs, ["race"]), index_groups(shuffled, ["race"])
    cells = design_cells(list(idx1), DesignConfig(composites_per_pair=5))
    one = [c for cell in cells for i in range(5) for c in sample_composites(cell, i, idx1, 9, "c")]
    two = [c for cell in cells for i in range(5) for c in sample_composites(cell, i, idx2, 9, "c")]
    assert one == two
    other_seed = [
        c for cell in cells for i in range(5) for c in sample_composites(cell, i, idx1, 10, "c")
    ]
    assert other_seed != one


def test_counterbalanced_gives_both_orders_of_the_same_faces():
    idx = index_groups(faces(), ["race"])
    cell = design_cells(list(idx), DesignConfig())[0]
    first, second = sample_composites(cell, 0, idx, 1, "counterbalanced")
    assert (first.position, second.position) == ("a_first", "b_first")
    assert (first.face_a, first.face_b) == (second.face_a, second.face_b)
    assert first.faces_in_order() == (second.faces_in_order()[1], second.faces_in_order()[0])
    assert first.face_a.attribute("race") == "A" and first.face_b.attribute("race") == "B"


def test_random_order_is_seeded_and_uses_both_positions():
    idx = index_groups(faces(), ["race"])
    cell = design_cells(list(idx), DesignConfig())[0]
    positions = [sample_composites(cell, i, idx, 3, "random")[0].position for i in range(200)]
    assert positions == [
        sample_composites(cell, i, idx, 3, "random")[0].position for i in range(200)
    ]
    assert 60 < positions.count("a_first") < 140


def test_controls_draw_distinct_subjects_or_the_same_image():
    idx = index_groups(faces(), ["race"])
    design = DesignConfig(controls=("same_group", "same_image"))
    for cell in design_cells(list(idx), design):
        for i in range(20):
            c = sample_composites(cell, i, idx, 0, "counterbalanced")[0]
            if cell.design == "same_group":
                assert c.face_a.subject_id != c.face_b.subject_id
                assert c.group_a == c.group_b
            if cell.design == "same_image":
                assert c.face_a == c.face_b


def test_subjects_are_drawn_uniformly_not_photos():
    fs = faces(groups=("A", "B"), subjects=2, photos=1)
    fs += [Face(f"A0-x{p}", "/x", "A0", (("race", "A"),)) for p in range(30)]  # A0 has 31 photos
    idx = index_groups(fs, ["race"])
    cell = design_cells(list(idx), DesignConfig())[0]
    a0 = sum(
        sample_composites(cell, i, idx, 0, "random")[0].face_a.subject_id == "A0"
        for i in range(1000)
    )
    assert 400 < a0 < 600


def test_intersectional_groups_and_design_checks():
    fs = [
        Face(f"{r}{g}{s}", "/x", f"{r}{g}{s}", (("gender", g), ("race", r)))
        for r in "BW"
        for g in "FM"
        for s in range(2)
    ]
    idx = index_groups(fs, ["race", "gender"])
    assert sorted(idx) == ["B/F", "B/M", "W/F", "W/M"]
    assert len(design_cells(list(idx), DesignConfig())) == 6
    with pytest.raises(ManifestError, match="'X/Y'"):
        check_design(idx, design_cells(list(idx), DesignConfig(pairs=(("B/F", "X/Y"),))))
    lonely = index_groups(fs[:1] + fs[2:], ["race", "gender"])
    with pytest.raises(ManifestError, match="'B/F' has 1 subject"):
        check_design(lonely, design_cells(list(lonely), DesignConfig(controls=("same_group",))))


def test_sample_composites_stage_makes_every_planned_composite_once_per_variant():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from cropaudit.transforms.design import SampleComposites
    from tests.test_stages import local_pipeline

    order = "counterbalanced"
    idx = index_groups(faces(), ["race"])
    cells = design_cells(list(idx), DesignConfig(composites_per_pair=2))
    planned = [
        c for cell in cells for i in range(2) for c in sample_composites(cell, i, idx, 5, order)
    ]
    assert len(planned) == expected_composites(cells, order) == 12
    with local_pipeline() as p:
        out = p | beam.Create([idx]) | SampleComposites(cells, 5, order, ("base", "v2"))
        assert_that(
            out | beam.Map(lambda c: (c.composite_id, c.variant, c.face_a, c.face_b, c.position)),
            equal_to(
                [(c.composite_id, "base", c.face_a, c.face_b, c.position) for c in planned]
                + [(f"{c.composite_id}@v2", "v2", c.face_a, c.face_b, c.position) for c in planned]
            ),
        )
