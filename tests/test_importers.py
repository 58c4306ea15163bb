"""Dataset importers on generated fixtures, the WikiData sample, and the ``manifest`` command."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from conftest import shared_file
from PIL import Image

from cropaudit.cli import add_command
from cropaudit.commands import manifest_command
from cropaudit.errors import ManifestError, UserError
from cropaudit.importers import (
    import_cfd,
    import_fairface,
    import_utkface,
    import_wikidata,
    load_wikidata_mapping,
    write_manifest,
)
from cropaudit.transforms.manifests import load_manifest, read_manifest_table

WIKIDATA_HEADER = (
    "human\timage\tsex_or_gender\tethnic_group\toccupation\tloc_aid\turl\tlocal_path\tfile_exists"
)


def _images(folder: Path, names: list[str]) -> Path:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith((".jpg", ".png")):
            Image.new("RGB", (4, 4), (120, 90, 60)).save(path, format="PNG")
        else:
            path.write_text("not an image")
    return folder


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers(dest="command", required=True), manifest_command.COMMAND)
    args = parser.parse_args(argv)
    return args.func(args)


# -- CFD --------------------------------------------------------------------------------------


def test_cfd_codes_subjects_and_skips(tmp_path):
    folder = _images(
        tmp_path / "cfd",
        [
            "BF-012/CFD-BF-012-001-N.jpg",
            "BF-012/CFD-BF-012-002-HC.jpg",
            "WM-001/CFD-WM-001-014-N.jpg",
            "MR/CFD-MF-300-002-N.jpg",
            "INDIA/CFD-IM-650-001-N.jpg",
            "CFD-ZF-001-001-N.jpg",
            "odd/portrait.jpg",
            "CFD 3.0 Norming Data.xlsx",
        ],
    )
    result = import_cfd(str(folder))
    by_id = {r["image_id"]: r for r in result.rows}
    assert by_id["CFD-BF-012-001-N"] | {"image_uri": None} == {
        "image_uri": None,
        "image_id": "CFD-BF-012-001-N",
        "subject_id": "BF-012",
        "race": "B",
        "gender": "F",
        "expression": "N",
    }
    assert by_id["CFD-BF-012-002-HC"]["subject_id"] == "BF-012"
    assert by_id["CFD-MF-300-002-N"]["race"] == "M"
    assert by_id["CFD-IM-650-001-N"]["race"] == "I"
    assert Path(by_id["CFD-WM-001-014-N"]["image_uri"]).is_file()
    assert result.skipped_by_reason() == {
        "not_an_image": 1,
        "unknown_race_code": 1,
        "unrecognised_name": 1,
    }
    out = str(tmp_path / "cfd.parquet")
    write_manifest(result.rows, out)
    faces, dead = load_manifest(out, ["race", "gender"])
    assert len(faces) == 5 and dead == []


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        import_cfd(str(tmp_path / "nope"))


# -- FairFace ---------------------------------------------------------------------------------


def test_fairface_labels(tmp_path):
    csv = tmp_path / "fairface_label_val.csv"
    csv.write_text(
        "file,age,gender,race,service_test\n"
        "val/1.jpg,3-9,Male,East Asian,False\n"
        "train/1.jpg,50-59,Female,Latino_Hispanic,True\n"
        "val/2.jpg,20-29,Female,,True\n"
    )
    result = import_fairface(str(csv))
    assert [r["image_id"] for r in result.rows] == ["train-1", "val-1"]
    val1 = result.rows[1]
    assert val1["image_uri"] == str(tmp_path / "val" / "1.jpg")
    assert (val1["subject_id"], val1["race"], val1["gender"], val1["age"]) == (
        "val-1",
        "East Asian",
        "Male",
        "3-9",
    )
    assert result.skipped == (("row 3", "missing_field"),)
    rooted = import_fairface(str(csv), image_root="gs://bucket/fairface")
    assert rooted.rows[0]["image_uri"] == "gs://bucket/fairface/train/1.jpg"


def test_fairface_missing_columns(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("file,age\nval/1.jpg,3-9\n")
    with pytest.raises(ManifestError, match="gender, race"):
        import_fairface(str(csv))


# -- UTKFace ----------------------------------------------------------------------------------


def test_utkface_names(tmp_path):
    folder = _images(
        tmp_path / "utk",
        [
            "1_0_0_20161219140623097.jpg.chip.jpg",
            "26_1_1_20170116232540516.jpg",
            "39_1_20170116174525125.jpg.chip.jpg",  # missing race, as in the release
            "20_2_0_20170116174525126.jpg",  # gender code out of range
            "notes.txt",
        ],
    )
    result = import_utkface(str(folder))
    rows = {r["image_id"]: r for r in result.rows}
    assert rows["1_0_0_20161219140623097"]["race"] == "White"
    assert rows["1_0_0_20161219140623097"]["gender"] == "Male"
    assert rows["26_1_1_20170116232540516"] | {"image_uri": ""} == {
        "image_uri": "",
        "image_id": "26_1_1_20170116232540516",
        "subject_id": "26_1_1_20170116232540516",
        "race": "Black",
        "gender": "Female",
        "age": "26",
    }
    assert result.skipped_by_reason() == {
        "malformed_name": 1,
        "not_an_image": 1,
        "unknown_code": 1,
    }


# -- WikiData ---------------------------------------------------------------------------------


def test_wikidata_shared_sample():
    tsv = shared_file("data/reference/twitter_wikidata_sample.tsv")
    result = import_wikidata(str(tsv))
    assert result.rows == [] and result.skipped_by_reason() == {"file_not_downloaded": 1}
    result = import_wikidata(str(tsv), image_root="/images", include_missing_files=True)
    [row] = result.rows
    assert row["image_uri"] == "/images/Q335552.jpg"
    assert (row["image_id"], row["subject_id"]) == ("Q335552", "Q335552")
    assert (row["gender"], row["race"]) == ("male", "White")  # Q1075293 Irish Americans


def _wikidata_tsv(tmp_path: Path) -> str:
    lines = [
        WIKIDATA_HEADER,
        "Q1\ta.jpg\tQ6581072\tQ49085\tQ33999\tx\turl\tQ1.jpg\tTrue",
        "http://www.wikidata.org/entity/Q2\tb.jpg\tQ6581097\tQ7435494\t\t\turl\tQ2.png\tTrue",
        "Q3\tc.jpg\tQ6581097\tQ999999999\t\t\turl\tQ3.jpg\tTrue",  # unmapped ethnic group
        "Q4\td.jpg\tQ48270\tQ49085\t\t\turl\tQ4.jpg\tTrue",  # unmapped gender
        "Q5\te.jpg\tQ6581097\t\t\t\turl\tQ5.jpg\tTrue",  # blank ethnic group
        "Q1\ta.jpg\tQ6581072\tQ49085\t\t\turl\tQ1.jpg\tTrue",  # same labels again
        "Q6\tf.jpg\tQ6581097\tQ49085\t\t\turl\tQ6.jpg\tTrue",
        "Q6\tf.jpg\tQ6581097\tQ7435494\t\t\turl\tQ6.jpg\tTrue",  # two groups that disagree
        "Q7\tg.jpg\tQ6581072\tQ49085\t\t\turl\t\tFalse",  # no local file name
    ]
    path = tmp_path / "dataset.tsv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_wikidata_mapping_and_reports(tmp_path):
    result = import_wikidata(_wikidata_tsv(tmp_path))
    rows = {r["image_id"]: r for r in result.rows}
    assert sorted(rows) == ["Q1", "Q2"]
    assert rows["Q1"]["image_uri"] == str(tmp_path / "Q1.jpg")
    assert (rows["Q1"]["race"], rows["Q1"]["gender"], rows["Q1"]["occupation"]) == (
        "Black",
        "female",
        "Q33999",
    )
    assert (rows["Q2"]["subject_id"], rows["Q2"]["race"]) == ("Q2", "White")
    assert result.skipped_by_reason() == {
        "conflicting_labels": 2,
        "duplicate_image_id": 1,
        "missing_field": 1,
        "unmapped_ethnic_group": 2,
        "unmapped_sex_or_gender": 1,
    }


def test_wikidata_keep_unmapped_and_custom_mapping(tmp_path):
    tsv = _wikidata_tsv(tmp_path)
    kept = import_wikidata(tsv, keep_unmapped=True)
    rows = {r["image_id"]: r for r in kept.rows}
    assert rows["Q3"]["race"] == rows["Q5"]["race"] == rows["Q4"]["gender"] == "unmapped"
    mapping = tmp_path / "labels.toml"
    mapping.write_text(
        '[sex_or_gender]\nQ6581097 = "man"\nQ6581072 = "woman"\nQ48270 = "non-binary"\n'
        '[ethnic_group]\nQ999999999 = "Other"\n'
    )
    custom = import_wikidata(tsv, mapping_uri=str(mapping))
    assert [(r["image_id"], r["gender"], r["race"]) for r in custom.rows] == [
        ("Q3", "man", "Other")
    ]
    mapping.write_text("[sex_or_gender]\nQ1 = 'x'\n")
    with pytest.raises(UserError, match="ethnic_group"):
        import_wikidata(tsv, mapping_uri=str(mapping))
    mapping.write_text("not = [toml")
    with pytest.raises(UserError, match="cannot parse"):
        load_wikidata_mapping(str(mapping))


def test_default_mapping_covers_the_documented_ids():
    mapping = load_wikidata_mapping()
    assert mapping.sex_or_gender == {"Q6581097": "male", "Q6581072": "female"}
    assert mapping.ethnic_group["Q49085"] == "Black"
    assert mapping.ethnic_group["Q7435494"] == "White"
    assert all("/" not in label for label in mapping.ethnic_group.values())


# -- writing and the command ------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["parquet", "csv", "tsv", "jsonl"])
def test_write_manifest_formats(tmp_path, ext):
    rows = [{"image_uri": "a\tb,c.jpg", "image_id": "a", "race": 'B "x"', "note": "é"}]
    out = str(tmp_path / "sub" / f"m.{ext}")
    write_manifest(rows, out)
    [back] = read_manifest_table(out)
    assert back["image_uri"] == "a\tb,c.jpg" and back["race"] == 'B "x"' and back["note"] == "é"
    with pytest.raises(ManifestError):
        write_manifest(rows, str(tmp_path / "m.txt"))


def test_manifest_import_and_check_commands(tmp_path, capsys):
    folder = _images(tmp_path / "utk", ["30_0_1_2017.jpg", "31_1_0_2017.jpg", "bad.jpg"])
    out = str(tmp_path / "utk.csv")
    assert _run(["manifest", "import", "utkface", str(folder), "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 rows" in printed and "malformed_name: 1 (e.g. bad.jpg)" in printed
    with open(out, "a") as fh:
        fh.write(",dup,,,,\n")
    assert _run(["manifest", "check", out, "--attributes", "race,gender"]) == 0
    printed = capsys.readouterr().out
    assert "2 faces of 2 subjects; 1 rows dead-lettered" in printed
    assert "Black/Male: 1" in printed and "empty_field: 1" in printed
    assert _run(["manifest", "check", out, "--attributes", "race", "--strict"]) == 1
