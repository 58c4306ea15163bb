"""A Parquet table folder checked against what its writer recorded.

The run summary records, for its survival table, every part file with its row count and the
sha256 of its bytes, and the table's schema (columns and types, metadata aside). A reader
compares the folder with that record before using it: a copied-in part (every n doubled), a
removed part or rows, an edited value (a flipped winner) or a changed column type would
otherwise pass unnoticed and change a published number. What differs is said in words; the
caller refuses the table unless the user passed ``--trust-modified``, and then records it.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq

from cropaudit import fileio


def schema_record(schema: pa.Schema) -> list[list[str]]:
    return [[f.name, str(f.type)] for f in schema]


def _parts(folder: str) -> list[tuple[dict, list[list[str]]]]:
    """(name, rows, sha256) and schema of every part file in ``folder``."""
    found = []
    for path in fileio.glob(fileio.join(folder, "*.parquet")):
        data = fileio.read_bytes(path)
        meta = pq.read_metadata(pa.BufferReader(data))
        part = {
            "name": path.replace("\\", "/").rsplit("/", 1)[-1],
            "rows": meta.num_rows,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        found.append((part, schema_record(meta.schema.to_arrow_schema())))
    return found


def describe(folder: str) -> dict:
    """The record of the table in ``folder``: parts (name, rows, sha256), rows, schema."""
    parts = _parts(folder)
    return {
        "parts": [p for p, _ in parts],
        "rows": sum(p["rows"] for p, _ in parts),
        "schema": parts[0][1] if parts else [],
    }


def differences(folder: str, recorded: dict | None) -> list[str]:
    """How the table in ``folder`` differs from ``recorded`` (empty: it matches)."""
    if not recorded or "parts" not in recorded:
        return ["the run summary records no part files for this table (an older cropaudit?)"]
    parts = _parts(folder)
    found = []
    before = {p["name"]: p for p in recorded["parts"]}
    after = {p["name"]: p for p, _ in parts}
    for name in sorted(after.keys() - before.keys()):
        found.append(f"{name} ({after[name]['rows']} rows) is not a part the run wrote")
    for name in sorted(before.keys() - after.keys()):
        found.append(f"{name} ({before[name]['rows']} rows) is missing")
    for name in sorted(before.keys() & after.keys()):
        b, a = before[name], after[name]
        if b["rows"] != a["rows"]:
            found.append(f"{name} has {a['rows']} rows, the run wrote {b['rows']}")
        elif b["sha256"] != a["sha256"]:
            found.append(f"{name} was modified (same row count, different content)")
    rows = sum(a["rows"] for a in after.values())
    if rows != recorded.get("rows"):
        found.append(f"the table has {rows} rows, the run wrote {recorded.get('rows')}")
    was = dict(map(tuple, recorded.get("schema") or []))
    for part, schema in parts:
        now = dict(map(tuple, schema))
        changes = [f"column {c} ({t}) was added" for c, t in now.items() if c not in was]
        changes += [
            f"column {c} is {t}, the run wrote {was[c]}"
            for c, t in now.items()
            if c in was and was[c] != t
        ]
        changes += [f"column {c} was removed" for c in was if c not in now]
        found.extend(f"{part['name']}: {c}" for c in changes)
    return found
