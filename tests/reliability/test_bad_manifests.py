"""Bad manifests: whole-file problems stop before any pipeline starts, with the problem named;
bad rows become dead letters while the rest of the run completes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cropaudit.errors import ManifestError
from cropaudit.pipelines.audit import read_table, run_audit
from tests.reliability.conftest import face_rows, tiny_config


def rewrite(face_set: Path, tmp_path: Path, edit) -> Path:
    rows, fields = edit(face_rows(face_set))
    out = tmp_path / "manifest.csv"
    # written by hand: one row carries a raw non-UTF-8 byte (surrogate-escaped)
    with open(out, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return out


def test_missing_columns_fail_before_the_pipeline_starts(face_set, tmp_path):
    m = rewrite(
        face_set,
        tmp_path,
        lambda rows: (
            [{k: v for k, v in r.items() if k != "hair"} for r in rows],
            ["image_id", "image_uri", "subject_id", "tone"],
        ),
    )
    with pytest.raises(ManifestError, match="hair"):
        run_audit(tiny_config(m), str(tmp_path / "out"), quiet=True)
    assert not (tmp_path / "out").exists()


def test_empty_or_too_small_groups_are_named(face_set, tmp_path):
    m = rewrite(
        face_set,
        tmp_path,
        lambda rows: ([r for r in rows if r["subject_id"] != "dark-long-01"], list(rows[0])),
    )
    with pytest.raises(ManifestError, match="'dark/long' has 1 subject"):
        run_audit(tiny_config(m, controls=["same_group"]), str(tmp_path / "a"), quiet=True)
    with pytest.raises(ManifestError, match="'dark/curly'"):
        run_audit(
            tiny_config(m, pairs=[["dark/curly", "light/long"]]), str(tmp_path / "b"), quiet=True
        )


def test_bad_rows_become_dead_letters_and_the_run_completes(face_set, tmp_path):
    def edit(rows):
        template = dict(rows[0])
        extra = [
            {**template, "image_id": rows[1]["image_id"]},  # duplicate image id
            {**template, "image_id": "unknown-label", "tone": "green"},  # not an allowed label
            {**template, "image_id": "huge", "subject_id": "x" * 100_000},  # huge field
            {**template, "image_id": "no-tone", "tone": ""},  # missing field
            {**template, "image_id": "latin1", "subject_id": "caf\udce9"},  # non-UTF-8 byte
        ]
        return rows + extra, list(rows[0])

    m = rewrite(face_set, tmp_path, edit)
    config = tiny_config(m).replace(
        groups={"labels": {"tone": ["light", "dark"], "hair": ["short", "long"]}}
    )
    summary = run_audit(config, str(tmp_path / "out"), quiet=True)
    dead = read_table(str(tmp_path / "out" / "dead_letter")).to_pandas()
    manifest_dead = dead[dead.stage == "manifest"]
    assert len(manifest_dead) == 5 == summary["manifest_dead_lettered"]
    assert set(manifest_dead.reason) == {
        "duplicate_image_id",
        "unknown_label",
        "field_too_long",
        "empty_field",
        "bad_encoding",
    }
    assert summary["survival_rows"] == summary["composites_expected"] == 24
