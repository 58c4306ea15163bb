"""Read a manifest table and turn its rows into :class:`Face` records or dead letters.

Pure functions, no Beam: the pipeline calls :func:`load_manifest` before it starts, so that a
manifest that cannot be used at all fails fast (``ManifestError``) and every bad row is kept as a
:class:`DeadLetter` with a reason code from ``schemas.manifest.REASONS`` — never dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cropaudit import fileio
from cropaudit.config import ExperimentConfig, GroupsConfig
from cropaudit.csvcells import restore_cell
from cropaudit.errors import ManifestError, UserError
from cropaudit.schemas.manifest import (
    DETECTOR_MISSES,
    FACE_BOX_COLUMNS,
    FORMATS,
    GROUP_SEPARATOR,
    MAX_FIELD_LENGTH,
    MAX_MANIFEST_BYTES,
    OPTIONAL_COLUMNS,
    REASONS,
    REQUIRED_COLUMNS,
    ROW_ERROR_KEY,
)
from cropaudit.schemas.records import DeadLetter, Face
from cropaudit.transforms.design_kind import design_kind

STAGE = "manifest"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_REPLACEMENT = "\ufffd"
_RECORD_VALUE_CHARS = 256  # dead letters keep a bounded copy of the row


@dataclass(frozen=True)
class ManifestTable:
    """A manifest as read: its column names (file order) and its rows (all values text)."""

    columns: tuple[str, ...]
    rows: list[dict[str, str | None]]


# -- reading --------------------------------------------------------------------------------


def manifest_format(uri: str, format: str = "auto") -> str:
    """The manifest format, from ``format`` or else from the file extension."""
    if format != "auto":
        if format not in set(FORMATS.values()):
            raise ManifestError(f"unknown manifest format {format!r}; use one of {_format_names()}")
        return format
    ext = os.path.splitext(uri.rstrip("/"))[1].lower()
    if ext not in FORMATS:
        raise ManifestError(
            f"cannot tell the format of manifest {uri} from its extension; "
            f"use one of {', '.join(FORMATS)}"
        )
    return FORMATS[ext]


def read_manifest(uri: str, format: str = "auto") -> ManifestTable:
    """Read the manifest at ``uri`` (local or gs://); an unusable file raises ``ManifestError``."""
    kind = manifest_format(uri, format)
    try:
        data = fileio.read_bytes(uri, limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {uri}") from None
    except (OSError, UserError) as exc:
        raise ManifestError(f"cannot read manifest {uri}: {exc}") from exc
    if kind == "parquet":
        table = _parse_parquet(data, uri)
    else:
        text, lossy = _decode(data)
        table = _parse_jsonl(text, uri) if kind == "jsonl" else _parse_delimited(text, kind, uri)
        if lossy:
            _flag_replacement_rows(table.rows)
    if ROW_ERROR_KEY in table.columns:
        raise ManifestError(f"manifest {uri} uses the reserved column name {ROW_ERROR_KEY}")
    return table


def read_manifest_table(uri: str, format: str = "auto") -> list[dict[str, str | None]]:
    """The rows of the manifest at ``uri``, every value as text or None (see :func:`read_manifest`).

    Rows that could only partly be read carry ``ROW_ERROR_KEY`` (e.g. ``bad_encoding``), so that
    :func:`parse_manifest` dead-letters them instead of losing them.
    """
    return read_manifest(uri, format).rows


def _format_names() -> str:
    return ", ".join(sorted(set(FORMATS.values())))


def _decode(data: bytes) -> tuple[str, bool]:
    """UTF-8 text (BOM dropped) and whether bytes had to be replaced; never raises."""
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", errors="replace"), True


def _flag_replacement_rows(rows: list[dict[str, str | None]]) -> None:
    for row in rows:
        if ROW_ERROR_KEY in row:
            continue
        bad = [k for k, v in row.items() if v is not None and _REPLACEMENT in v]
        if bad:
            row[ROW_ERROR_KEY] = f"bad_encoding: non-UTF-8 bytes in {', '.join(bad)}"


def _parse_delimited(text: str, kind: str, uri: str) -> ManifestTable:
    delimiter = "\t" if kind == "tsv" else ","
    old_limit = csv.field_size_limit(MAX_MANIFEST_BYTES + 1)  # long fields are dead-lettered later
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ManifestError(f"cannot parse {kind.upper()} manifest {uri}: {exc}") from exc
    finally:
        csv.field_size_limit(old_limit)
    records = [r for r in records if r]  # blank lines are not rows
    if not records:
        raise ManifestError(f"manifest {uri} is empty (no header row)")
    header = [restore_cell(name).strip() for name in records[0]]
    named = [(i, name) for i, name in enumerate(header) if name]
    columns = tuple(name for _, name in named)
    if not columns:
        raise ManifestError(f"manifest {uri} has an empty header row")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ManifestError(f"manifest {uri} repeats column(s): {', '.join(duplicated)}")
    rows: list[dict[str, str | None]] = []
    for line, record in enumerate(records[1:], start=2):
        row: dict[str, str | None] = {
            name: restore_cell(record[i]) if i < len(record) else None for i, name in named
        }
        extra = [v for v in record[len(header) :] if v.strip()]
        if extra:
            row[ROW_ERROR_KEY] = (
                f"malformed_row: record {line} has {len(record)} fields, header has {len(header)}"
            )
        rows.append(row)
    return ManifestTable(columns, rows)


def _parse_jsonl(text: str, uri: str) -> ManifestTable:
    columns: dict[str, None] = {}
    rows: list[dict[str, str | None]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            rows.append({ROW_ERROR_KEY: f"malformed_row: line {number} is not JSON ({exc})"[:300]})
            continue
        if not isinstance(obj, dict):
            rows.append({ROW_ERROR_KEY: f"malformed_row: line {number} is not a JSON object"})
            continue
        row = {str(k): _text(v) for k, v in obj.items()}
        columns.update(dict.fromkeys(row))
        rows.append(row)
    if not rows:
        raise ManifestError(f"manifest {uri} is empty (no JSON lines)")
    return ManifestTable(tuple(columns), rows)


def _parse_parquet(data: bytes, uri: str) -> ManifestTable:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
        columns = {name: table.column(name).to_pylist() for name in table.column_names}
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise ManifestError(f"cannot parse Parquet manifest {uri}: {exc}") from exc
    if len(columns) != len(table.column_names):
        raise ManifestError(f"manifest {uri} repeats column names")
    rows: list[dict[str, str | None]] = []
    for i in range(table.num_rows):
        row: dict[str, str | None] = {}
        bad = []
        for name, values in columns.items():
            value = values[i]
            if isinstance(value, bytes):
                text = value.decode("utf-8", errors="replace")
                if text.encode("utf-8") != value:
                    bad.append(name)
                row[name] = text
            else:
                row[name] = _text(value)
        if bad:
            row[ROW_ERROR_KEY] = f"bad_encoding: non-UTF-8 bytes in {', '.join(bad)}"
        rows.append(row)
    return ManifestTable(tuple(table.column_names), rows)


def _text(value: Any) -> str | None:
    """A JSON/Parquet value as manifest text: strings as-is, numbers and containers as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# -- validating -----------------------------------------------------------------------------


def check_columns(
    columns: Iterable[str],
    attributes: Sequence[str],
    manifest_uri: str | None = None,
    face_boxes: bool = False,
) -> None:
    """Raise ``ManifestError`` naming every required column the manifest lacks (with
    ``face_boxes``, the single design's face box columns are required too).

    Called before any pipeline starts: a missing column would otherwise dead-letter every row.
    """
    if not attributes:
        raise ManifestError("no demographic attributes requested (e.g. race, gender)")
    reserved = sorted(set(attributes) & {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *FACE_BOX_COLUMNS})
    if reserved:
        raise ManifestError(f"{', '.join(reserved)} cannot be used as a demographic attribute")
    present = set(columns)
    required = (*REQUIRED_COLUMNS, *attributes, *(FACE_BOX_COLUMNS if face_boxes else ()))
    missing = [c for c in dict.fromkeys(required) if c not in present]
    if missing:
        where = f"manifest {manifest_uri}" if manifest_uri else "manifest"
        raise ManifestError(
            f"{where} lacks required column(s): {', '.join(missing)} "
            f"(it has: {', '.join(sorted(present)) or 'none'})"
        )


def parse_manifest(
    rows: Sequence[Mapping[str, str | None]],
    attributes: Sequence[str],
    image_root: str | None = None,
    allowed_labels: Mapping[str, Iterable[str]] | None = None,
    manifest_uri: str | None = None,
    face_boxes: bool = False,
    groups: GroupsConfig | None = None,
) -> tuple[list[Face], list[DeadLetter]]:
    """Validate rows in file order: faces sorted by image id, dead letters in file order.

    Every row becomes exactly one Face or one DeadLetter. Of rows sharing an image id, the first
    valid one is kept. Relative image URIs resolve against ``image_root``, else the manifest's
    folder. With ``face_boxes`` (the single design) every row needs a face box
    (``FACE_BOX_COLUMNS``), carried as :attr:`Face.face_box`. Labels are normalised as
    ``groups`` says (:func:`normalize_label`; default: ``GroupsConfig()``), and with
    ``label_case = "strict"`` labels that differ only in case raise ``ManifestError``.
    """
    rules = groups or GroupsConfig()
    base = image_root or (fileio.dirname(manifest_uri) if manifest_uri else None)
    names = tuple(dict.fromkeys(attributes))
    allowed = {
        k: frozenset(normalize_label(x, rules) for x in v)
        for k, v in (allowed_labels or {}).items()
    }
    faces: dict[str, Face] = {}
    first_row: dict[str, int] = {}
    dead: list[DeadLetter] = []
    for number, row in enumerate(rows, start=1):
        result = _parse_row(row, number, names, base, allowed, face_boxes, rules)
        if isinstance(result, DeadLetter):
            dead.append(result)
        elif result.image_id in faces:
            dead.append(
                _dead(
                    "duplicate_image_id",
                    result.image_id,
                    f"row {number}: image_id {result.image_id!r} already used by row "
                    f"{first_row[result.image_id]}",
                    row,
                )
            )
        else:
            faces[result.image_id] = result
            first_row[result.image_id] = number
    if rules.label_case == "strict":
        clashes = case_clashes(faces.values())
        if clashes:
            raise ManifestError(
                f"labels that differ only in case: {'; '.join(clashes)}; set [groups] "
                'label_case = "lower" to merge them or "exact" to keep them apart'
            )
    return [faces[k] for k in sorted(faces)], dead


def normalize_label(value: str, rules: GroupsConfig) -> str:
    """An attribute value as grouping compares it: whitespace and case per ``rules``."""
    value = " ".join(value.split()) if rules.label_whitespace == "collapse" else value.strip()
    return value.lower() if rules.label_case == "lower" else value


def case_clashes(faces: Iterable[Face]) -> list[str]:
    """``attribute: 'A' vs 'a'`` for each set of labels ``label_case = "lower"`` would merge."""
    spellings: dict[tuple[str, str], set[str]] = {}
    for face in faces:
        for name, value in face.attributes:
            spellings.setdefault((name, value.lower()), set()).add(value)
    return [
        f"{name}: {' vs '.join(repr(v) for v in sorted(values))}"
        for (name, _), values in sorted(spellings.items())
        if len(values) > 1
    ]


def load_manifest(
    uri: str,
    attributes: Sequence[str],
    image_root: str | None = None,
    allowed_labels: Mapping[str, Iterable[str]] | None = None,
    face_boxes: bool = False,
    format: str = "auto",
    groups: GroupsConfig | None = None,
) -> tuple[list[Face], list[DeadLetter]]:
    """Read, check and parse the manifest at ``uri`` (see :func:`parse_manifest`); a declared
    ``format`` wins over the file extension."""
    table = read_manifest(uri, format)
    check_columns(table.columns, attributes, uri, face_boxes)
    if not table.rows:
        raise ManifestError(f"manifest {uri} has no rows")
    return parse_manifest(
        table.rows,
        attributes,
        image_root,
        allowed_labels,
        manifest_uri=uri,
        face_boxes=face_boxes,
        groups=groups,
    )


def config_manifest_uri(config: ExperimentConfig, config_dir: str | None) -> str:
    """The manifest a config names, absolute (relative paths are relative to the config's
    folder)."""
    path = config.manifest.path
    if not path:
        raise UserError("the config names no manifest (manifest.path); pass --manifest")
    if fileio.is_remote(path) or path.startswith("/") or not config_dir:
        return fileio.absolute(path)
    return fileio.absolute(fileio.join(config_dir, path))


def load_faces(uri: str, config: ExperimentConfig) -> tuple[list[Face], list[DeadLetter]]:
    """A run's faces and manifest dead letters, as ``config`` says to read them."""
    labels = {k: set(v) for k, v in config.groups.labels.items()} or None
    return load_manifest(
        uri,
        list(config.groups.attributes),
        image_root=config.manifest.image_root or None,
        allowed_labels=labels,
        face_boxes=design_kind(config.design.kind).face_boxes,
        format=config.manifest.format,
        groups=config.groups,
    )


def _parse_row(
    row: Mapping[str, str | None],
    number: int,
    attributes: tuple[str, ...],
    base: str | None,
    allowed: Mapping[str, frozenset[str]],
    face_boxes: bool = False,
    rules: GroupsConfig | None = None,
) -> Face | DeadLetter:
    element = f"row {number}"
    flag = row.get(ROW_ERROR_KEY)
    if flag is not None:
        code, _, detail = str(flag).partition(": ")
        code = code if code in REASONS else "malformed_row"
        return _dead(code, element, f"{element}: {detail or REASONS[code]}", row)

    values: dict[str, str] = {}
    for name in (*REQUIRED_COLUMNS, *attributes):
        raw = row.get(name)
        if raw is None:
            return _dead("missing_field", element, f"{element}: no value for {name!r}", row)
        if not raw.strip():
            return _dead("empty_field", element, f"{element}: {name!r} is blank", row)
        values[name] = raw.strip()
    for name in OPTIONAL_COLUMNS:
        raw = row.get(name)
        if raw is not None and raw.strip():
            values[name] = raw.strip()

    for name, value in values.items():
        if len(value) > MAX_FIELD_LENGTH:
            detail = f"{element}: {name!r} has {len(value)} characters (max {MAX_FIELD_LENGTH})"
            return _dead("field_too_long", element, detail, row)
    for name, value in values.items():
        if _CONTROL.search(value):
            return _dead("invalid_field", element, f"{element}: {name!r} has control chars", row)
    rules = rules or GroupsConfig()
    missing = {m.casefold() for m in rules.missing_labels}
    for name in attributes:
        if values[name].casefold() in missing:
            detail = f"{element}: {name!r} is {values[name]!r}, a missing-value spelling"
            return _dead("missing_label", element, detail, row)
        values[name] = normalize_label(values[name], rules)
    for name in attributes:
        if GROUP_SEPARATOR in values[name]:
            detail = f"{element}: {name!r} value {values[name]!r} contains {GROUP_SEPARATOR!r}"
            return _dead("invalid_field", element, detail, row)

    image_id = values.get("image_id") or _stem(values["image_uri"])
    if not image_id:
        detail = f"{element}: cannot derive an image_id from {values['image_uri']!r}"
        return _dead("invalid_field", element, detail, row)
    for name in attributes:
        if name in allowed and values[name] not in allowed[name]:
            detail = (
                f"row {number}: {name}={values[name]!r} is not one of "
                f"{', '.join(sorted(allowed[name]))}"
            )
            return _dead("unknown_label", image_id, detail, row)
    face_box = _face_box(row, number, image_id) if face_boxes else None
    if isinstance(face_box, DeadLetter):
        return face_box
    return Face(
        image_id=image_id,
        image_uri=_resolve(values["image_uri"], base),
        subject_id=values.get("subject_id") or image_id,
        attributes=tuple(sorted((name, values[name]) for name in attributes)),
        face_box=face_box,
    )


def _face_box(
    row: Mapping[str, str | None], number: int, image_id: str
) -> tuple[float, float, float, float] | DeadLetter:
    """The row's face box (x, y, w, h) as floats, or its dead letter. Whether the box lies inside
    the image is checked once the image is decoded (stage render, also ``bad_face_box``)."""
    raw = [row.get(name) for name in FACE_BOX_COLUMNS]
    blank = [n for n, v in zip(FACE_BOX_COLUMNS, raw) if v is None or not v.strip()]
    if blank:
        detail = f"row {number}: no face box ({', '.join(blank)} blank)"
        # a face detector's miss (cropaudit manifest detect-faces) says which kind it was
        reason = row.get("face_detection") or ""
        return _dead(
            reason if reason in DETECTOR_MISSES else "missing_face_box", image_id, detail, row
        )
    try:
        x, y, w, h = (float(v) for v in raw)
    except ValueError:
        return _dead("bad_face_box", image_id, f"row {number}: face box {raw} is not numbers", row)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or min(x, y) < 0 or min(w, h) <= 0:
        detail = f"row {number}: face box {raw} needs x, y >= 0 and w, h > 0"
        return _dead("bad_face_box", image_id, detail, row)
    return (x, y, w, h)


def _stem(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return os.path.splitext(name)[0].strip()


def _resolve(uri: str, base: str | None) -> str:
    if base is None or fileio.is_remote(uri) or os.path.isabs(uri):
        return uri
    return fileio.join(base, uri)


def _dead(reason: str, element_id: str, detail: str, row: Mapping[str, Any]) -> DeadLetter:
    record = {
        str(k): v
        if not isinstance(v, str) or len(v) <= _RECORD_VALUE_CHARS
        else v[:_RECORD_VALUE_CHARS] + "…"
        for k, v in row.items()
        if k != ROW_ERROR_KEY
    }
    return DeadLetter(
        stage=STAGE, reason=reason, element_id=element_id, detail=detail, record=record
    )
