"""Fill missing face boxes in a manifest with a face detector shipped inside a PyPI wheel.

The detector is OpenCV's frontal-face Haar cascade (Viola & Jones 2001; Lienhart & Maydt 2002),
whose XML file is part of the ``opencv-contrib-python-headless`` wheel (``cv2.data``), so
nothing is downloaded at run time. (OpenCV's YuNet needs an ONNX file the wheel does not ship.)
Its confidence is the cascade's final-stage score (``detectMultiScale3`` level weight).

Each row without a complete face box gets one of these ``face_detection`` outcomes: ``detected``
(exactly one face: the box is filled, with ``face_detector`` and ``face_confidence``),
``no_face``, ``several_faces`` (the detail says how many) or ``unreadable_image``; rows that
already had a box keep it (``face_detection = manifest``). Rows without a detected face keep
blank box columns and are dead-lettered with that reason by every run that needs the box (the
``single`` design), so no image is dropped unseen. A detector that misses one group more often
biases every audit built on it, so :func:`miss_rates` reports the miss rate per group and
:func:`miss_rate_differences` the difference between groups with a verdict, both with people
(``subject_id``) as clusters, which ``cropaudit manifest detect-faces`` prints and the report
shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cropaudit.schemas.manifest import DETECTOR_MISSES, FACE_BOX_COLUMNS
from cropaudit.stats.clustered_rate import REST, group_differences, rate_from_totals, totals_by
from cropaudit.stats.gaze import adjust_within_families, difference_columns
from cropaudit.stats.gaze_findings import difference_verdict
from cropaudit.stats.intervals import wilson

CASCADE = "haarcascade_frontalface_default.xml"
#: Outcome column values; the misses are dead-letter reasons of the manifest stage too.
DETECTED, FROM_MANIFEST = "detected", "manifest"
MISSES = DETECTOR_MISSES
UNREADABLE = "unreadable_image"
OUTCOME_COLUMNS = ("face_detection", "face_detector", "face_confidence")


@dataclass(frozen=True)
class Detection:
    x: int
    y: int
    w: int
    h: int
    confidence: float


class HaarFaceDetector:
    """OpenCV's bundled frontal-face cascade with fixed, recorded settings."""

    scale_factor = 1.1
    min_neighbors = 5
    #: Smallest face, as a share of the image's shorter side (tiny detections are texture).
    min_face = 0.08

    def __init__(self) -> None:
        from cropaudit.model.cropper import package_version, require

        self._cv2 = require("cv2", "face detector")
        path = f"{self._cv2.data.haarcascades}{CASCADE}"
        self._cascade = self._cv2.CascadeClassifier(path)
        if self._cascade.empty():
            from cropaudit.errors import UserError

            raise UserError(f"OpenCV's wheel has no readable {CASCADE} at {path}")
        self.name = (
            f"opencv-haar:{CASCADE}@{package_version('opencv-contrib-python-headless')}"
            f";scale={self.scale_factor};neighbors={self.min_neighbors};min={self.min_face}"
        )

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an (H, W, 3) uint8 RGB image, largest first."""
        cv2 = self._cv2
        gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
        side = max(1, int(self.min_face * min(gray.shape)))
        rects, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        found = [
            Detection(int(x), int(y), int(w), int(h), float(c))
            for (x, y, w, h), c in zip(np.asarray(rects).reshape(-1, 4), np.ravel(weights))
        ]
        return sorted(found, key=lambda d: (-d.w * d.h, d.x, d.y))


def has_box(row: Mapping[str, str | None]) -> bool:
    return all((row.get(c) or "").strip() for c in FACE_BOX_COLUMNS)


def fill_row(row: Mapping[str, str | None], detector, load) -> tuple[dict, str | None]:
    """The row with its outcome columns (and box, when one face was found) and the dead-letter
    detail for a miss (None for a usable row). ``load(row) -> image`` decodes the row's image."""
    out = {k: v for k, v in row.items() if k not in OUTCOME_COLUMNS}
    if has_box(row):
        given = {"face_detection": FROM_MANIFEST, "face_detector": "", "face_confidence": ""}
        return {**out, **given}, None
    try:
        image = load(row)
    except Exception as exc:  # noqa: BLE001 - an unreadable image is one dead letter
        detail = f"{type(exc).__name__}: {exc}"
        failed = {"face_detection": UNREADABLE, "face_detector": detector.name}
        return {**out, **failed, "face_confidence": ""}, detail
    faces = detector.detect(image)
    base = {**out, "face_detector": detector.name}
    if len(faces) != 1:
        outcome = MISSES[0] if not faces else MISSES[1]
        boxes = "; ".join(f"{d.x},{d.y},{d.w},{d.h} ({d.confidence:.2f})" for d in faces)
        detail = f"{len(faces)} faces found" + (f": {boxes}" if faces else "")
        return {**base, "face_detection": outcome, "face_confidence": ""}, detail
    d = faces[0]
    box = dict(zip(FACE_BOX_COLUMNS, (str(v) for v in (d.x, d.y, d.w, d.h))))
    found = {"face_detection": DETECTED, "face_confidence": f"{d.confidence:.4f}"}
    return {**base, **box, **found}, None


