"""Every kind of bad image gets a documented conversion or a reason code, never a crash; in a
run, each composite that needed a bad image is dead-lettered and counted."""

from __future__ import annotations

import numpy as np
import pytest

from cropaudit.importers import write_manifest
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.rundir import read_table
from cropaudit.transforms.images import (
    MAX_FILE_BYTES,
    REASONS,
    ImageError,
    decode_image,
    load_image,
)
from tests.reliability.conftest import bad_image_cases, face_rows, tiny_config

CASES = bad_image_cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_bad_image_is_converted_or_refused_with_its_reason(name, tmp_path):
    data, reason = CASES[name]
    path = tmp_path / f"{name}.img"
    if data is not None:
        path.write_bytes(data)
    if reason is None:
        image = load_image(str(path))
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        return
    assert reason in REASONS
    with pytest.raises(ImageError) as info:
        load_image(str(path))
    assert info.value.reason == reason


def test_conversions_are_the_documented_ones():
    flat = decode_image(CASES["rgba_transparent"][0])
    assert (flat == 255).all()  # fully transparent red -> white background
    assert (decode_image(CASES["p_transparent"][0]) == 255).all()
    assert (decode_image(CASES["png_16bit"][0]) == 255).all()  # 65535 -> 255
    grey = decode_image(CASES["grayscale"][0])
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    rotated = decode_image(CASES["exif_rotated"][0])
    assert rotated.shape == (40, 20, 3)  # EXIF orientation applied


def oversized_file(path) -> str:
    """A sparse file one byte over the image byte limit (no disk space, nothing worth reading)."""
    with open(path, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    return str(path)


def test_an_image_file_over_the_byte_limit_is_refused(tmp_path):
    with pytest.raises(ImageError) as read:
        load_image(oversized_file(tmp_path / "huge.jpg"))
    assert read.value.reason == "image_file_too_large" and "limit" in read.value.detail
    with pytest.raises(ImageError) as decoded:  # bytes that arrived by another way
        decode_image(bytes(MAX_FILE_BYTES + 1), "huge.jpg")
    assert decoded.value.reason == "image_file_too_large"
    assert "image_file_too_large" in REASONS


def test_composites_needing_bad_images_are_dead_lettered_and_nothing_is_lost(face_set, tmp_path):
    rows = face_rows(face_set)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    rows.append(  # one subject more whose only image is over the byte limit
        {
            "image_id": "bad-huge",
            "image_uri": oversized_file(bad_dir / "huge.jpg"),
            "subject_id": "bad-huge",
            "tone": "bad",
            "hair": "short",
        }
    )
    for i, (name, (data, _)) in enumerate(sorted(CASES.items())):
        path = bad_dir / f"{name}.img"
        if data is not None:
            path.write_bytes(data)
        # one bad image per subject of an extra group 'bad/short'
        rows.append(
            {
                "image_id": f"bad-{i:02d}",
                "image_uri": str(path),
                "subject_id": f"bad-{name}",
                "tone": "bad",
                "hair": "short",
            }
        )
    manifest = tmp_path / "manifest.csv"
    write_manifest(rows, str(manifest))
    config = tiny_config(
        manifest, pairs=[["bad/short", "light/short"]], composites_per_pair=80, seed=11
    )
    summary = run_audit(config, str(tmp_path / "out"), quiet=True)
    dead = read_table(str(tmp_path / "out" / "dead_letter")).to_pandas()
    survival = read_table(str(tmp_path / "out" / "survival")).to_pandas()
    refused = {reason for _, reason in CASES.values() if reason} | {"image_file_too_large"}
    assert set(dead[dead.stage == "render"].reason) == refused
    converted = {f"bad-{i:02d}" for i, (n, (_, r)) in enumerate(sorted(CASES.items())) if r is None}
    assert converted <= set(survival.a_image_id)  # converted images made real rows
    assert summary["composites_expected"] == 160
    assert summary["survival_rows"] + summary["composites_dead_lettered"] == 160  # 0 lost
    assert not set(survival.composite_id) & set(dead.element_id)
