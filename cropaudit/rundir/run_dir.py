"""A run folder (``cropaudit run --out DIR``): its file names, its tables, its summary and the
``_SUCCESS`` marker that makes it a finished run.

A run writes ``survival/`` and ``dead_letter/`` (Parquet part files), then checks what the sinks
published (:meth:`RunDir.summarize`), writes ``config.toml`` and ``run_summary.json`` and, last,
``_SUCCESS`` (:meth:`RunDir.publish`): a folder without it is not a finished run, and a reader
(:meth:`RunDir.verified`) refuses it, and a survival table that differs from the summary's
record of it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cropaudit import fileio, progress
from cropaudit.config import ExperimentConfig
from cropaudit.errors import UserError
from cropaudit.provenance import versions
from cropaudit.rundir import ownership, tablecheck
from cropaudit.rundir.ownership import SUCCESS
from cropaudit.rundir.parquet_folder import (
    column_values,
    iter_batches,
    parquet_bytes,
    part_files,
    read_table,
    table_hash,
)
from cropaudit.schemas import single_survival, survival
from cropaudit.schemas.survival import DEAD_LETTER_SCHEMA
from cropaudit.transforms.write import collapse_duplicates

SUMMARY = "run_summary.json"
CONFIG = "config.toml"
#: The run's tables: each a folder of Parquet part files. A run writes the survival table of its
#: design kind (pairs: ``survival``, single images: ``single_survival``) and the dead letters.
SURVIVAL = survival.TABLE
SINGLE_SURVIVAL = single_survival.TABLE
SURVIVAL_TABLES = (SURVIVAL, SINGLE_SURVIVAL)
DEAD_LETTER = "dead_letter"
TABLES = (*SURVIVAL_TABLES, DEAD_LETTER)
#: What a run folder consists of: ``--overwrite`` replaces these files and keeps others.
RUN_OUTPUT = ownership.OutputKind(
    "run",
    (SUCCESS, SUMMARY, CONFIG, *(f"{t}/part*.parquet" for t in TABLES)),
    tables=TABLES,
)
#: The run's folder inside an output that holds one (``cropaudit demo``: DIR/run, DIR/stats).
INNER_RUN = "run"
#: ``run_summary.json``'s ``status``: the run published survival rows, or none (every composite
#: dead-lettered). A run of no rows is written whole (config, summary, dead letters, the
#: ownership record) but without ``_SUCCESS``: no reader, and no tool that waits for the marker,
#: takes it for a finished run with results, and each says why in one line.
PUBLISHED = "published"
NO_ROWS = "no_survival_rows"
#: Stages whose dead letters stand for a whole composite.
COMPOSITE_STAGES = ("render", "predict")


@dataclass(frozen=True)
class RunDir:
    """A run folder: where its files are, and how they are read, checked and published."""

    root: str

    @classmethod
    def open(cls, path: str) -> RunDir:
        """The run at ``path``, or the run inside it: a folder with no ``_SUCCESS`` of its own
        but a ``run/`` folder is an output that holds a run (``cropaudit demo``'s), so ``report``,
        ``stats`` and the rest accept the folder the demo printed. A path to one of a run's
        survival folders names its run."""
        path = path.rstrip("/") or "/"
        if any(path.endswith((f"/{name}", f"\\{name}")) for name in SURVIVAL_TABLES):
            path = fileio.dirname(path)
        inner = fileio.join(path, INNER_RUN)
        if not fileio.exists(fileio.join(path, SUCCESS)) and fileio.is_folder(inner):
            return cls(inner)
        return cls(path)

    def absolute(self) -> RunDir:
        """This run with an absolute root: as the workers of a cluster see it."""
        return RunDir(fileio.absolute(self.root))

    # -- where things are ---------------------------------------------------------------------

    def folder(self, table: str) -> str:
        """The folder of one of the run's tables (:data:`TABLES`)."""
        return fileio.join(self.root, table)

    def part_prefix(self, table: str) -> str:
        """The file prefix a sink writes ``table``'s part files under."""
        return fileio.join(self.folder(table), "part")

    summary_path = ownership.root_file(SUMMARY)
    config_path = ownership.root_file(CONFIG)
    marker = ownership.root_file(SUCCESS)

    # -- reading ------------------------------------------------------------------------------

    def table(self, name: str) -> pa.Table:
        """One of the run's tables, whole (``UserError`` when it has no part files)."""
        return read_table(self.folder(name))

    @property
    def survival_name(self) -> str:
        """The survival table this run wrote: the one its summary names
        (``survival_table_name``: single-image runs), else the pair table."""
        return _survival_name(self.summary)

    def survival_table(self) -> pa.Table:
        return self.table(self.survival_name)

    def dead_letters(self) -> pa.Table:
        return self.table(DEAD_LETTER)

    def table_files(self, name: str) -> list[str]:
        return part_files(self.folder(name))

    def batches(self, name: str, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        return iter_batches(self.folder(name), columns)

    def composite_ids(self, name: str = SURVIVAL) -> list[str]:
        """The ``composite_id`` column of a published table, read without the other columns."""
        return column_values(self.folder(name), "composite_id")

    def read_summary(self) -> dict:
        """``run_summary.json`` (``FileNotFoundError``, ``ValueError`` as they come)."""
        return json.loads(fileio.read_bytes(self.summary_path))

    @property
    def summary(self) -> dict:
        """``run_summary.json``, or ``{}`` when it is missing or unreadable."""
        try:
            return self.read_summary()
        except (FileNotFoundError, ValueError):
            return {}

    def config_text(self) -> str | None:
        """The saved ``config.toml``, or None when the run has none."""
        if not fileio.exists(self.config_path):
            return None
        return fileio.read_bytes(self.config_path).decode("utf-8")

    # -- finished and verified ----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return fileio.exists(self.marker)

    def require_finished(self) -> RunDir:
        """This run, or a clear error for a run that never completed or published no row."""
        if not self.finished and self.summary.get("status") == NO_ROWS:
            raise UserError(
                f"{self.root} {no_rows_reason(self.summary)} (so no {SUCCESS}); nothing to analyse"
            )
        if not self.finished:
            raise UserError(
                f"{self.root} is not a finished run (no {SUCCESS} marker); its tables may be "
                "partial: wait for the run to complete or rerun it"
            )
        return self

    def verified(self, trust_modified: bool = False) -> list[str]:
        """How the finished run's survival table differs from its summary's record: a
        ``UserError`` naming the differences, unless ``trust_modified`` (the caller records
        them); empty when it matches."""
        return self.verify(trust_modified).differences

    def verify(self, trust_modified: bool = False) -> tablecheck.Check:
        """:meth:`verified`, with the survival table's content hash as read now (what a
        statistics output records, so the report can tell what its estimates came from)."""
        self.require_finished()
        summary = self.summary  # read once
        found = tablecheck.check(
            self.folder(_survival_name(summary)),
            summary.get("survival_table"),
            summary.get("survival_table_sha256"),
        )
        if found.differences and not trust_modified:
            raise UserError(
                f"the survival table of {self.root} does not match its {SUMMARY}: "
                f"{'; '.join(found.differences)}; pass --trust-modified to use it anyway "
                "(outputs record it)"
            )
        if not found.rows:  # an older run of no rows has _SUCCESS
            raise UserError(f"{self.root} {no_rows_reason(summary)}; nothing to analyse")
        return found

    # -- writing ------------------------------------------------------------------------------

    def check_writable(self, *, overwrite: bool, command: str) -> None:
        """The ``UserError`` :meth:`writing` would raise, now, changing nothing."""
        ownership.check_writable(self.root, RUN_OUTPUT, overwrite=overwrite, command=command)

    def writing(self, *, overwrite: bool, config_hash: str, command: str):
        """Lock the folder, claim it for a run, remove temporary files however the block ends
        (:func:`ownership.writing`)."""
        return ownership.writing(
            self.root, RUN_OUTPUT, overwrite=overwrite, config_hash=config_hash, command=command
        )

    def remove_duplicate_rows(self, config_hash: str, table_name: str = SURVIVAL) -> int:
        """Rows of the published survival table ``table_name`` that share a composite id
        collapse to one, and a copy that differs becomes a dead letter
        (:func:`collapse_duplicates`); returns the rows removed. Beam discards a failed bundle's
        output, so copies are rare (an at-least-once sink, a non-deterministic stage): checking
        after the write reads only the id column and keeps every runner's memory flat, where a
        GroupByKey over whole rows would hold them all."""
        ids = self.composite_ids(table_name)
        if len(ids) == len(set(ids)):
            return 0
        table = self.table(table_name)
        by_id: dict[str, list[dict]] = {}
        for row in table.to_pylist():
            by_id.setdefault(row["composite_id"], []).append(row)
        kept, dead = [], []
        for cid, rows in sorted(by_id.items()):
            for kind, item in collapse_duplicates(cid, rows):
                (kept if kind == "row" else dead).append(item)
        unique = pa.Table.from_pylist(kept, schema=table.schema)
        old = self.table_files(table_name)
        target = fileio.join(self.folder(table_name), "part-deduplicated.parquet")
        fileio.write_atomic(target, parquet_bytes(unique))
        for f in old:
            fileio.delete_tree(f)
        if dead:
            letters = pa.Table.from_pylist(
                [d.to_row(config_hash) for d in dead], schema=DEAD_LETTER_SCHEMA
            )
            name = fileio.join(self.folder(DEAD_LETTER), "part-duplicates.parquet")
            fileio.write_atomic(name, parquet_bytes(letters))
        return len(ids) - unique.num_rows

    def summarize(
        self,
        config: ExperimentConfig,
        expected: int,
        suffixes: Sequence[str] = ("",),
        table: str = SURVIVAL,
        **extra,
    ) -> dict:
        """What the sinks actually published, checked against the design. ``suffixes``: what
        each cropper appends to composite ids (one per cropper); a composite that failed to
        render is lost to each of them. ``table``: the design kind's survival table; a
        single-image run's summary names it (``survival_table_name``)."""
        dead_rows = self.dead_letters().to_pylist()
        ids: list[str] = []

        def batches() -> Iterator[pa.RecordBatch]:  # ids and hash from one read of the table
            for batch in self.batches(table):
                ids.extend(batch.column("composite_id").to_pylist())
                yield batch

        table_sha256 = table_hash(batches())
        duplicates = len(ids) - len(set(ids))
        composite_dead = {
            d["element_id"] + s
            for d in dead_rows
            if d["stage"] in COMPOSITE_STAGES
            for s in (suffixes if d["stage"] == "render" else ("",))
        }
        return {
            "config_name": config.name,
            "config_hash": config.config_hash,
            "composites_expected": expected,
            "survival_rows": len(ids),
            "duplicate_composite_ids": duplicates,
            "composites_dead_lettered": len(composite_dead),
            "all_composites_accounted": len(set(ids)) + len(composite_dead) == expected
            and not composite_dead & set(ids),
            "dead_letters_by_stage_reason": dict(
                sorted(Counter(f"{d['stage']}/{d['reason']}" for d in dead_rows).items())
            ),
            "status": PUBLISHED if ids else NO_ROWS,
            "survival_table_sha256": table_sha256,
            "survival_table": tablecheck.describe(self.folder(table), table_sha256),
            **({} if table == SURVIVAL else {"survival_table_name": table}),
            "versions": versions(),
            **extra,
        }

    def publish(self, config: ExperimentConfig, summary: dict) -> None:
        """Write the config, the summary and, last, ``_SUCCESS`` (not for a run of no rows:
        :data:`NO_ROWS`); record the run's files as its own (inside :meth:`writing`)."""
        fileio.write_atomic(self.config_path, config.to_toml().encode())
        fileio.write_atomic(
            self.summary_path, json.dumps(summary, indent=2, sort_keys=True).encode()
        )
        if summary.get("status") != NO_ROWS:
            fileio.write_atomic(self.marker, b"")
        ownership.finish(self.root, RUN_OUTPUT, config.config_hash)


def _survival_name(summary: dict) -> str:
    return summary.get("survival_table_name") or SURVIVAL


def no_rows_reason(summary: dict, top: int = 3) -> str:
    """Why a run published no survival row, in one line: its counts and its commonest dead
    letters."""
    reasons = sorted(
        (summary.get("dead_letters_by_stage_reason") or {}).items(), key=lambda kv: (-kv[1], kv[0])
    )
    said = ", ".join(f"{reason} {n}" for reason, n in reasons[:top]) or "none recorded"
    return (
        f"published no survival row: {summary.get('composites_dead_lettered', '?')} of "
        f"{summary.get('composites_expected', '?')} composites dead-lettered "
        f"(top reasons: {said}); its dead letters and {SUMMARY} say why"
    )


def format_summary(summary: dict, out_dir: str) -> str:
    """The lines ``cropaudit run`` prints about a published run."""
    lines = [
        f"run {summary['config_name']} ({summary['config_hash'][:12]}) -> {out_dir}",
        f"  composites: {summary['composites_expected']} planned, "
        f"{summary['survival_rows']} in the survival table, "
        f"{summary['composites_dead_lettered']} dead-lettered",
        f"  plan: {summary.get('plan', '?')}",
        f"  manifest: {summary['manifest_faces']} faces, "
        f"{summary['manifest_dead_lettered']} rows dead-lettered",
    ]
    for reason, n in summary["dead_letters_by_stage_reason"].items():
        lines.append(f"    dead letter {reason}: {n}")
    for m in summary.get("models") or [summary["model"]]:
        lines.append(f"  model: {m['model_name']} {m['model_hash'][:12]}")
    lines.append(f"  survival table sha256: {summary['survival_table_sha256']}")
    if summary.get("beam_counters"):
        lines.append(f"  Beam counters: {progress.format_counters(summary['beam_counters'])}")
    lines.append(f"  {summary['seconds']} s on {summary['runner']}")
    return "\n".join(lines)


def write_run_dir(
    tables: pa.Table | Sequence[pa.Table], run_dir: str | Path, success: bool = True
) -> Path:
    """A finished-looking run directory: ``survival/part-N.parquet`` per table,
    ``_SUCCESS`` (for tests and benchmarks of readers: synthetic tables written as a run would)."""
    run = Path(run_dir)
    (run / SURVIVAL).mkdir(parents=True, exist_ok=True)
    (run / DEAD_LETTER).mkdir(exist_ok=True)
    if isinstance(tables, pa.Table):
        tables = [tables]
    for i, table in enumerate(tables):
        pq.write_table(table, run / SURVIVAL / f"part-{i:05d}.parquet", compression="zstd")
    sha256 = table_hash(read_table(str(run / SURVIVAL)))
    summary = {
        "survival_table": tablecheck.describe(str(run / SURVIVAL), sha256),
        "survival_table_sha256": sha256,
    }
    (run / SUMMARY).write_text(json.dumps(summary))
    if success:
        (run / SUCCESS).write_text("")
    return run
