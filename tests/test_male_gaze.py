"""The "male gaze" check: the single design and layout, face boxes from the manifest, the face /
body / background outcome, face_rates, and a run end to end on synthetic full-body images, whose
rows go to their own table (``single_survival``) in their own words."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from cropaudit import config as config_mod
from cropaudit.config import DesignConfig, LayoutConfig
from cropaudit.errors import ConfigError, ManifestError
from cropaudit.model.base import SaliencyGrid
from cropaudit.schemas.records import Box, Face, SingleImage
from cropaudit.stats.gaze import FACE_RATE_COLUMNS, face_rates
from cropaudit.transforms.crop import grid_cropping
from cropaudit.transforms.design import (
    check_design,
    design_cells,
    expected_composites,
    index_groups,
    pair_key,
    sample_composites,
)
from cropaudit.transforms.images import decode_image
from cropaudit.transforms.layout import compose_single, face_box_inside, scale_box
from cropaudit.transforms.manifests import check_columns, parse_manifest
from cropaudit.transforms.single_design import crop_keeps, point_on, score_single
from tests.conftest import REPO

SINGLE = {"design": {"kind": "single"}, "layout": {"kind": "single"}}


# -- config --------------------------------------------------------------------------------------


def test_single_design_and_layout_validate_together():
    cfg = config_mod.ExperimentConfig().replace(**SINGLE)
    assert cfg.layout.params() == {"height": 0, "fill": [255, 255, 255]}
    with pytest.raises(ConfigError, match="layout.kind"):
        cfg.replace(layout={"kind": "horizontal"})
    with pytest.raises(ConfigError, match="layout.kind"):
        config_mod.ExperimentConfig().replace(layout={"kind": "single"})
    with pytest.raises(ConfigError, match="design.pairs"):
        cfg.replace(design={"pairs": [["a", "b"]]})
    with pytest.raises(ConfigError, match="design.controls"):
        cfg.replace(design={"controls": ["same_image"]})
    with pytest.raises(ConfigError, match="design.images_per_group"):
        config_mod.ExperimentConfig().replace(design={"images_per_group": 5})
    with pytest.raises(ConfigError, match="design.kind"):
        cfg.replace(design={"kind": "triples"})
    with pytest.raises(ConfigError, match="sweep.gap"):
        cfg.replace(sweep={"gap": [10]})
    with pytest.raises(ConfigError, match="design.face_box: unknown key"):
        config_mod.loads('[design]\nkind = "single"\nface_box = 1\n')
    assert len(cfg.replace(sweep={"pad": [8], "face_scale": [0.5]}).variants()) == 3


def test_male_gaze_config_is_single():
    cfg = config_mod.load(str(REPO / "experiments" / "male_gaze.toml"))
    assert (cfg.design.kind, cfg.layout.kind, cfg.layout.height) == ("single", "single", 0)
    assert cfg.groups.attributes == ("gender",)


# -- layout and box transform --------------------------------------------------------------------


def test_scale_box_and_inside_check():
    assert scale_box((10, 20, 30, 40), (100, 200), (100, 200)) == Box(10, 20, 30, 40)
    assert scale_box((10, 20, 30, 40), (100, 200), (50, 100)) == Box(5, 10, 15, 20)
    assert scale_box((10.4, 0, 0.2, 0.2), (100, 200), (50, 100)) == Box(5, 0, 1, 1)  # >= 1 px
    assert scale_box((99, 199, 1, 1), (100, 200), (10, 20)) == Box(9, 19, 1, 1)  # stays inside
    assert face_box_inside((0, 0, 100, 200), 100, 200)
    assert not face_box_inside((1, 0, 100, 200), 100, 200)
    assert not face_box_inside((0, 0, 0, 5), 100, 200)


def test_single_layout_native_scaled_and_padded():
    image = np.zeros((300, 100, 3), np.uint8)
    image[30:60, 40:70] = 200
    canvas, face, whole = compose_single(image, (40, 30, 30, 30), LayoutConfig(kind="single"))
    assert canvas.shape == (300, 100, 3) and whole == Box(0, 0, 100, 300)
    assert face == Box(40, 30, 30, 30) and (canvas[30:60, 40:70] == 200).all()
    layout = LayoutConfig(kind="single", height=150, pad=7, fill=(1, 2, 3))
    canvas, face, whole = compose_single(image, (40, 30, 30, 30), layout)
    assert canvas.shape == (157, 57, 3) and whole == Box(7, 7, 50, 150)
    assert face == Box(7 + 20, 7 + 15, 15, 15)
    assert tuple(canvas[0, 0]) == (1, 2, 3) and canvas[7 + 22, 7 + 22].mean() > 150
    half = LayoutConfig(kind="single", face_scale=0.5)
    _, face, whole = compose_single(image, (40, 30, 30, 30), half)
    assert (face, whole) == (Box(20, 15, 15, 15), Box(0, 0, 50, 150))
    with pytest.raises(ValueError, match="not inside"):
        compose_single(image, (90, 30, 30, 30), LayoutConfig(kind="single"))


def test_face_box_is_in_the_displayed_orientation():
    """A JPEG stored landscape with EXIF orientation 6 (rotate 90° clockwise) decodes portrait:
    the manifest's box is in that displayed frame."""
    stored = np.full((60, 120, 3), 255, np.uint8)
    stored[10:30, 5:25] = 0  # dark square near the stored top-left corner
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    shown = decode_image(buf.getvalue())
    assert shown.shape[:2] == (120, 60)  # portrait once rotated
    # rotating 90° clockwise moves stored (x, y) to (H - 1 - y, x): the square is at the top right
    box = (60 - 30, 5, 20, 20)
    canvas, face, _ = compose_single(shown, box, LayoutConfig(kind="single"))
    assert canvas[face.y : face.y + face.h, face.x : face.x + face.w].mean() < 40
    assert not face_box_inside((5, 10, 20, 20 + 100), 60, 120)  # the stored-frame box is wrong


