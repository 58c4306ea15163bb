"""How the project's tables are stored and their rows compared, for writers and readers alike:
the Parquet codec every table uses, and the canonical text of a row that duplicate checks and
content hashes are built on."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

#: Parquet compression of every table the project writes (Beam's sink defaults to none).
CODEC = "zstd"


@dataclass(frozen=True)
class TableSpec:
    """A row table of a run directory: its folder, the version its files' metadata records, and
    its schema (one per design kind, defined beside the schema)."""

    name: str
    version: str
    schema: pa.Schema


def canonical_row(row: dict) -> str:
    """A row as canonical JSON: equal rows, equal text (duplicate checks, content hashes)."""
    return json.dumps(row, sort_keys=True, default=str)
