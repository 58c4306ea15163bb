"""A Parquet table folder checked against what its writer recorded.

The run summary records, for its survival table, every part file (its row count, the sha256
of its bytes, of its rows and of its key-value metadata), the table's schema (columns and
types, metadata aside) and, beside it, the table's own content hash
(``survival_table_sha256``). A reader compares the folder with that record before using it: a
copied-in part (every n doubled), a removed part or rows, an edited value (a flipped winner) or
a changed column type would otherwise pass unnoticed and change a published number, and an edit
of a part's recorded sha256 to match an edited part still fails the table hash.

Identity is the table's content (:func:`~cropaudit.rundir.parquet_folder.table_hash`: the
same rows in any order, sharding, encoding or compression), its schema and its metadata: a
part rewritten with the same rows (re-encoded, recompressed, rows reordered) is the same table
and passes; what differs otherwise is said in words (values, metadata only, rows, columns). The
caller refuses the table unless the user passed ``--trust-modified``, and then records it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from cropaudit import fileio
from cropaudit.errors import UserError, first_line
from cropaudit.rundir.parquet_folder import digests_hash, row_digests


def schema_record(schema: pa.Schema) -> list[list[str]]:
    return [[f.name, str(f.type)] for f in schema]


def _same_type(a: str, b: str) -> bool:
    """Whether two recorded column types are one type: the name of a list's item field is how
    a writer encodes lists (Beam's sink: ``item``; pyarrow's compliant default: ``element``)."""
    return _LIST_ITEM.sub("list<", a) == _LIST_ITEM.sub("list<", b)


_LIST_ITEM = re.compile(r"list<(?:item|element): ")


@dataclass(frozen=True)
class Part:
    """One part file as read now: its record, schema, and its rows' digests in file order."""

    record: dict
    schema: list[list[str]]
    digests: list[bytes]


def _metadata_hash(schema: pa.Schema) -> str:
    meta = {k.decode(errors="replace"): v.hex() for k, v in (schema.metadata or {}).items()}
    meta.pop("ARROW:schema", None)  # how a writer encodes the schema, not what it says
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()


def _parts(folder: str) -> list[Part]:
    """Every part file in ``folder``: name, rows, the sha256 of its bytes, of its rows (order
    aside: ``content_sha256``) and of its key-value metadata; schema; row digests."""
    found = []
    for path in fileio.glob(fileio.join(folder, "*.parquet")):
        data = fileio.read_bytes(path)
        try:
            reader = pq.ParquetFile(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{path} is not a readable Parquet file: {first_line(exc)}") from None
        schema = reader.schema_arrow
        digests = row_digests(reader.iter_batches()) if reader.num_row_groups else []
        record = {
            "name": path.replace("\\", "/").rsplit("/", 1)[-1],
            "rows": reader.metadata.num_rows,
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_sha256": digests_hash(digests),
            "metadata_sha256": _metadata_hash(schema),
        }
        found.append(Part(record, schema_record(schema), digests))
    return found


def describe(folder: str) -> dict:
    """The record of the table in ``folder``: parts (name, rows, sha256s), rows, schema."""
    parts = _parts(folder)
    return {
        "parts": [p.record for p in parts],
        "rows": sum(p.record["rows"] for p in parts),
        "schema": parts[0].schema if parts else [],
    }


@dataclass(frozen=True)
class Check:
    """A table folder compared with its record: what differs (empty: the same table) and the
    table's content hash as it is now."""

    differences: list[str]
    table_sha256: str
    rows: int


def check(folder: str, recorded: dict | None, table_sha256: str | None) -> Check:
    """How the table in ``folder`` differs from ``recorded`` (its part record) and from
    ``table_sha256`` (its content hash), both as the run summary holds them. The same rows as
    recorded (equal table hash) leave only the schema and the parts' metadata to compare."""
    parts = _parts(folder)
    now = digests_hash(d for p in parts for d in p.digests)
    rows = sum(p.record["rows"] for p in parts)
    if not recorded or "parts" not in recorded:
        found = ["the run summary records no part files for this table (an older cropaudit?)"]
        return Check(found, now, rows)
    before = {p["name"]: p for p in recorded["parts"]}
    found = [] if now == table_sha256 else _row_differences(parts, recorded, before)
    if not found and now != table_sha256:
        found.append(
            f"its rows hash to {now[:12]}, not to the survival_table_sha256 its summary records "
            f"({table_sha256[:12]}): values were changed and the part record edited to match"
            if table_sha256
            else "the run summary records no survival_table_sha256"
        )
    found += _schema_differences(parts, recorded)
    found += [
        f"{p.record['name']} was modified: its Parquet metadata only (the rows are unchanged)"
        for p in parts
        if before.get(p.record["name"], {}).get("metadata_sha256", p.record["metadata_sha256"])
        != p.record["metadata_sha256"]
    ]
    return Check(found, now, rows)


def _row_differences(parts: list[Part], recorded: dict, before: dict[str, dict]) -> list[str]:
    """Which parts hold other rows than the run wrote (added, missing, fewer, changed)."""
    found = []
    after = {p.record["name"]: p.record for p in parts}
    for name in sorted(after.keys() - before.keys()):
        found.append(f"{name} ({after[name]['rows']} rows) is not a part the run wrote")
    for name in sorted(before.keys() - after.keys()):
        found.append(f"{name} ({before[name]['rows']} rows) is missing")
    for name in sorted(before.keys() & after.keys()):
        b, a = before[name], after[name]
        if b["rows"] != a["rows"]:
            found.append(f"{name} has {a['rows']} rows, the run wrote {b['rows']}")
        elif b.get("content_sha256", a["content_sha256"]) != a["content_sha256"]:
            found.append(f"{name} was modified: row values differ (same row count)")
        elif "content_sha256" not in b and b["sha256"] != a["sha256"]:  # an older record
            found.append(f"{name} was modified (same row count, different content)")
    rows = sum(a["rows"] for a in after.values())
    if rows != recorded.get("rows"):
        found.append(f"the table has {rows} rows, the run wrote {recorded.get('rows')}")
    return found


def _schema_differences(parts: list[Part], recorded: dict) -> list[str]:
    found = []
    was = dict(map(tuple, recorded.get("schema") or []))
    for part in parts:
        now = dict(map(tuple, part.schema))
        changes = [f"column {c} ({t}) was added" for c, t in now.items() if c not in was]
        changes += [
            f"column {c} is {t}, the run wrote {was[c]}"
            for c, t in now.items()
            if c in was and not _same_type(was[c], t)
        ]
        changes += [f"column {c} was removed" for c in was if c not in now]
        found.extend(f"{part.record['name']}: {c}" for c in changes)
    return found