# -- manifest ------------------------------------------------------------------------------------


def test_manifest_face_boxes_missing_and_bad():
    rows = [
        {"image_uri": "/i/a.jpg", "g": "f", "face_x": "1", "face_y": "2", "face_w": "3.5",
         "face_h": "4"},
        {"image_uri": "/i/b.jpg", "g": "f", "face_x": "", "face_y": "2", "face_w": "3",
         "face_h": "4"},
        {"image_uri": "/i/c.jpg", "g": "m", "face_x": "1", "face_y": "2", "face_w": "0",
         "face_h": "4"},
        {"image_uri": "/i/d.jpg", "g": "m", "face_x": "x", "face_y": "2", "face_w": "3",
         "face_h": "4"},
        {"image_uri": "/i/e.jpg", "g": "m"},
    ]  # fmt: skip
    faces, dead = parse_manifest(rows, ["g"], face_boxes=True)
    assert [f.image_id for f in faces] == ["a"] and faces[0].face_box == (1.0, 2.0, 3.5, 4.0)
    assert [(d.element_id, d.reason) for d in dead] == [
        ("b", "missing_face_box"),
        ("c", "bad_face_box"),
        ("d", "bad_face_box"),
        ("e", "missing_face_box"),
    ]
    faces, dead = parse_manifest(rows, ["g"])  # other designs ignore the columns
    assert len(faces) == 5 and not dead and faces[0].face_box is None
    check_columns(["image_uri", "g"], ["g"])
    with pytest.raises(ManifestError, match="face_x, face_y, face_w, face_h"):
        check_columns(["image_uri", "g"], ["g"], face_boxes=True)


# -- design --------------------------------------------------------------------------------------


def _faces(sizes=(("f", 5), ("m", 3))):
    return [
        Face(f"{g}{i}", f"/x/{g}{i}.png", f"{g}{i // 2}", (("g", g),), (0, 0, 1, 1))
        for g, n in sizes
        for i in range(n)
    ]


