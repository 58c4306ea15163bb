"""The report's "Face detector" section: the detector's miss rate per group.

Shown when the run's manifest went through ``cropaudit manifest detect-faces`` (it has a
``face_detection`` column): a detector that misses one group's faces more often removes more
of that group from a ``single``-design audit, biasing it before any cropper runs.
"""

from __future__ import annotations

from cropaudit.report.inputs import RunInputs


def detector_section(inputs: RunInputs) -> str:
    from cropaudit.facedetect import miss_rate_differences, miss_rates
    from cropaudit.report.pagekit import esc, note, table
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
            "differs by group biases the audit before any cropper runs. Intervals: 95%, people "
            "(subject_id) as clusters; the plain Wilson interval (images independent) beside."
        )
    ]
    rows_out = [
        [r.group, int(r.images), int(r.subjects), int(r.detected), int(r.no_face),
         int(r.several_faces), f"{r.miss_rate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]",
         f"{r.effective_n:.1f}", f"[{r.wilson_low:.3f}, {r.wilson_high:.3f}]"]
        for r in rates.itertuples()
    ]  # fmt: skip
    headers = ["group", "images", "people", "one face", "no face", "several",
               "miss rate [CI]", "effective n", "plain Wilson"]  # fmt: skip
    parts.append(table(headers, rows_out) if rows_out else note("No image needed detection."))
    width = inputs.config.analysis.parity_width
    differences = miss_rate_differences(rows, inputs.config.groups.attributes, parity_width=width)
    if len(differences):
        parts.append(
            "<p>Difference in miss rate between groups:</p><ul>"
            + "".join(
                f"<li data-verdict='{esc(v)}'>{esc(t)}</li>"
                for v, t in zip(differences.verdict, differences.text)
            )  # fmt: skip
            + "</ul>"
        )
    return "".join(parts)
