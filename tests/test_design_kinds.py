"""Design kinds as objects: each samples, renders, scores and describes its own rows.

Winners are checked against expectations written out by hand (areas counted on paper), not
against the geometry under test; the stages run in a TestPipeline with assert_that.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.util import assert_that, equal_to

from cropaudit.config import DesignConfig
from cropaudit.schemas import single_survival, survival
from cropaudit.schemas.records import Box, Cropping, Face, RenderedSingle, SingleImage
from cropaudit.transforms.crop import SimulateCrops
from cropaudit.transforms.design import SampleComposites, design_cells, expected_composites
from cropaudit.transforms.design_kind import KINDS, DesignKind, design_kind, kind_of
from cropaudit.transforms.pair_design import PairDesign
from cropaudit.transforms.sampling import index_groups
from cropaudit.transforms.single_design import SingleDesign
from tests.test_stages import local_pipeline

PROVENANCE = {
    "layout": "x",
    "layout_params": "{}",
    "model_name": "m",
    "model_hash": "h",
    "model_source": "s",
    "preprocessing": "{}",
    "seed": 1,
    "config_hash": "c",
    "versions": "v",
}


def _faces() -> list[Face]:
    """Two groups (f: 3 subjects, m: 2), two images per subject, with face boxes."""
    return [
        Face(f"{g}{s}-{i}", f"/x/{g}{s}-{i}.png", f"{g}{s}", (("g", g),), (1, 1, 4, 4))
        for g, subjects in (("f", 3), ("m", 2))
        for s in range(subjects)
        for i in range(2)
    ]


def test_kinds_are_one_object_each_with_its_own_table():
    assert set(KINDS) == {"pairs", "single"}
    assert design_kind("pairs").table == survival.SPEC
    assert survival.SPEC.name == "survival" and survival.SPEC.schema is survival.SURVIVAL_SCHEMA
    assert design_kind("single").table == single_survival.SPEC
    assert single_survival.SPEC.name == "single_survival"
    for design in ("pairs", "same_group", "same_image"):
        assert isinstance(kind_of(design), PairDesign)
    assert isinstance(kind_of("single"), SingleDesign)
    with pytest.raises(ValueError, match="unknown design"):
        kind_of("triples")
    for kind in KINDS.values():
        assert isinstance(kind, DesignKind)  # every member of the protocol


@pytest.mark.parametrize("name", ["pairs", "single"])
def test_a_kind_row_fills_exactly_its_schema(name):
    """A row built by the kind has every column of its schema and nothing else, and writes."""
    kind = design_kind(name)
    index = index_groups(_faces(), ["g"])
    cell = kind.cells(index, DesignConfig(kind=name))[0]
    item = kind.sample(cell, 0, index, 3, "fixed")[0]
    canvas = np.zeros((40, 20, 3), np.uint8)
    boxes = (Box(0, 0, 10, 10), Box(0, 0, 20, 40) if name == "single" else Box(0, 20, 10, 10))
    rendered = kind.rendered_record.on_canvas(item, canvas, boxes, np.zeros((1,), np.uint8), 0)
    cropping = Cropping((1.0,), (Box(0, 0, 20, 20),), (5, 5, 0.5))
    row = kind.row(rendered, kind.score(cropping, rendered), PROVENANCE, "#m")
    assert set(row) == set(kind.table.schema.names)
    assert row["composite_id"] == item.composite_id + "#m"
    table = pa.Table.from_pylist([row], schema=kind.table.schema)
    assert table.num_rows == 1
    other = design_kind("single" if name == "pairs" else "pairs")
    assert set(kind.table.schema.names) != set(other.table.schema.names)


def _pair_rendered():
    face = Face("i", "/i.png", "s", (("g", "x"),))
    kind = PairDesign()
    composite = kind.sample(
        kind.cells(["x", "y"], DesignConfig())[0],
        0,
        {"x": {"s": (face,)}, "y": {"s": (face,)}},
        0,
        "fixed",
    )[0]
    # a 10 x 30 canvas: face a on top (rows 0-9), a gap (10-19), face b below (20-29)
    return kind.rendered_record.on_canvas(
        composite, np.zeros((30, 10, 3), np.uint8), (Box(0, 0, 10, 10), Box(0, 20, 10, 10)), 0, 0
    )


def test_pair_winners_in_a_pipeline():
    rendered = _pair_rendered()
    cropping = Cropping(
        (1.5, 2.0, 1.0),
        (Box(0, 15, 10, 15), Box(0, 5, 10, 20), Box(0, 10, 10, 10)),
        (5, 25, 0.9),
    )
    # by hand: crop 1 sees 0 of a, 100 of b; crop 2 50 of each; crop 3 only the gap
    expected = [
        (
            rendered.composite.composite_id,
            "b",
            ((0, 100, "b"), (50, 50, "tie"), (0, 0, "background")),
        )
    ]
    with local_pipeline() as p:
        out = (
            p
            | beam.Create([(rendered, cropping)])
            | SimulateCrops((1.5, 2.0, 1.0), PairDesign().score)
            | beam.MapTuple(
                lambda r, o: (
                    r.composite.composite_id,
                    o.point_winner,
                    tuple((c.a_area, c.b_area, c.winner) for c in o.crops),
                )
            )
        )
        assert_that(out, equal_to(expected))


def test_single_outcomes_in_a_pipeline():
    face = Face("p", "/p.png", "s", (("g", "f"),), (10, 10, 20, 20))
    item = SingleImage("single:k:000000:a_first", "f", 0, face)
    # a 50 x 90 canvas: the image is the left 40 x 80, the face box 20 x 20 at (10, 10)
    rendered = RenderedSingle(
        item, Box(10, 10, 20, 20), Box(0, 0, 40, 80), width=50, height=90, model_input=None
    )
    crops = (Box(0, 0, 40, 20), Box(0, 5, 40, 30), Box(40, 0, 10, 90))
    elements = [
        (rendered, Cropping((0.5, 0.75, 9.0), crops, point))
        for point in ((15, 15, 1.0), (20, 60, 1.0), (45, 85, 1.0))
    ]
    # by hand: crop 1 keeps 200 of the 400 face pixels (half is not more than half) and
    # 800 - 200 = 600 of the body; crop 2 the whole face and 1200 - 400 of the body; crop 3
    # only padding
    crops_kept = ((200, 600, "body"), (400, 800, "face"), (0, 0, "background"))
    expected = [("face", crops_kept), ("body", crops_kept), ("background", crops_kept)]
    with local_pipeline() as p:
        out = (
            p
            | beam.Create(elements)
            | SimulateCrops((0.5, 0.75, 9.0), SingleDesign().score)
            | beam.MapTuple(
                lambda r, o: (
                    o.point_on,
                    tuple((c.face_area, c.body_area, c.kept) for c in o.crops),
                )
            )
        )
        assert_that(out, equal_to(expected))


def test_sampling_by_kind_in_a_pipeline():
    faces = _faces()
    index = index_groups(faces, ["g"])
    single_cells = design_cells(index, DesignConfig(kind="single"))
    pair_cells = design_cells(index, DesignConfig(composites_per_pair=3))
    assert expected_composites(single_cells, "counterbalanced") == len(faces) == 10
    assert expected_composites(pair_cells, "counterbalanced") == 6
    with local_pipeline() as p:
        groups = p | "Index" >> beam.Create([index])
        singles = groups | "Singles" >> SampleComposites(single_cells, 5, "counterbalanced")
        pairs = groups | "Pairs" >> SampleComposites(pair_cells, 5, "counterbalanced")
        # every image exactly once, in its own group
        assert_that(
            singles | "Image" >> beam.Map(lambda s: (s.face.image_id, s.group)),
            equal_to([(f.image_id, f.image_id[0]) for f in faces]),
            label="EveryImageOnce",
        )
        # each sample in both positions, face a from group a (f), face b from group b (m)
        assert_that(
            pairs
            | "Pair"
            >> beam.Map(
                lambda c: (c.sample_index, c.position, c.face_a.image_id[0], c.face_b.image_id[0])
            ),
            equal_to([(i, pos, "f", "m") for i in range(3) for pos in ("a_first", "b_first")]),
            label="BothPositions",
        )