def test_single_design_every_image_once_or_a_seeded_sample():
    index = index_groups(_faces(), ["g"])
    cells = design_cells(index, DesignConfig(kind="single"))
    assert [(c.design, c.group_a, c.group_b, c.samples) for c in cells] == [
        ("single", "f", "f", 5),
        ("single", "m", "m", 3),
    ]
    assert expected_composites(cells, "counterbalanced") == 8  # one composite per image
    got = [c for cell in cells for i in range(cell.samples) for c in sample_composites(
        cell, i, index, 7, "counterbalanced")]  # fmt: skip
    assert sorted(c.face.image_id for c in got) == sorted(f.image_id for f in _faces())
    assert all(type(c) is SingleImage and c.design == "single" for c in got)
    assert [c.group for c in got] == ["f"] * 5 + ["m"] * 3
    assert got[0].composite_id == f"single:{pair_key('f', 'f')}:000000:a_first"
    assert got[0].record() == {
        "composite_id": got[0].composite_id,
        "image_id": got[0].face.image_id,
        "design": "single",
    }
    sampled = design_cells(index, DesignConfig(kind="single", images_per_group=2))
    picks = [sample_composites(sampled[0], i, index, 7, "fixed")[0].face for i in range(2)]
    again = [sample_composites(sampled[0], i, index, 7, "fixed")[0].face for i in range(2)]
    assert picks == again and len(set(picks)) == 2  # deterministic, without replacement
    other = [sample_composites(sampled[0], i, index, 8, "fixed")[0].face for i in range(5)]
    assert len(set(other)) == 5
    check_design(index, sampled)
    too_many = design_cells(index, DesignConfig(kind="single", images_per_group=4))
    with pytest.raises(ManifestError, match="'m' has 3 image"):
        check_design(index, too_many)
    with pytest.raises(TypeError):
        design_cells(["f", "m"], DesignConfig(kind="single"))


# -- crop outcome --------------------------------------------------------------------------------
# Expectations are written out here, not computed by transforms.crop or Box (the code under test).


def _overlap(a: Box, b: Box) -> int:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(w, 0) * max(h, 0)


def _inside(x: int, y: int, b: Box) -> bool:
    return b.x <= x < b.x + b.w and b.y <= y < b.y + b.h


def _expected_point(x: int, y: int, face: Box, image: Box) -> str:
    """The salient point on the face box, else on the image (body), else on the padding."""
    return "face" if _inside(x, y, face) else "body" if _inside(x, y, image) else "background"


def _expected_crop(face_area: int, body_area: int, face: Box) -> str:
    """More than half of the face box kept: face; else any other image pixel: body."""
    if face_area * 2 > face.w * face.h:
        return "face"
    return "body" if body_area > 0 else "background"


