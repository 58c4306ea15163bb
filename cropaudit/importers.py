"""Build manifests from standard face datasets (CFD, FairFace, UTKFace, Twitter's WikiData TSV).

Each ``*_rows`` function is pure: it turns file names or label rows into manifest rows and a list
of what it skipped and why, so nothing is ever dropped silently. The ``import_*`` wrappers only
list files or read the label table, then call them. :func:`write_manifest` writes any format that
``transforms.manifests`` reads.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from cropaudit import fileio
from cropaudit.csvcells import csv_text
from cropaudit.errors import ManifestError, UserError
from cropaudit.transforms.manifests import manifest_format, read_manifest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
ID_COLUMNS = ("image_uri", "image_id", "subject_id")
UNMAPPED = "unmapped"

Row = dict[str, str]


@dataclass(frozen=True)
class ImportResult:
    """Manifest rows (sorted by image id) and the source items skipped, as (item, reason)."""

    rows: list[Row]
    skipped: tuple[tuple[str, str], ...] = ()

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(reason for _, reason in self.skipped).items()))


# -- Chicago Face Database --------------------------------------------------------------------

#: CFD race codes: the main set (A, B, L, W), CFD-MR (M, multiracial), CFD-INDIA (I).
CFD_RACES = {
    "A": "Asian",
    "B": "Black",
    "L": "Latino",
    "W": "White",
    "M": "Multiracial",
    "I": "Indian",
}
_CFD_NAME = re.compile(
    r"^CFD-(?P<race>[A-Z])(?P<gender>[FM])-(?P<target>\d+)-(?P<image>\d+)-(?P<expression>[A-Z]+)$",
    re.IGNORECASE,
)


def cfd_rows(uris: Iterable[str]) -> ImportResult:
    """Rows for CFD images named ``CFD-<race><gender>-<target>-<n>-<expression>.jpg``.

    Race and gender keep CFD's letter codes (``B``, ``F``) as in the paper's tables; the subject is
    ``<race><gender>-<target>`` so several photos of one person share it.
    """
    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    for uri in uris:
        name = _basename(uri)
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            skipped.append((name, "not_an_image"))
            continue
        match = _CFD_NAME.match(stem)
        if not match:
            skipped.append((name, "unrecognised_name"))
            continue
        code = {k: v.upper() for k, v in match.groupdict().items()}
        if code["race"] not in CFD_RACES:
            skipped.append((name, "unknown_race_code"))
            continue
        rows.append(
            {
                "image_uri": uri,
                "image_id": stem,
                "subject_id": f"{code['race']}{code['gender']}-{code['target']}",
                "race": code["race"],
                "gender": code["gender"],
                "expression": code["expression"],
            }
        )
    return _finish(rows, skipped, ("race", "gender", "expression"))


def import_cfd(folder: str) -> ImportResult:
    """CFD rows for every file under ``folder`` (the release keeps one sub-folder per person)."""
    return cfd_rows(_list_files(folder))


# -- FairFace ---------------------------------------------------------------------------------

FAIRFACE_REQUIRED = ("file", "gender", "race")
FAIRFACE_OPTIONAL = ("age", "service_test")


def fairface_rows(labels: Sequence[Mapping[str, str | None]], image_root: str) -> ImportResult:
    """Rows from FairFace's label CSV (``file, age, gender, race[, service_test]``).

    The image id is the relative path without extension and with ``/`` as ``-`` (``train-1``), since
    ``train/1.jpg`` and ``val/1.jpg`` are different people; each image is its own subject.
    """
    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    for number, label in enumerate(labels, start=1):
        values = {k: (label.get(k) or "").strip() for k in (*FAIRFACE_REQUIRED, *FAIRFACE_OPTIONAL)}
        if not all(values[k] for k in FAIRFACE_REQUIRED):
            skipped.append((f"row {number}", "missing_field"))
            continue
        rel = values["file"].lstrip("/")
        image_id = os.path.splitext(rel)[0].replace("/", "-")
        row = {
            "image_uri": fileio.join(image_root, rel),
            "image_id": image_id,
            "subject_id": image_id,
            "race": values["race"],
            "gender": values["gender"],
        }
        row.update({k: values[k] for k in FAIRFACE_OPTIONAL if values[k]})
        rows.append(row)
    return _finish(rows, skipped, ("race", "gender", "age"))


def import_fairface(csv_uri: str, image_root: str | None = None) -> ImportResult:
    """FairFace rows; image paths are relative to ``image_root``, else to the CSV's folder."""
    table = read_manifest(csv_uri, "csv")
    _require(table.columns, FAIRFACE_REQUIRED, csv_uri)
    return fairface_rows(table.rows, _absolute(image_root or fileio.dirname(csv_uri)))


