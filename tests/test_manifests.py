"""Manifest reading and validation: formats, whole-file errors, and one dead letter per bad row."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cropaudit.errors import ManifestError
from cropaudit.importers import write_manifest
from cropaudit.schemas.manifest import MAX_FIELD_LENGTH, REASONS
from cropaudit.transforms.manifests import (
    check_columns,
    load_manifest,
    parse_manifest,
    read_manifest_table,
)

ATTRS = ("race", "gender")
ROWS = [
    {"image_uri": "img/b1.jpg", "race": "B", "gender": "F", "subject_id": "s1"},
    {"image_uri": "img/w1.jpg", "race": "W", "gender": "M", "image_id": "w-one"},
    {"image_uri": "/abs/a1.png", "race": "A", "gender": "F"},
]


def _write_csv(path: Path, text: str | bytes) -> str:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl", "ndjson", "parquet"])
def test_each_format_round_trips(tmp_path, ext):
    uri = str(tmp_path / f"m.{ext}")
    write_manifest(ROWS, uri)
    faces, dead = load_manifest(uri, ATTRS)
    assert dead == []
    by_id = {f.image_id: f for f in faces}
    assert [f.image_id for f in faces] == sorted(by_id) == ["a1", "b1", "w-one"]
    assert by_id["b1"].image_uri == str(tmp_path / "img" / "b1.jpg")  # relative to the manifest
    assert by_id["b1"].subject_id == "s1"
    assert by_id["w-one"].subject_id == "w-one"  # defaults to the image id
    assert by_id["a1"].image_uri == "/abs/a1.png"
    assert by_id["a1"].attributes == (("gender", "F"), ("race", "A"))


def test_only_requested_attributes_are_kept(tmp_path):
    uri = str(tmp_path / "m.csv")
    write_manifest(ROWS, uri)
    faces, _ = load_manifest(uri, ["race"])
    assert all(f.attributes == (("race", f.attribute("race")),) for f in faces)


def test_image_root_and_remote_manifest_folder():
    rows = [{"image_uri": "x/1.jpg", "race": "B", "gender": "F"}]
    faces, _ = parse_manifest(rows, ATTRS, manifest_uri="gs://bucket/m/man.csv")
    assert faces[0].image_uri == "gs://bucket/m/x/1.jpg"
    faces, _ = parse_manifest(
        rows, ATTRS, image_root="gs://other/root", manifest_uri="gs://b/m.csv"
    )
    assert faces[0].image_uri == "gs://other/root/x/1.jpg"
    rows = [{"image_uri": "gs://keep/1.jpg", "race": "B", "gender": "F"}]
    assert parse_manifest(rows, ATTRS, image_root="/r")[0][0].image_uri == "gs://keep/1.jpg"


def test_missing_columns_are_named(tmp_path):
    uri = _write_csv(tmp_path / "m.csv", "path,race\na.jpg,B\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(uri, ATTRS)
    assert "image_uri" in str(err.value) and "gender" in str(err.value)
    assert "race" not in str(err.value).split("(it has")[0]
    with pytest.raises(ManifestError, match="no demographic attributes"):
        check_columns(["image_uri"], [])


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("m.csv", None, "not found"),
        ("m.xlsx", b"x", "extension"),
        ("m.csv", b"", "empty"),
        ("m.csv", b"image_uri,race,race\n", "repeats"),
        ("m.parquet", b"PAR1 not parquet", "m.parquet"),
        ("m.jsonl", b"\n\n", "empty"),
        ("m.csv", b"image_uri,race,gender\n", "no rows"),
    ],
)
def test_unusable_files_raise_manifest_error_naming_them(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ManifestError, match=match):
        load_manifest(str(path), ATTRS)


def test_each_bad_row_becomes_a_dead_letter_with_its_code(tmp_path):
    long_value = "x" * (MAX_FIELD_LENGTH + 1)
    text = "\n".join(
        [
            "image_uri,race,gender,note",
            "ok1.jpg,B,F,fine",
            "short.jpg,B",  # no gender value at all
            "empty.jpg,,M,",
            f"long.jpg,{long_value},M,",
            "slash.jpg,B/W,M,",
            '"ctl\x01.jpg",B,M,',
            "label.jpg,Q,M,",
            "ok1.png,W,M,dup of ok1",
            "extra.jpg,B,F,n,surplus",
            f"ok2.jpg,W,F,{'y' * 300000}",  # huge but unused column: fine
        ]
    )
    uri = _write_csv(tmp_path / "m.csv", text + "\n")
    faces, dead = load_manifest(uri, ATTRS, allowed_labels={"race": {"B", "W"}})
    assert [f.image_id for f in faces] == ["ok1", "ok2"]
    assert faces[0].image_uri.endswith("ok1.jpg")  # first occurrence kept
    assert [d.reason for d in dead] == [
        "missing_field",
        "empty_field",
        "field_too_long",
        "invalid_field",
        "invalid_field",
        "unknown_label",
        "duplicate_image_id",
        "malformed_row",
    ]
    assert all(d.stage == "manifest" and d.reason in REASONS for d in dead)
    assert "row 2" in dead[0].detail and "gender" in dead[0].detail
    assert len(json.dumps(dead[2].record)) < 1000  # dead letters keep a bounded copy


def test_non_utf8_rows_are_flagged_and_the_rest_load(tmp_path):
    data = b"image_uri,race,gender\na.jpg,B,F\nb\xff\xfe.jpg,W,M\nc.jpg,W,M\n"
    uri = _write_csv(tmp_path / "m.csv", data)
    faces, dead = load_manifest(uri, ATTRS)
    assert [f.image_id for f in faces] == ["a", "c"]
    assert [(d.reason, d.element_id) for d in dead] == [("bad_encoding", "row 2")]


def test_bom_and_crlf_are_accepted(tmp_path):
    uri = _write_csv(tmp_path / "m.csv", b"\xef\xbb\xbfimage_uri,race,gender\r\na.jpg,B,F\r\n")
    faces, dead = load_manifest(uri, ATTRS)
    assert [f.image_id for f in faces] == ["a"] and dead == []


def test_jsonl_bad_lines_and_typed_values(tmp_path):
    lines = [
        '{"image_uri": "a.jpg", "race": "B", "gender": "F", "age": 31}',
        "{not json",
        "[1, 2]",
        '{"image_uri": "b.jpg", "race": null, "gender": "F"}',
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines))
    rows = read_manifest_table(str(path))
    assert rows[0]["age"] == "31"
    faces, dead = load_manifest(str(path), ATTRS)
    assert [f.image_id for f in faces] == ["a"]
    assert [d.reason for d in dead] == ["malformed_row", "malformed_row", "missing_field"]


def test_parquet_binary_column_with_bad_bytes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "image_uri": pa.array([b"a.jpg", b"b\xff.jpg"], pa.binary()),
            "race": ["B", "W"],
            "gender": ["F", "M"],
        }
    )
    pq.write_table(table, tmp_path / "m.parquet")
    faces, dead = load_manifest(str(tmp_path / "m.parquet"), ATTRS)
    assert [f.image_id for f in faces] == ["a"]
    assert [d.reason for d in dead] == ["bad_encoding"]


# -- fuzz -------------------------------------------------------------------------------------

_CELLS = st.sampled_from(
    ["image_uri", "race", "gender", "a.jpg", "B", "", " ", '"', "x,y", "\t", "/", "\x00", "é"]
)
_TEXTY = st.lists(st.lists(_CELLS | st.text(max_size=8), max_size=5), max_size=6).map(
    lambda rows: "\n".join(",".join(r) for r in rows).encode("utf-8", errors="surrogatepass")
)
_JUNK = st.binary(max_size=200) | _TEXTY | st.just(b"\xff") | st.just(b"image_uri,race,gender\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_JUNK, ext=st.sampled_from(["csv", "tsv", "jsonl", "parquet"]))
def test_fuzz_only_manifest_errors_and_every_row_accounted(data, ext):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, f"m.{ext}")
        path.write_bytes(data)
        try:
            rows = read_manifest_table(str(path))
        except ManifestError:
            return
    faces, dead = parse_manifest(rows, ATTRS, allowed_labels={"race": {"B"}})
    assert len(faces) + len(dead) == len(rows)


_VALUES = st.none() | st.text(max_size=12) | st.sampled_from(["a.jpg", "B", "x" * 3000, "/"])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["image_uri", "image_id", "subject_id", "race", "gender", "zz"]),
            _VALUES,
        ),
        max_size=8,
    )
)
def test_fuzz_rows_are_faces_or_dead_letters(rows):
    faces, dead = parse_manifest(rows, ATTRS, image_root="gs://b/r")
    assert len(faces) + len(dead) == len(rows)
    assert len({f.image_id for f in faces}) == len(faces)
    assert [f.image_id for f in faces] == sorted(f.image_id for f in faces)