def _grid(width, height, hot):
    xs = np.arange(5, width, 10, dtype=np.float64)
    ys = np.arange(5, height, 10, dtype=np.float64)
    scores = np.zeros((len(ys), len(xs)), np.float32)
    scores[int(hot[1] // 10), int(hot[0] // 10)] = 1.0
    return SaliencyGrid(xs=xs, ys=ys, scores=scores)


@pytest.mark.parametrize(
    ("hot", "point", "wide_crop"),
    [((45, 25), "face", "face"), ((45, 205), "body", "body"), ((95, 295), "background", "body")],
)
def test_single_outcome_face_body_background(hot, point, wide_crop):
    face, image = Box(30, 10, 30, 30), Box(0, 0, 90, 290)  # padding right and below the image
    out = score_single(grid_cropping(_grid(100, 300, hot), 100, 300, (0.56, 3.0)), face, image)
    assert out.point_on == point
    assert point == _expected_point(out.salient_x, out.salient_y, face, image)
    assert point_on(out.salient_x, out.salient_y, face, image) == point
    wide = out.crops[0]  # 100 x 56, around the salient y
    assert wide.face_area == _overlap(wide.box, face)
    assert wide.body_area == _overlap(wide.box, image) - wide.face_area
    assert wide.kept == wide_crop
    assert out.crops[1].kept == "face"  # aspect 3: the whole canvas
    assert out.face_max == (1.0 if point == "face" else 0.0)
    assert not math.isnan(out.face_mean)
    assert crop_keeps(450, 1, face) == "body"  # exactly half is not the larger part
    assert crop_keeps(451, 0, face) == "face"
    assert crop_keeps(0, 0, face) == "background"


# -- face_rates ----------------------------------------------------------------------------------


def test_face_rates_on_a_hand_made_table():
    rows = [("F/W", "f", "face"), ("F/W", "f", "face"), ("F/B", "f", "body"),
            ("M/W", "m", "face"), ("M/B", "m", "background")]  # fmt: skip
    # the last row is a box-only cropper's (no salient point): left out of the point rates
    table = pa.table(
        {
            "group": [r[0] for r in rows] + ["F/W"],
            "attributes": [[("gender", r[1]), ("race", r[0][-1])] for r in rows] + [[]],
            "point_on": [r[2] for r in rows] + [None],
            "crops": [[{"aspect_ratio": 1.0, "kept": "body"}]] * 6,
        },
        schema=pa.schema(
            [
                ("group", pa.string()),
                ("attributes", pa.map_(pa.string(), pa.string())),
                ("point_on", pa.string()),
                ("crops", pa.list_(pa.struct([("aspect_ratio", pa.float64()),
                                              ("kept", pa.string())]))),
            ]
        ),
    )  # fmt: skip
    rates = face_rates(table)
    assert list(rates.columns) == FACE_RATE_COLUMNS and set(rates.variant) == {"base"}
    got = {r.group: (r.n, r.on_face, r.on_body, r.background) for r in rates.itertuples()}
    assert got == {
        "F/B": (1, 0, 1, 0),
        "F/W": (2, 2, 0, 0),
        "M/B": (1, 0, 0, 1),
        "M/W": (1, 1, 0, 0),
    }
    by_gender = face_rates(table, by=["gender"]).set_index("group")
    assert by_gender.loc["f", ["n", "on_face"]].tolist() == [3, 2]
    assert by_gender.loc["f", "face_share"] == pytest.approx(2 / 3)
    assert 0 < by_gender.loc["f", "ci_low"] < 2 / 3 < by_gender.loc["f", "ci_high"] < 1
    crops = face_rates(table, criterion="crop_1.00", by=["gender"]).set_index("group")
    assert crops.loc["m", ["n", "on_face", "on_body"]].tolist() == [2, 0, 2]
    assert face_rates(table.slice(5)).empty  # no salient point: no point rates
    assert face_rates(table.slice(5), criterion="crop_1.00").n.tolist() == [1]
    assert face_rates(table.to_pandas()).equals(rates)
    bad = table.set_column(2, "point_on", pa.array(["a"] * 6))  # a pair table's winner
    with pytest.raises(ValueError, match="not"):
        face_rates(bad)


# -- end to end ----------------------------------------------------------------------------------


def _person(path, face_loud: bool, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A 160x480 full-body figure on a plain wall: a face disc at the top and a body below,
    either the face or the body high-contrast. Returns the face box."""
    w, h = 160, 480
    img = Image.new("RGB", (w, h), (180, 180, 180))
    d = ImageDraw.Draw(img)
    body = np.full((330, 100, 3), 150, np.uint8)
    if not face_loud:  # a loud striped shirt
        body[:120] = np.where((np.arange(120)[:, None] // 6) % 2, 20, 250)[..., None]
    body = np.clip(body + rng.integers(-5, 6, body.shape), 0, 255).astype(np.uint8)
    img.paste(Image.fromarray(body), (30, 130))
    face = (50, 40, 60, 70)
    skin, eyes = ((230, 190, 160), (0, 0, 0)) if face_loud else ((170, 170, 170), (160, 160, 160))
    d.ellipse([face[0], face[1], face[0] + face[2], face[1] + face[3]], skin)
    for ex in (64, 88):
        d.ellipse([ex, 62, ex + 8, 70], eyes)
    img.save(path, "PNG")
    return face


@pytest.mark.slow
def test_single_design_runs_end_to_end(tmp_path):
    from cropaudit.pipelines.audit_pipeline import run_audit
    from cropaudit.rundir import read_table
    from cropaudit.schemas.single_survival import SINGLE_SURVIVAL_SCHEMA

    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    rows = []
    for gender in ("female", "male"):
        for i in range(3):
            name = f"{gender}-{i}"
            box = _person(tmp_path / "img" / f"{name}.png", face_loud=i != 1, rng=rng)
            rows.append(dict(zip(("face_x", "face_y", "face_w", "face_h"), map(str, box))))
            rows[-1].update(image_uri=f"img/{name}.png", subject_id=name, gender=gender)
    rows[-1].update(face_x="", face_h="")  # male-2: no face box
    rows[2].update(face_x="150")  # female-2: box runs off the 160-wide image
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    cfg = config_mod.load(str(REPO / "experiments" / "male_gaze.toml")).replace(
        manifest={"path": str(manifest)},
        model={"spec": "baseline"},
        layout={"pad": 10},
    )
    summary = run_audit(cfg, str(tmp_path / "run"), quiet=True)
    assert summary["composites_expected"] == 5  # 3 female + 2 male images with a box
    assert summary["survival_rows"] == 4 and summary["all_composites_accounted"]
    assert summary["survival_table_name"] == "single_survival"
    assert not (tmp_path / "run" / "survival").exists()  # no pair table
    assert summary["dead_letters_by_stage_reason"] == {
        "manifest/missing_face_box": 1,
        "render/bad_face_box": 1,
    }
    dead = read_table(str(tmp_path / "run" / "dead_letter")).to_pandas()
    reasons = dict(zip(dead.reason, dead.element_id))
    assert reasons["missing_face_box"] == "male-2"
    assert reasons["bad_face_box"].startswith(f"single:{pair_key('female', 'female')}:")
    assert '"image_id": "female-2"' in dead.set_index("reason").loc["bad_face_box", "record"]

    table = read_table(str(tmp_path / "run" / "single_survival"))
    assert table.schema.remove_metadata() == SINGLE_SURVIVAL_SCHEMA.remove_metadata()
    assert table.schema.metadata[b"cropaudit.schema"] == b"single_survival/v1"
    df = table.to_pandas()
    assert not {"design", "pair_id", "position", "group_a", "a_box", "point_winner"} & set(df)
    assert set(df.group) == {"female", "male"} and not df.face_max.isna().any()
    assert dict(zip(df.image_id, df.subject_id)) == {
        n: n for n in ("female-0", "female-1", "male-0", "male-1")
    }
    for r in df.itertuples():
        face, image = Box(**r.face_box), Box(**r.image_box)
        assert image == Box(10, 10, 160, 480) and (r.width, r.height) == (170, 490)
        assert face == Box(60, 50, 60, 70)  # manifest box moved by the padding
        assert r.point_on == _expected_point(r.salient_x, r.salient_y, face, image)
        for c in r.crops:
            crop = Box(c["x"], c["y"], c["w"], c["h"])
            assert c["face_area"] == _overlap(crop, face)
            assert c["body_area"] == _overlap(crop, image) - c["face_area"]
            assert c["kept"] == _expected_crop(c["face_area"], c["body_area"], face)
    winners = dict(zip(df.image_id, df.point_on))
    assert winners["female-1"] == winners["male-1"] == "body"  # striped shirt, faint face
    assert winners["female-0"] == winners["male-0"] == "face"

    rates = face_rates(table)
    assert rates.n.sum() == len(df) == 4
    assert (rates.on_face + rates.on_body + rates.background == rates.n).all()
    assert rates.set_index("group").loc["female", ["n", "on_face"]].tolist() == [2, 1]
    for criterion in ("crop_0.56", "crop_1.00"):
        assert face_rates(table, criterion=criterion).n.sum() == 4

    from cropaudit.pipelines.stats_pipeline import run_stats
    from cropaudit.rundir import StatsDir

    run_stats([str(tmp_path / "run")], str(tmp_path / "stats"), replicates=5, render=False)
    assert StatsDir(str(tmp_path / "stats")).estimates().num_rows == 0  # no pairs to compare
    stored = pq.read_table(tmp_path / "stats" / "face_rates.parquet").to_pandas()
    criteria = ["crop_0.56", "crop_1.00", "crop_1.14", "crop_2.00", "point"]
    assert sorted(set(stored.criterion)) == criteria
    point = stored[stored.criterion == "point"].drop(columns="criterion").reset_index(drop=True)
    assert point.equals(rates)
    diffs = pq.read_table(tmp_path / "stats" / "face_rate_differences.parquet").to_pandas()
    assert sorted(set(diffs.criterion)) == criteria
    assert list(diffs[diffs.criterion == "point"][["group_a", "group_b"]].iloc[0]) == [
        "female",
        "male",
    ]

    # a pair run on the same people beside it: one stats run reads both kinds of table
    pairs = config_mod.ExperimentConfig().replace(
        name="pairs-beside",
        manifest={"path": str(manifest)},
        groups={"attributes": ["gender"]},
        model={"spec": "baseline"},
        design={"composites_per_pair": 2},
        layout={"kind": "horizontal", "height": 96},
    )
    pair_summary = run_audit(pairs, str(tmp_path / "pairs"), quiet=True)
    assert pair_summary["survival_rows"] == 4 and "survival_table_name" not in pair_summary
    assert not (tmp_path / "pairs" / "single_survival").exists()
    both = str(tmp_path / "both")
    run_stats([str(tmp_path / "pairs"), str(tmp_path / "run")], both, replicates=5, render=False)
    estimates = StatsDir(both).estimates().to_pandas()
    assert set(estimates.design) == {"pairs"} and len(estimates) == 5  # point + 4 crops
    assert {h for hs in estimates.config_hashes for h in hs} == {pairs.config_hash}
    together = pq.read_table(tmp_path / "both" / "face_rates.parquet").to_pandas()
    assert together.equals(stored)

    from cropaudit.report import build_report

    page = build_report(str(tmp_path / "run"), str(tmp_path / "report.html"), gallery=2, quiet=True)
    html = Path(page).read_text(encoding="utf-8")
    # one plot of the rates of every criterion and group, one of the differences between groups
    assert "data-criterion='gaze-rates'" in html and "data-criterion='gaze-differences'" in html
    assert html.count("<li data-verdict=") == 1  # the finding of the point: female vs male
    assert html.count("class='gallery-image'") == 2, "gallery drew nothing"
    assert "keeps the face box rather than the body" in html
    assert html.count("re-scored: matches the recorded row") == 2


def _v3_table() -> pa.Table:
    """A survival/v3-v4 pair table holding one single-image row (a_* for the image,
    point_winner and crop winners) and one pair row."""
    from cropaudit.schemas.survival import SURVIVAL_SCHEMA

    box = {"x": 1, "y": 2, "w": 3, "h": 4}
    row = {f.name: None for f in SURVIVAL_SCHEMA}
    row.update(
        composite_id="single:k:000000:a_first", sample_id="single:k:000000:a_first",
        design="single", pair_id="f", group_a="f", group_b="f", sample_index=0,
        position="a_first", variant="base", a_image_id="img", a_subject_id="subj",
        a_group="f", a_attributes=[("gender", "f")], a_box=box, a_max=0.5, a_mean=0.25,
        layout="single", layout_params="{}", width=10, height=20,
        image_box={"x": 0, "y": 0, "w": 10, "h": 20}, model_name="m", model_hash="h",
        model_source="s", preprocessing="{}", salient_x=2, salient_y=3, salient_score=0.9,
        point_winner="face",
        crops=[{"aspect_ratio": 1.0, "x": 0, "y": 0, "w": 10, "h": 10, "a_area": 12,
                "b_area": 88, "winner": "face"}],
        seed=1, config_hash="c", versions="v",
    )  # fmt: skip
    pair = {**row, "design": "pairs", "composite_id": "pairs:k:0:a_first", "point_winner": "a"}
    old = pa.Table.from_pylist([row, pair], schema=SURVIVAL_SCHEMA)
    return old


def test_survival_v3_single_rows_read_in_the_new_words():
    """A run written before single_survival existed (its single rows in the pair table, with
    a_* for the image, point_winner and crop winners) reads as the new table."""
    from cropaudit.schemas.single_survival import SINGLE_SURVIVAL_SCHEMA, from_survival_v3

    old = _v3_table()

    new = from_survival_v3(old)
    assert new.schema == SINGLE_SURVIVAL_SCHEMA and new.num_rows == 1
    got = new.to_pylist()[0]
    assert (got["group"], got["image_id"], got["subject_id"]) == ("f", "img", "subj")
    assert (
        got["face_box"] == {"x": 1, "y": 2, "w": 3, "h": 4}
        and got["point_on"] == "face"
        and got["face_max"] == 0.5
    )
    assert got["crops"] == [{"aspect_ratio": 1.0, "x": 0, "y": 0, "w": 10, "h": 10,
                             "face_area": 12, "body_area": 88, "kept": "face"}]  # fmt: skip
    assert face_rates(new).n.tolist() == [1] and face_rates(new).on_face.tolist() == [1]
    assert from_survival_v3(old.drop_columns(["design"])).num_rows == 0


def test_stats_stage_finds_the_single_rows_of_old_pair_tables(tmp_path):
    """The statistics stage reads old pair-table files for single rows (design column first):
    one file with a single row gives it, a pairs-only file and one without a design column
    give nothing."""
    import pyarrow.parquet as pq

    from cropaudit.pipelines.stats_pipeline import _single_rows_of_old_tables

    old = _v3_table()
    files = {
        "mixed": old,
        "pairs": old.filter(pa.compute.equal(old["design"], "pairs")),
        "no_design": old.drop_columns(["design"]),
    }
    for name, table in files.items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
    found = _single_rows_of_old_tables([str(tmp_path / f"{n}.parquet") for n in files])
    assert [t.num_rows for t in found] == [1]
    assert found[0].to_pylist()[0]["image_id"] == "img"