# -- UTKFace ----------------------------------------------------------------------------------

UTK_GENDERS = {"0": "Male", "1": "Female"}
UTK_RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}
_UTK_NAME = re.compile(r"^(?P<age>\d+)_(?P<gender>\d+)_(?P<race>\d+)_(?P<date>\d+)$")


def utkface_rows(uris: Iterable[str]) -> ImportResult:
    """Rows for UTKFace files named ``age_gender_race_datetime.jpg`` (``.jpg.chip.jpg`` too).

    A few released files lack a field (``39_1_20170116174525125.jpg.chip.jpg``); they are
    reported as ``malformed_name``.
    """
    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    for uri in uris:
        name = _basename(uri)
        if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
            skipped.append((name, "not_an_image"))
            continue
        stem = name.split(".", 1)[0]
        match = _UTK_NAME.match(stem)
        if not match:
            skipped.append((name, "malformed_name"))
            continue
        gender, race = match["gender"], match["race"]
        if gender not in UTK_GENDERS or race not in UTK_RACES:
            skipped.append((name, "unknown_code"))
            continue
        rows.append(
            {
                "image_uri": uri,
                "image_id": stem,
                "subject_id": stem,
                "race": UTK_RACES[race],
                "gender": UTK_GENDERS[gender],
                "age": str(int(match["age"])),
            }
        )
    return _finish(rows, skipped, ("race", "gender", "age"))


def import_utkface(folder: str) -> ImportResult:
    return utkface_rows(_list_files(folder))


# -- Twitter's WikiData TSV -------------------------------------------------------------------

WIKIDATA_REQUIRED = ("human", "sex_or_gender", "ethnic_group", "local_path")
DEFAULT_WIKIDATA_MAPPING = "wikidata_labels.toml"


@dataclass(frozen=True)
class WikidataMapping:
    """WikiData Q-id -> label tables for ``sex_or_gender`` (gender) and ``ethnic_group`` (race)."""

    sex_or_gender: Mapping[str, str]
    ethnic_group: Mapping[str, str]


def parse_wikidata_mapping(text: str, source: str = "mapping") -> WikidataMapping:
    """Parse the TOML mapping; a malformed file raises ``UserError`` naming ``source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"cannot parse WikiData mapping {source}: {exc}") from exc
    tables = {}
    for name in ("sex_or_gender", "ethnic_group"):
        table = data.get(name)
        if not isinstance(table, dict):
            raise UserError(f"WikiData mapping {source} lacks a [{name}] table")
        bad = [k for k, v in table.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise UserError(f"WikiData mapping {source}: [{name}] {bad[0]} needs a text label")
        tables[name] = {k.strip(): v.strip() for k, v in table.items()}
    return WikidataMapping(**tables)


def load_wikidata_mapping(uri: str | None = None) -> WikidataMapping:
    """The mapping at ``uri``, or the default one shipped in ``schemas/wikidata_labels.toml``."""
    if uri is None:
        text = resources.files("cropaudit.schemas").joinpath(DEFAULT_WIKIDATA_MAPPING).read_text()
        return parse_wikidata_mapping(text, DEFAULT_WIKIDATA_MAPPING)
    try:
        data = fileio.read_bytes(uri)
    except (OSError, UserError) as exc:
        raise UserError(f"cannot read WikiData mapping {uri}: {exc}") from exc
    return parse_wikidata_mapping(data.decode("utf-8", errors="replace"), uri)


def wikidata_rows(
    table: Sequence[Mapping[str, str | None]],
    mapping: WikidataMapping,
    image_root: str,
    keep_unmapped: bool = False,
    include_missing_files: bool = False,
) -> ImportResult:
    """Rows from Twitter's WikiData TSV: one person (``human`` Q-id) per image.

    Q-ids map to labels through ``mapping``; rows with an unmapped or blank Q-id are skipped
    (``unmapped_sex_or_gender`` / ``unmapped_ethnic_group``) unless ``keep_unmapped``, which labels
    them ``unmapped``. Rows whose ``file_exists`` is false are skipped unless asked otherwise.
    """
    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    for number, record in enumerate(table, start=1):
        values = {k: _qid((v or "").strip()) for k, v in record.items() if k is not None}
        item = f"row {number} ({values.get('human') or '?'})"
        if not values.get("human") or not values.get("local_path"):
            skipped.append((item, "missing_field"))
            continue
        if not include_missing_files and values.get("file_exists", "").lower() in ("false", "0"):
            skipped.append((item, "file_not_downloaded"))
            continue
        labels = {}
        for column, attribute in (("sex_or_gender", "gender"), ("ethnic_group", "race")):
            label = getattr(mapping, column).get(values.get(column, ""))
            if label is None and not keep_unmapped:
                skipped.append((item, f"unmapped_{column}"))
                break
            labels[attribute] = label or UNMAPPED
        else:
            rel = values["local_path"].lstrip("/")
            row = {
                "image_uri": fileio.join(image_root, rel),
                "image_id": os.path.splitext(_basename(rel))[0],
                "subject_id": values["human"],
                **labels,
                "sex_or_gender": values.get("sex_or_gender", ""),
                "ethnic_group": values.get("ethnic_group", ""),
            }
            if values.get("occupation"):
                row["occupation"] = values["occupation"]
            rows.append(row)
    return _finish(rows, skipped, ("race", "gender"))


def import_wikidata(
    tsv_uri: str,
    image_root: str | None = None,
    mapping_uri: str | None = None,
    keep_unmapped: bool = False,
    include_missing_files: bool = False,
) -> ImportResult:
    """WikiData rows; ``local_path`` is relative to ``image_root``, else to the TSV's folder."""
    table = read_manifest(tsv_uri, "tsv")
    _require(table.columns, WIKIDATA_REQUIRED, tsv_uri)
    root = _absolute(image_root or fileio.dirname(tsv_uri))
    mapping = load_wikidata_mapping(mapping_uri)
    return wikidata_rows(table.rows, mapping, root, keep_unmapped, include_missing_files)