MISS_RATE_COLUMNS = ["group", "images", "subjects", "detected", *MISSES, "miss_rate", "ci_low",
                     "ci_high", "effective_n", "wilson_low", "wilson_high"]  # fmt: skip


def _detector_frame(rows: Sequence[Mapping[str, str | None]], attributes: Sequence[str]):
    """One row per image the detector ran on: group, subject (the image itself without a
    ``subject_id``), outcome and ``missed``."""
    records = []
    for i, row in enumerate(rows):
        outcome = row.get("face_detection") or ""
        if outcome in (DETECTED, *MISSES):
            group = "/".join(str(row.get(a) or "?") for a in attributes)
            subject = row.get("subject_id") or f"#image{i}:{row.get('image_id') or ''}"
            records.append((group, subject, outcome, outcome in MISSES))
    return pd.DataFrame(records, columns=["group", "subject_id", "outcome", "missed"])


def miss_rates(
    rows: Sequence[Mapping[str, str | None]], attributes: Sequence[str], level: float = 0.95
) -> pd.DataFrame:
    """Per group: images the detector ran on and their people (``subject_id``), faces found,
    each kind of miss, and the miss rate (no face or several faces, of the images it ran on)
    with its interval counting people, not images (subjects as clusters,
    :mod:`cropaudit.stats.clustered_rate`), and the plain Wilson interval beside it."""
    df = _detector_frame(rows, attributes)
    if df.empty:
        return pd.DataFrame(columns=MISS_RATE_COLUMNS)
    out = []
    for group, g in df.groupby("group", sort=True):
        counts = g["outcome"].value_counts()
        r = rate_from_totals(*totals_by(g, "missed"), level=level)
        lo, hi = wilson(r.k, r.n, level)
        out.append(
            [group, r.n, r.subjects, int(counts.get(DETECTED, 0)),
             *(int(counts.get(m, 0)) for m in MISSES), r.share, r.low, r.high, r.effective_n,
             lo, hi]
        )  # fmt: skip
    return pd.DataFrame(out, columns=MISS_RATE_COLUMNS)


def miss_rate_differences(
    rows: Sequence[Mapping[str, str | None]],
    attributes: Sequence[str],
    level: float = 0.95,
    parity_width: float = 0.05,
) -> pd.DataFrame:
    """The difference in miss rate between each pair of groups (and each group and the rest,
    with three or more), with its clustered interval, p (the test it inverts), Holm within the
    two families (pairs; group vs rest), the verdict (``disparity``/``parity``/``inconclusive``
    as for the face rates, ``parity_width`` in shares) and ``text``, the verdict in words."""
    df = _detector_frame(rows, attributes)
    out = []
    for kind, a, b, d in group_differences(df, "missed", level):
        state = difference_verdict(d.low, d.high, parity_width)
        out.append({"comparison": kind, "group_a": a, "group_b": b, **difference_columns(d),
                    "p_family": kind, "verdict": state})  # fmt: skip
    if not out:
        return pd.DataFrame()
    frame = adjust_within_families(pd.DataFrame(out))
    frame["text"] = [_miss_words(r, parity_width) for r in frame.to_dict("records")]
    return frame


def _miss_words(r: dict, width: float) -> str:
    b = "the rest" if r["group_b"] == REST else r["group_b"]
    head = (
        f"{r['group_a']} {100 * r['share_a']:.0f}% vs {b} {100 * r['share_b']:.0f}%: "
        f"difference {100 * r['difference']:+.0f} points [{100 * r['difference_low']:+.0f}, "
        f"{100 * r['difference_high']:+.0f}], adjusted p {r['p_holm']:.3g}"
    )
    if r["verdict"] == "disparity":
        more = r["group_a"] if r["difference"] > 0 else b
        return f"{head} — the detector misses {more}'s faces more often"
    if r["verdict"] == "parity":
        return f"{head} — no difference beyond ±{100 * width:g} points"
    return f"{head} — too little data to say"
