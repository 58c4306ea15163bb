"""The report's "Face detector" section: the detector's miss rate per group.

Shown when the run's manifest went through ``cropaudit manifest detect-faces`` (it has a
``face_detection`` column): a detector that misses one group's faces more often removes more
of that group from a ``single``-design audit, biasing it before any cropper runs.
"""

from __future__ import annotations

from cropaudit.report.inputs import RunInputs


def detector_section(inputs: RunInputs) -> str:
    from cropaudit.facedetect import miss_rates
    from cropaudit.report.pagekit import note, table
    from cropaudit.transforms.manifests import read_manifest

    uri = inputs.summary.get("manifest") or inputs.config.manifest.path
    try:
        manifest = read_manifest(uri)
    except Exception as exc:  # noqa: BLE001 - the rest of the report stands without it
        return note(f"manifest {uri} could not be read: {exc}")
    rows = manifest.rows
    if "face_detection" not in manifest.columns:
        return note("The manifest's face boxes did not come from cropaudit's face detector.")
    rates = miss_rates(rows, inputs.config.groups.attributes)
    detectors = sorted({r.get("face_detector") or "" for r in rows} - {""})
    parts = [
        note(
            "Face boxes filled by cropaudit manifest detect-faces with "
            f"{', '.join(detectors) or 'a detector'}. A miss (no face or several faces) leaves "
            "the image without a box, so single-design runs dead-letter it: a miss rate that "
            "differs by group biases the audit before any cropper runs. Intervals: Wilson 95%."
        )
    ]
    rows_out = [
        [r.group, int(r.images), int(r.detected), int(r.no_face), int(r.several_faces),
         r.miss_rate, r.ci_low, r.ci_high]
        for r in rates.itertuples()
    ]  # fmt: skip
    headers = [
        "group",
        "images",
        "one face",
        "no face",
        "several",
        "miss rate",
        "CI low",
        "CI high",
    ]
    parts.append(table(headers, rows_out) if rows_out else note("No image needed detection."))
    return "".join(parts)
