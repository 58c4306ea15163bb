"""A folder of Parquet part files read as one table: whole, batch by batch, one column, or as an
order- and sharding-independent content hash.

Beam's sinks write a table as ``FOLDER/part-*.parquet`` shards (some possibly empty); every reader
of a run or statistics folder goes through these functions, so "the table" means the same thing
to the run's summary, the statistics stage, the report and the tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.schemas.table_rows import CODEC, canonical_row


def part_files(folder: str) -> list[str]:
    """The Parquet part files of the table in ``folder``, sorted."""
    return fileio.glob(fileio.join(folder, "*.parquet"))


def read_table(folder: str) -> pa.Table:
    """All Parquet parts under ``folder`` as one table (empty parts included)."""
    files = part_files(folder)
    if not files:
        raise UserError(f"no Parquet files under {folder}")
    tables = [pq.read_table(pa.BufferReader(fileio.read_bytes(f))) for f in files]
    return pa.concat_tables(tables).combine_chunks()


def iter_batches(folder: str, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The record batches of every Parquet part under ``folder``, one file in memory at a time."""
    for f in part_files(folder):
        part = pq.ParquetFile(pa.BufferReader(fileio.read_bytes(f)))
        if part.num_row_groups:  # a part with no rows (every composite dead-lettered) has none
            yield from part.iter_batches(batch_size=4096, columns=columns)


def column_values(folder: str, column: str) -> list:
    """One column of the table in ``folder``, read without the others."""
    return [v for b in iter_batches(folder, [column]) for v in b.column(0).to_pylist()]


def row_digests(table: pa.Table | Iterable[pa.RecordBatch]) -> list[bytes]:
    """The sha256 of every row's canonical text, in table order."""
    batches = table.to_batches() if isinstance(table, pa.Table) else table
    return [
        hashlib.sha256(canonical_row(row).encode()).digest()
        for batch in batches
        for row in batch.to_pylist()
    ]


def digests_hash(digests: Iterable[bytes]) -> str:
    """The table hash of rows with these digests (:func:`table_hash`)."""
    return hashlib.sha256(b"".join(sorted(digests))).hexdigest()


def table_hash(table: pa.Table | Iterable[pa.RecordBatch]) -> str:
    """Order- and sharding-independent content hash of a table, metadata ignored: sha256 over
    the sorted per-row digests, so it streams batch by batch (32 bytes held per row). Two
    tables are the same table when their hashes are equal: same rows, whatever their order,
    sharding, encoding or compression."""
    return digests_hash(row_digests(table))


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as one Parquet file (the sinks' codec), for :func:`fileio.write_atomic`."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=CODEC)
    return sink.getvalue().to_pybytes()
