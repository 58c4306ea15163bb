"""A Parquet table folder checked against what its writer recorded.

The run summary records, for its survival table, every part file (its row count, the sha256
of its bytes and of its key-value metadata), the table's schema (columns and types), and a
``seal``: the sha256 of that record together with the table's own content hash
(``survival_table_sha256``, beside it). A reader compares the folder with that record before
using it: a copied-in part (every n doubled), a removed part or rows, an edited value (a flipped
winner), edited metadata or a changed column type would otherwise pass unnoticed and change a
published number; and the seal ties the two records together, so that an edit of a part's
recorded sha256 to match an edited part, or of the table hash alone, is refused too. A folder
whose parts all match a sealed record is checked from the bytes alone (no row is read); rows are
hashed only when a part's bytes differ, or for a record without a seal (an older cropaudit).

Identity is the table's content (:func:`~cropaudit.rundir.parquet_folder.table_hash`: the
same rows in any order, sharding, encoding or compression), its schema (a list's item field
name aside) and its metadata: a part rewritten with the same rows (re-encoded, recompressed,
rows reordered) is the same table and passes; what differs otherwise is said in words (values,
metadata only, rows, columns, the record). The caller refuses the table unless the user passed
``--trust-modified``, and then records it.
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
    """One part file as read now: its record (name, rows, sha256 of bytes and metadata), its
    schema, and its bytes (rows are hashed only when needed: :meth:`digests`)."""

    record: dict
    schema: list[list[str]]
    data: bytes

    def digests(self) -> list[bytes]:
        reader = pq.ParquetFile(pa.BufferReader(self.data))
        return row_digests(reader.iter_batches()) if reader.num_row_groups else []


def _metadata_hash(schema: pa.Schema) -> str:
    meta = {k.decode(errors="replace"): v.hex() for k, v in (schema.metadata or {}).items()}
    meta.pop("ARROW:schema", None)  # how a writer encodes the schema, not what it says
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()


def _parts(folder: str) -> list[Part]:
    """Every part file in ``folder``, read to its footer."""
    found = []
    for path in fileio.glob(fileio.join(folder, "*.parquet")):
        data = fileio.read_bytes(path)
        try:
            reader = pq.ParquetFile(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{path} is not a readable Parquet file: {first_line(exc)}") from None
        schema = reader.schema_arrow
        record = {
            "name": path.replace("\\", "/").rsplit("/", 1)[-1],
            "rows": reader.metadata.num_rows,
            "sha256": hashlib.sha256(data).hexdigest(),
            "metadata_sha256": _metadata_hash(schema),
        }
        found.append(Part(record, schema_record(schema), data))
    return found


def _seal(record: dict, table_sha256: str | None) -> str:
    """What ties a part record to the table hash beside it."""
    body = {k: record.get(k) for k in ("parts", "rows", "schema")}
    text = json.dumps({**body, "survival_table_sha256": table_sha256}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def describe(folder: str, table_sha256: str) -> dict:
    """The record of the table in ``folder`` (parts, rows, schema), sealed with its content
    hash ``table_sha256`` (which the summary records beside it)."""
    parts = _parts(folder)
    record = {
        "parts": [p.record for p in parts],
        "rows": sum(p.record["rows"] for p in parts),
        "schema": parts[0].schema if parts else [],
    }
    return {**record, "seal": _seal(record, table_sha256)}


@dataclass(frozen=True)
class Check:
    """A table folder compared with its record: what differs (empty: the same table), the
    table's content hash (as recorded when the bytes match a sealed record, else as read) and
    its rows."""

    differences: list[str]
    table_sha256: str
    rows: int


def check(folder: str, recorded: dict | None, table_sha256: str | None) -> Check:
    """How the table in ``folder`` differs from ``recorded`` (its part record) and from
    ``table_sha256`` (its content hash), both as the run summary holds them. The same rows as
    recorded (equal table hash) leave only the schema and the parts' metadata to compare."""
    parts = _parts(folder)
    rows = sum(p.record["rows"] for p in parts)
    if not recorded or "parts" not in recorded:
        found = ["the run summary records no part files for this table (an older cropaudit?)"]
        return Check(found, _content_hash(parts), rows)
    before = {p["name"]: p for p in recorded["parts"]}
    sealed = SEAL in recorded
    if sealed and recorded[SEAL] != _seal(recorded, table_sha256):
        found = [
            f"its record of the parts and its survival_table_sha256 do not agree (the {SEAL} "
            "does not match): the summary was edited"
        ]
        return Check(found, _content_hash(parts), rows)
    same_bytes = {p.record["name"]: p.record["sha256"] for p in parts} == {
        n: b["sha256"] for n, b in before.items()
    }
    if sealed and same_bytes:  # the parts the run wrote, byte for byte: no row to read
        return Check([], str(table_sha256), rows)
    now = _content_hash(parts)
    found = [] if now == table_sha256 else _row_differences(parts, recorded, before)
    if now != table_sha256 and (not found or any(f.endswith(REWRITTEN) for f in found)):
        found.append(
            f"its rows hash to {now[:12]}, not to the survival_table_sha256 its summary records "
            f"({table_sha256[:12]})"
            if table_sha256
            else "the run summary records no survival_table_sha256"
        )
    found += _schema_differences(parts, recorded)
    what = "only (the rows are unchanged)" if now == table_sha256 else "too"
    found += [
        f"{p.record['name']} was modified: its Parquet metadata {what}"
        for p in parts
        if before.get(p.record["name"], {}).get("metadata_sha256", p.record["metadata_sha256"])
        != p.record["metadata_sha256"]
    ]
    return Check(found, now, rows)


#: The field of a part record that ties it to the table hash (:func:`describe`).
SEAL = "seal"
REWRITTEN = "was rewritten (same row count)"


def _content_hash(parts: list[Part]) -> str:
    return digests_hash(d for p in parts for d in p.digests())


def _row_differences(parts: list[Part], recorded: dict, before: dict[str, dict]) -> list[str]:
    """Which parts hold other rows than the run wrote (added, missing, fewer, changed)."""
    found = []
    after = {p.record["name"]: p.record for p in parts}
    for name in sorted(after.keys() - before.keys()):
        found.append(f"{name} ({after[name]['rows']} rows) is not a part the run wrote")
    for name in sorted(before.keys() - after.keys()):
        found.append(f"{name} ({before[name]['rows']} rows) is missing")
    rewritten = []
    for name in sorted(before.keys() & after.keys()):
        b, a = before[name], after[name]
        if b["rows"] != a["rows"]:
            found.append(f"{name} has {a['rows']} rows, the run wrote {b['rows']}")
        elif b["sha256"] != a["sha256"]:
            rewritten.append(name)
    if len(rewritten) == 1:  # the table's rows differ, and only this part changed
        found.append(f"{rewritten[0]} was modified: row values differ (same row count)")
    elif rewritten:  # which of them holds other rows, the record does not say
        found += [f"{name} {REWRITTEN}" for name in rewritten]
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
