"""Plans are checked before they run; label normalisation is explicit; a declared manifest format
wins (issue 13, item 5). Every refusal leaves the folder as it was."""

from __future__ import annotations

import pytest

from cropaudit.cli import main
from cropaudit.errors import ManifestError
from cropaudit.importers import write_manifest
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.rundir import read_table
from cropaudit.transforms.run_plan import PlanError, check_plan, make_plan
from tests.reliability.conftest import face_rows, tiny_config
from tests.reliability.snapshot import folder_digest


def _write_config(path, manifest, *, cpp: int = 2, groups: str = "", extra: str = "") -> None:
    path.write_text(
        f'name = "plan"\n[manifest]\npath = "{manifest}"\n[groups]\n'
        f'attributes = ["tone", "hair"]\n{groups}[design]\ncomposites_per_pair = {cpp}\n{extra}'
    )


CASES = {  # (composites per pair, extra TOML) -> words the refusal must contain, numbers included
    "canvas": (
        (2, "[layout]\nwidth = 8192\nface_height = 8192\nface_scale = 8.0\n"),
        "65536x132298 = 8,670,281,728 pixels (26.0 GB per canvas)",
    ),
    "one_pixel_slot": ((2, "[layout]\nwidth = 1\nface_height = 1\n"), "face slot is 1x1 pixels"),
    "slot_small_at_input": (
        (2, "[layout]\nwidth = 40\nface_height = 40\ngap_height = 4000\n"),
        "at the model's 320-pixel input",
    ),
    "huge_design": ((10**9, ""), "12000000000 composites"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plans_that_cannot_run_are_refused_with_numbers(case, face_set, tmp_path, capsys):
    (cpp, extra), words = CASES[case]
    config = tmp_path / "c.toml"
    _write_config(config, face_set, cpp=cpp, extra=extra)
    before = folder_digest(tmp_path)
    assert main(["validate", str(config)]) == 1
    assert words in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1  # one line, no traceback
    assert folder_digest(tmp_path) == before and not out.exists()
    if case == "huge_design":  # a cluster may be meant: the plan passes when allowed
        assert main(["validate", "--allow-large-plan", str(config)]) == 0
        assert "plan: 12000000000 composites" in capsys.readouterr().out


def test_the_plan_reports_its_numbers(face_set, tmp_path, capsys):
    config = tmp_path / "c.toml"
    _write_config(config, face_set)
    assert main(["validate", str(config)]) == 0
    out = capsys.readouterr().out
    # 4 groups -> 6 pairs x 2 samples x 2 orders; the WACV 583x3000 canvas
    assert "plan: 24 composites, 1 variant(s), canvas 583x3000, 6.5 MB per composite" in out
    assert "on the local runner" in out


def test_a_manifest_with_one_group_plans_nothing_and_is_refused(face_set, tmp_path):
    rows = [r for r in face_rows(face_set) if (r["tone"], r["hair"]) == ("light", "short")]
    manifest = tmp_path / "in" / "one.csv"
    manifest.parent.mkdir()
    write_manifest(rows, str(manifest))
    before = folder_digest(tmp_path)
    with pytest.raises(PlanError, match=r"plans 0 composites \(manifest groups: light/short\)"):
        run_audit(tiny_config(manifest), str(tmp_path / "out"), quiet=True)
    assert folder_digest(tmp_path) == before


def test_plan_check_is_pure_and_overridable():
    from cropaudit.pipelines.demo_pipeline import embedded_config

    config = embedded_config().replace(design={"composites_per_pair": 10**9})
    plan = make_plan(config, 6 * 2 * 10**9)
    with pytest.raises(PlanError, match="--allow-large-plan"):
        check_plan(plan)
    check_plan(plan, allow_large=True)
    check_plan(plan, runner="dataflow")  # a cluster runner: no local estimate applies


def _labelled_manifest(face_set, tmp_path, spellings):
    """The face set with group ``light`` spelled each way in turn; returns the manifest and how
    many rows got a spelling other than the first."""
    rows = face_rows(face_set)
    light = [row for row in rows if row["tone"] == "light"]
    for i, row in enumerate(light):
        row["tone"] = spellings[i % len(spellings)]
    manifest = tmp_path / "in" / "labels.csv"
    manifest.parent.mkdir(exist_ok=True)
    write_manifest(rows, str(manifest))
    return manifest, sum(1 for row in light if row["tone"] != spellings[0])


def test_labels_differing_in_case_are_refused_by_default_and_merged_when_asked(
    face_set, tmp_path, capsys
):
    manifest, _ = _labelled_manifest(face_set, tmp_path, ["light", "Light", " light  "])
    config = tmp_path / "c.toml"
    _write_config(config, manifest)
    before = folder_digest(tmp_path)
    assert main(["manifest", "check", str(manifest), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "tone: 'Light' vs 'light'" in err and 'label_case = "lower"' in err
    with pytest.raises(ManifestError, match="differ only in case"):
        run_audit(tiny_config(manifest), str(tmp_path / "out"), quiet=True)
    assert folder_digest(tmp_path) == before
    # merged when asked: "Light" and " light  " count as light
    _write_config(config, manifest, groups='label_case = "lower"\n')
    assert main(["manifest", "check", str(manifest), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "labels: case lower, whitespace collapse" in out and "light/short: 4" in out


def test_missing_value_spellings_are_dead_lettered_and_reported(face_set, tmp_path, capsys):
    manifest, missing = _labelled_manifest(face_set, tmp_path, ["light", "NaN", "None", "null"])
    assert missing == 6
    assert main(["manifest", "check", str(manifest), "--attributes", "tone,hair"]) == 0
    out = capsys.readouterr().out
    assert f"missing_label: {missing}" in out and "'NaN', 'None', 'null'" in out
    assert "NaN/" not in out and "None/" not in out  # never groups of their own


def test_a_declared_format_wins_over_the_extension(face_set, tmp_path):
    clean = tiny_config(face_set)
    odd = tmp_path / "in" / "manifest.txt"  # CSV content, an extension that says nothing
    odd.parent.mkdir()
    odd.write_bytes(face_set.read_bytes())
    config = clean.replace(manifest={"path": str(odd), "format": "csv", "image_root": ""})
    config = config.replace(manifest={"image_root": str(face_set.parent)})
    before = folder_digest(tmp_path)
    run_audit(config, str(tmp_path / "odd"), quiet=True)
    run_audit(clean, str(tmp_path / "clean"), quiet=True)
    assert folder_digest(tmp_path, skip=(tmp_path / "odd", tmp_path / "clean")) == before
    cols = ["composite_id", "a_image_id", "b_image_id", "point_winner"]
    got, want = (
        read_table(str(tmp_path / name / "survival")).select(cols).to_pandas()
        for name in ("odd", "clean")
    )
    key = "composite_id"
    assert (
        got.sort_values(key)
        .reset_index(drop=True)
        .equals(want.sort_values(key).reset_index(drop=True))
    )


def test_native_size_faces_beyond_the_canvas_limit_are_a_dead_letter_reason_not_a_crash():
    import numpy as np

    from cropaudit.config import LayoutConfig
    from cropaudit.transforms.images import REASONS, ImageError
    from cropaudit.transforms.layout import prepare_face

    layout = LayoutConfig(kind="horizontal", height=0, face_scale=8.0)
    image = np.zeros((1800, 2000, 3), np.uint8)  # 3.6 MP, scaled x8 per side: 230 MP
    with pytest.raises(ImageError, match=r"16000x14400 = 230,400,000 pixels") as info:
        prepare_face(image, layout)
    assert info.value.reason == "canvas_too_large" and info.value.reason in REASONS