# -- writing ----------------------------------------------------------------------------------


def write_manifest(rows: Sequence[Mapping[str, str | None]], out_uri: str) -> None:
    """Write ``rows`` to ``out_uri`` (local or ``gs://``) in the format its extension names."""
    kind = manifest_format(out_uri)
    columns = list(dict.fromkeys([*ID_COLUMNS, *(k for row in rows for k in row)]))
    if kind == "parquet":
        data = _parquet_bytes(rows, columns)
    elif kind == "jsonl":
        lines = (json.dumps(dict(row), ensure_ascii=False) for row in rows)
        data = "".join(line + "\n" for line in lines).encode("utf-8")
    else:
        cells = [columns, *([row.get(c) or "" for c in columns] for row in rows)]
        data = csv_text(cells, "\t" if kind == "tsv" else ",").encode("utf-8")
    fileio.write_atomic(out_uri, data)


def _parquet_bytes(rows: Sequence[Mapping[str, str | None]], columns: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: pa.array([row.get(c) for row in rows], pa.string()) for c in columns})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# -- helpers ----------------------------------------------------------------------------------


def _finish(rows: list[Row], skipped: list[tuple[str, str]], labels: Sequence[str]) -> ImportResult:
    """Keep one row per image id: repeats with equal labels are ``duplicate_image_id``; an id
    whose rows disagree on a label is dropped whole as ``conflicting_labels`` (no side wins)."""
    by_id: dict[str, list[Row]] = {}
    for row in rows:
        by_id.setdefault(row["image_id"], []).append(row)
    kept = []
    skipped = list(skipped)
    for image_id, group in sorted(by_id.items()):
        if len({tuple(r.get(k) for k in labels) for r in group}) > 1:
            skipped.extend((image_id, "conflicting_labels") for _ in group)
            continue
        kept.append(group[0])
        skipped.extend((image_id, "duplicate_image_id") for _ in group[1:])
    return ImportResult(kept, tuple(skipped))


def _require(columns: Iterable[str], required: Sequence[str], uri: str) -> None:
    missing = [c for c in required if c not in set(columns)]
    if missing:
        raise ManifestError(f"{uri} lacks column(s): {', '.join(missing)}")


def _list_files(folder: str) -> list[str]:
    if not fileio.is_remote(folder) and not os.path.isdir(folder):
        raise UserError(f"folder not found: {folder}")
    return fileio.glob(fileio.join(_absolute(folder), "**"))


def _absolute(uri: str) -> str:
    """Local paths made absolute, so a manifest written elsewhere still finds its images."""
    return uri if fileio.is_remote(uri) else os.path.abspath(uri)


def _basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _qid(value: str) -> str:
    """``http://www.wikidata.org/entity/Q42`` -> ``Q42``; other values unchanged."""
    if value.startswith(("http://www.wikidata.org/entity/", "https://www.wikidata.org/entity/")):
        return value.rsplit("/", 1)[-1]
    return value
