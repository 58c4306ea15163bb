"""The single-image demo (``cropaudit demo --design single``): deterministic synthetic full-body
figures, and the single design end to end (run, stats, report) with its findings; the findings
lines of single-image runs (cropaudit.stats.gaze_findings)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cropaudit.stats.findings import VERDICTS
from cropaudit.stats.gaze import face_rate_differences, face_rates
from cropaudit.stats.gaze_findings import FACE_RATE, FACE_RATE_DIFFERENCE, gaze_findings
from cropaudit.synthetic_figures import SIZE, write_figure_set
from tests.test_clustered_rate import single_frame


def test_figures_are_deterministic_with_their_face_boxes(tmp_path):
    one = write_figure_set(tmp_path / "one", seed=5, subjects_per_group=3)
    two = write_figure_set(tmp_path / "two", seed=5, subjects_per_group=3)
    other = write_figure_set(tmp_path / "other", seed=6, subjects_per_group=3)
    rows = list(csv.DictReader(one.open()))
    assert len(rows) == 12 and {r["gender"] for r in rows} == {"female", "male"}
    assert len({r["subject_id"] for r in rows}) == 6  # two images per person
    for r in rows:
        a = (one.parent / r["image_uri"]).read_bytes()
        assert a == (two.parent / r["image_uri"]).read_bytes()
        assert a != (other.parent / r["image_uri"]).read_bytes()
        img = np.asarray(Image.open(one.parent / r["image_uri"]).convert("RGB"), float)
        assert img.shape[:2] == (SIZE[1], SIZE[0])
        x, y, w, h = (int(r[k]) for k in ("face_x", "face_y", "face_w", "face_h"))
        assert x >= 0 and y >= 0 and x + w <= SIZE[0] and y + h <= SIZE[1] and w > 5
        # the box holds the face: skin of the row's tone at its centre, eyes darker above it
        centre = img[y + h // 2, x + w // 2]
        assert np.abs(centre - img[y + h // 2, x + w // 2 - 1]).max() < 60
        assert img[y : y + h, x : x + w].std() > 10  # features, not a flat patch
    # two photos of one person differ (pose, size or background)
    first, second = rows[0]["image_uri"], rows[1]["image_uri"]
    assert (one.parent / first).read_bytes() != (one.parent / second).read_bytes()


def _table(shares: dict[str, float], people: int = 30, images: int = 3) -> pd.DataFrame:
    rows = []
    for group, share in shares.items():
        for s in range(people):
            for i in range(images):
                on = "face" if (s * images + i) < share * people * images else "body"
                rows.append((group, f"{group}{s}", on))
    return single_frame(rows)


def _lines(table: pd.DataFrame, **kwargs):
    rates = face_rates(table).assign(criterion="point")
    diffs = face_rate_differences(table).assign(criterion="point")
    return gaze_findings(rates, diffs, **kwargs)


def test_findings_lines_state_the_difference_with_its_interval_and_verdict():
    far = _lines(_table({"female": 0.2, "male": 0.8}))
    assert len(far) == 1 and far[0].kind == FACE_RATE_DIFFERENCE
    f = far[0]
    assert (f.group_a, f.group_b, f.verdict) == ("female", "male", "disparity")
    assert f.estimate == pytest.approx(-0.6) and f.high < 0 and f.p_adjusted < 0.05
    assert "female's images: the salient point lands on the face in 20% [" in f.text
    assert "vs male's 80% [" in f.text and "difference −60 points [" in f.text
    assert "kept more often in male's images" in f.text
    close = _lines(_table({"female": 0.5, "male": 0.5}, people=1500, images=1))[0]
    assert close.verdict == "parity" and close.low >= -0.05 and close.high <= 0.05
    assert (
        _lines(_table({"a": 0.5, "b": 0.5}, people=400, images=1), parity_width=0.01)[0].verdict
        == "inconclusive"
    )
    small = _lines(_table({"female": 0.4, "male": 0.5}, people=6))[0]
    assert small.verdict == "inconclusive" and "more people" in small.needed
    assert all(f.verdict in VERDICTS for f in far + [close, small])
    three = _lines(_table({"a": 0.2, "b": 0.5, "c": 0.8}))
    assert [f.comparison for f in three] == ["pair"] * 3 + ["group_vs_rest"] * 3
    assert "vs the rest" in three[3].text
    alone = _lines(_table({"female": 0.3}))
    assert [f.kind for f in alone] == [FACE_RATE] and "nothing to compare" in alone[0].text
    assert math.isnan(alone[0].p_adjusted)


def test_demo_design_flag():
    from cropaudit.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["demo"]).design == "pairs"
    assert parser.parse_args(["demo", "--design", "single"]).design == "single"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--design", "triples"])


@pytest.mark.slow
def test_single_demo_end_to_end(tmp_path, capsys):
    from cropaudit.pipelines.demo_pipeline import run_demo

    out = tmp_path / "demo"
    summary = run_demo(str(out), design="single", show_progress=False)
    assert summary["survival_table_name"] == "single_survival"
    assert summary["composites_expected"] == 80 and summary["all_composites_accounted"]
    printed = capsys.readouterr().out
    stats = out / "stats"
    rates = pq.read_table(stats / "face_rates.parquet").to_pandas()
    diffs = pq.read_table(stats / "face_rate_differences.parquet").to_pandas()
    assert set(rates.group) == {"female", "male"} and (rates.subjects == 20).all()
    assert (rates.ci_high > rates.ci_low).all()
    assert set(diffs.criterion) == set(rates.criterion) and (diffs.comparison == "pair").all()
    found = json.loads((stats / "findings.json").read_text())["findings"]
    (line,) = [f for f in found if f["kind"] == FACE_RATE_DIFFERENCE]
    point = diffs[diffs.criterion == "point"].iloc[0]
    assert (line["low"], line["high"]) == (point.difference_low, point.difference_high)
    assert "difference" in line["text"] and line["text"] in printed
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "synthetic figures drawn by cropaudit" in page and "id='single-findings'" in page
    assert line["text"].replace("'", "&#x27;") in page
    assert page.count("class='gallery-image'") > 0
    # a rerun in place writes the same tables
    run_demo(str(out), design="single", show_progress=False)
    again = pq.read_table(stats / "face_rate_differences.parquet").to_pandas()
    assert again.equals(diffs)
    assert Path(out / "figures" / "manifest.csv").exists()


def test_gallery_of_single_images_takes_turns_by_group():
    from cropaudit.report.gallery import pick_rows

    rows = pd.DataFrame(
        {"composite_id": [f"single:{g}:{i}" for g in ("f", "m") for i in range(5)],
         "group": ["female"] * 5 + ["male"] * 5}
    )  # fmt: skip
    picked = pick_rows(rows, 4)
    assert list(picked.group) == ["female", "male", "female", "male"]
    assert list(picked.composite_id) == ["single:f:0", "single:m:0", "single:f:1", "single:m:1"]
