"""Statistics stage: survival tables -> estimates table, plots and an HTML report.

Pair strata read the pair tables (``survival``); the single-image tables (``single_survival``)
give the face/body rates of :mod:`cropaudit.stats.gaze` (``face_rates.parquet``). A run of either
kind, or several runs of both, go in together.

Thin Beam wrapper around :mod:`cropaudit.stats`: rows are keyed by stratum (model, layout,
preprocessing, design, criterion, comparison) and a CombineFn streams the multiway bootstrap's
sufficient statistics (per-replicate weighted wins, per-subject wins for the jackknife, per-cell
wins for the bootstrap variance correction, see :mod:`cropaudit.stats.bootstrap`). Weights
are a pure function of (seed, subject, replicate), and all sums are exact integers, so the result
does not depend on the runner, sharding or order. The few per-stratum rows are then gathered once
to adjust p-values within their families (Holm, Benjamini-Hochberg; ``p_family``) and to record
which criteria have identical winners row for row (:mod:`cropaudit.stats.winners`, computed on a
branch of the same read); the findings (``findings.json``) are then read off the estimates.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from cropaudit import fileio
from cropaudit.config import AnalysisConfig
from cropaudit.errors import UserError, first_line
from cropaudit.pipelines.runners import pipeline, pipeline_options
from cropaudit.rundir.run_dir import SURVIVAL_TABLES, RunDir
from cropaudit.rundir.stats_dir import StatsDir
from cropaudit.schemas import single_survival, survival
from cropaudit.schemas.criteria import POINT, criterion_name
from cropaudit.schemas.estimates import ESTIMATES_SCHEMA, KEY_FIELDS
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.stats.bootstrap import CORRECTIONS, POSITION_CODE, SufficientStats
from cropaudit.stats.findings import Finding, findings_json
from cropaudit.stats.mixed import MAX_COMPOSITES, model_check
from cropaudit.stats.stratum import estimate_stratum
from cropaudit.stats.tests_multiple import adjust_rows
from cropaudit.stats.weights import WeightCache
from cropaudit.stats.winners import (
    WinnerIdentity,
    codes,
    criterion_outcomes,
    identical_criteria,
)

#: Survival columns the stage reads (projection keeps face attributes etc. on disk).
COLUMNS = (
    "design",
    "group_a",
    "group_b",
    "position",
    "a_subject_id",
    "b_subject_id",
    "layout",
    "layout_params",
    "model_name",
    "model_hash",
    "preprocessing",
    "variant",
    "point_winner",
    "crops",
    "seed",
    "config_hash",
    "versions",
)
SWAP = np.array([1, 0, 2, 3])  # outcome codes seen from face b: a<->b, tie/background stay
PROVENANCE = {"config_hash": "config_hashes", "seed": "survival_seeds", "versions": "versions"}
#: Key prefixes: up to ``design`` (a design's strata) and up to ``criterion``.
DESIGN_FIELDS = KEY_FIELDS[: KEY_FIELDS.index("design") + 1]
CRITERION_FIELDS = KEY_FIELDS[: KEY_FIELDS.index("criterion") + 1]
#: Estimates file metadata: the survival tables used although they differ from their run
#: summaries (``--trust-modified``), run -> what differs.
UNVERIFIED_KEY = "cropaudit.unverified_inputs"
#: Estimates metadata: run -> the content hash of the survival table they were computed from.
TABLES_KEY = "cropaudit.survival_tables_sha256"


@dataclass(frozen=True)
class StatsOptions:
    """Options of one statistics run (recorded in every estimates row)."""

    replicates: int = 1000
    level: float = 0.95
    criteria: tuple[str, ...] | None = None
    seed: int = 0
    bootstrap_correction: str = "cgm"
    model_max: int = MAX_COMPOSITES

    def __post_init__(self) -> None:
        if self.model_max < 0:
            raise UserError("--model-max must be 0 (no model cross-check) or more")
        if self.replicates < 2:
            raise UserError("--replicates must be at least 2")
        if self.bootstrap_correction not in CORRECTIONS:
            raise UserError(f"--bootstrap-correction must be one of {', '.join(CORRECTIONS)}")
        if not 0.0 < self.level < 1.0:
            raise UserError("--level must be between 0 and 1")


class RowBatch(NamedTuple):
    """Rows of one stratum, columnar; outcome/position are integer codes."""

    a_subject: np.ndarray
    b_subject: np.ndarray
    position: np.ndarray
    outcome: np.ndarray
    provenance: dict[str, set[str]]


def row_outcomes(row: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(criterion, winner) pairs of one survival row: the salient point (none for a box-only
    cropper) and every crop."""
    if row["point_winner"] is not None:
        yield POINT, row["point_winner"]
    for crop in row["crops"] or ():
        yield criterion_name(crop["aspect_ratio"]), crop["winner"]


#: Rows per element once read: a survival row group can hold a million rows, and slices are
#: what the workers share; each slice's batch costs a lookup of its subjects (1 << 16 made that
#: a sixth of the stage).
SLICE_ROWS = 1 << 18


def prepare(table: pa.Table) -> Iterator[pa.Table]:
    """Slices of a survival table (one read row group) without the single-image rows that
    survival/v3 and v4 tables may hold (those have no pair: stats.gaze reads single_survival);
    tables written before sweeps existed (survival/v1) have no ``variant`` column and read as
    variant ``base``."""
    if "variant" not in table.column_names:
        table = table.append_column(
            "variant", pa.array([BASE_VARIANT] * table.num_rows, pa.string())
        )
    single = pc.not_equal(table["design"], single_survival.SINGLE)
    keep = np.flatnonzero(single.to_numpy(zero_copy_only=False))
    for start in range(0, len(keep), SLICE_ROWS):
        # ``take`` copies: a zero-copy slice would pickle its whole parent row group.
        yield table.take(pa.array(keep[start : start + SLICE_ROWS]))


def table_groups(table: pa.Table) -> Iterator[tuple[tuple[str, ...], set[str]]]:
    """(design key, groups seen) of a table, to find designs with more than two groups."""
    sides = [table.select([*DESIGN_FIELDS, f"group_{s}"]).rename_columns([*DESIGN_FIELDS, "g"])
             for s in ("a", "b")]  # fmt: skip
    seen = pa.concat_tables(sides).group_by(list(DESIGN_FIELDS)).aggregate([("g", "distinct")])
    for row in seen.to_pylist():
        yield tuple(row[f] for f in DESIGN_FIELDS), set(row["g_distinct"])


def key_table(
    table: pa.Table,
    criteria: tuple[str, ...] | None,
    groups: dict[tuple[str, ...], set[str]] | None = None,
) -> Iterator[tuple[tuple[str, ...], RowBatch]]:
    """Columnarise a survival table into one :class:`RowBatch` per stratum.

    Every row goes to its ``pair`` stratum. In designs with more than two groups (per
    ``groups``; all designs when it is None) rows of two different groups also go to one
    ``group_vs_rest`` stratum per group, seen from that group's face.
    """
    if table.num_rows == 0:
        return
    fields = [*DESIGN_FIELDS, "group_a", "group_b"]
    frame = pd.DataFrame({f: table[f].to_numpy(zero_copy_only=False) for f in fields})
    stratum = frame.groupby(fields, sort=False).ngroup().to_numpy()
    keys = frame.drop_duplicates(fields).itertuples(index=False, name=None)  # ngroup order
    keys = list(keys)
    a_subj = table["a_subject_id"].to_numpy(zero_copy_only=False).astype(object)
    b_subj = table["b_subject_id"].to_numpy(zero_copy_only=False).astype(object)
    pos = codes(table["position"], POSITION_CODE, "position")
    prov_cols = {name: table[name].to_numpy(zero_copy_only=False) for name in PROVENANCE}
    for criterion, rows, outcome in criterion_outcomes(table):
        if criteria is not None and criterion not in criteria:
            continue
        order = np.argsort(stratum[rows], kind="stable")
        rows, outcome = rows[order], outcome[order]
        bounds = np.flatnonzero(np.diff(stratum[rows])) + 1
        for r, o in zip(np.split(rows, bounds), np.split(outcome, bounds), strict=True):
            key = keys[stratum[r[0]]]
            base, (ga, gb) = key[:-2], key[-2:]
            prov = {name: {str(v) for v in pd.unique(col[r])} for name, col in prov_cols.items()}
            sa, sb, p = a_subj[r], b_subj[r], pos[r]
            yield (*base, criterion, "pair", ga, gb), RowBatch(sa, sb, p, o, prov)
            if (groups is None or len(groups.get(base, ())) > 2) and ga != gb:
                yield (*base, criterion, "group_vs_rest", ga, "rest"), RowBatch(sa, sb, p, o, prov)
                swapped = RowBatch(sb, sa, 1 - p, SWAP[o], prov)
                yield (*base, criterion, "group_vs_rest", gb, "rest"), swapped


class BootstrapCombineFn(beam.CombineFn):
    """Streams one stratum's bootstrap sufficient statistics; outputs its estimates."""

    def __init__(self, options: StatsOptions) -> None:
        self.options = options
        self._cache: WeightCache | None = None

    def _weights(self) -> WeightCache:
        if self._cache is None:
            self._cache = WeightCache(self.options.replicates, self.options.seed)
        return self._cache

    def create_accumulator(self) -> SufficientStats:
        return SufficientStats(self.options.replicates)

    def add_input(self, acc: SufficientStats, batch: RowBatch) -> SufficientStats:
        acc.add_batch(
            batch.a_subject, batch.b_subject, batch.position, batch.outcome, self._weights()
        )
        for name, values in batch.provenance.items():
            acc.provenance.setdefault(name, set()).update(values)
        return acc

    def merge_accumulators(self, accumulators: Iterable[SufficientStats]) -> SufficientStats:
        it = iter(accumulators)
        first = next(it)
        for acc in it:
            first.merge(acc)
        return first

    def extract_output(self, acc: SufficientStats) -> dict[str, Any]:
        acc.use_weights(self._weights())  # replicate sums: once per stratum, here
        est = estimate_stratum(acc, self.options.level, self.options.bootstrap_correction)
        est.update(model_check(acc, est, self.options.level, self.options.model_max))
        for name, column in PROVENANCE.items():
            est[column] = sorted(acc.provenance.get(name, ()))
        return est


def to_row(key: tuple[str, ...], est: dict[str, Any], options: StatsOptions) -> dict[str, Any]:
    row = dict(zip(KEY_FIELDS, key, strict=True))
    row.update(est)
    row.update(replicates=options.replicates, level=options.level, seed=options.seed)
    row["bootstrap_correction"] = options.bootstrap_correction
    return row


def finalise(
    rows: list[dict[str, Any]], identity: WinnerIdentity | None = None
) -> list[dict[str, Any]]:
    """Drop ``group_vs_rest`` strata of two-group designs (they repeat the pair), sort, record
    each row's ``identical_criteria`` (from ``identity``; the row's own criterion alone without
    it) and adjust p-values within families (:func:`cropaudit.stats.tests_multiple.adjust_rows`)."""
    groups: dict[tuple, set[str]] = defaultdict(set)
    for r in rows:
        if r["comparison"] == "group_vs_rest":
            groups[tuple(r[f] for f in CRITERION_FIELDS)].add(r["group_a"])
    rows = [
        r
        for r in rows
        if r["comparison"] == "pair" or len(groups[tuple(r[f] for f in CRITERION_FIELDS)]) > 2
    ]
    rows.sort(key=lambda r: tuple(r[f] for f in KEY_FIELDS))
    for r, same in zip(rows, identical_criteria(identity, rows, DESIGN_FIELDS), strict=True):
        r["identical_criteria"] = same
    adjust_rows(rows)
    return rows


def resolve_tables(
    paths: Sequence[str], trust_modified: bool = False
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]]:
    """Parquet files of finished runs per survival table (``survival``, ``single_survival``:
    each run wrote its design kind's), per run how its table differs from its summary
    (only with ``trust_modified``; otherwise a difference is a ``UserError``), and per run its
    table's content hash as read (what the statistics were computed from). Each path is a
    run directory (or its table folder); a run without ``_SUCCESS`` is refused, since its table
    may be partial."""
    if not paths:
        raise UserError("no survival paths given")
    files: dict[str, list[str]] = {name: [] for name in SURVIVAL_TABLES}
    modified: dict[str, list[str]] = {}
    hashes: dict[str, str] = {}
    for path in paths:
        run = RunDir.open(fileio.absolute(path.rstrip("/")))  # as the workers of a cluster see it
        check = run.verify(trust_modified)
        hashes[run.root] = check.table_sha256
        if check.differences:
            modified[run.root] = check.differences
        name = run.survival_name
        found = run.table_files(name)
        if not found:
            raise UserError(f"{run.root} has no {name}/*.parquet files")
        files[name].extend(found)
    return files, modified, hashes


def resolve_survival(
    paths: Sequence[str], trust_modified: bool = False
) -> tuple[list[str], dict[str, list[str]]]:
    """The pair tables' files of :func:`resolve_tables` (a run of single images has none:
    ``UserError``), and what differs."""
    files, modified, _ = resolve_tables(paths, trust_modified)
    if not files[survival.TABLE]:
        raise UserError(
            f"no pair survival table in {', '.join(paths)} (single-image runs have no pairs)"
        )
    return files[survival.TABLE], modified


def available_criteria(files: Sequence[str], point: str = "point_winner") -> set[str]:
    """Criteria the tables can be analysed by: those of each file's first row (every row of a
    run has the same aspect ratios); ``point`` names the salient point's column."""
    found = set()
    for path in files:  # footer and first row only
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            for batch in parquet.iter_batches(batch_size=1, columns=[point, "crops"]):
                if batch.num_rows:
                    found |= row_criteria(batch.to_pylist()[0], point)
                    break
    return found


def row_criteria(row: dict[str, Any], point: str) -> set[str]:
    """The criteria one survival row can be analysed by: ``point`` when its salient point
    column (``point``) is set, and one per crop."""
    found = {POINT} if row[point] is not None else set()
    return found | {criterion_name(c["aspect_ratio"]) for c in row["crops"] or ()}


def _single_rows_of_old_tables(pair_files: Sequence[str]) -> list[pa.Table]:
    """The single-image rows survival/v3-v4 pair tables hold, in today's words: the design
    column is read first (streamed, not the whole file), since most pair tables hold none."""
    found = []
    for path in pair_files:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            if "design" not in parquet.schema_arrow.names:
                continue
            has_single = any(
                pc.any(pc.equal(batch.column(0), single_survival.SINGLE)).as_py()
                for batch in parquet.iter_batches(batch_size=SLICE_ROWS, columns=["design"])
            )
            if has_single:
                found.append(single_survival.from_survival_v3(parquet.read()))
    return found


def design_groups(files: Sequence[str]) -> dict[tuple[str, ...], set[str]]:
    """The groups each design has, read by the driver from the design and group columns alone.
    As a side input computed in the pipeline, it held every row (pickled) until the last table
    was read; a static argument lets the rows stream through one fused chain."""
    found: dict[tuple[str, ...], set[str]] = {}
    for path in files:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            names = set(parquet.schema_arrow.names)
            columns = [c for c in (*DESIGN_FIELDS, "group_a", "group_b") if c in names]
            for batch in parquet.iter_batches(batch_size=SLICE_ROWS, columns=columns):
                for table in prepare(pa.Table.from_batches([batch])):
                    for key, seen in table_groups(table):
                        found.setdefault(key, set()).update(seen)
    return found


def build_pipeline(
    pipeline: beam.Pipeline,
    files: Sequence[str],
    out_prefix: str,
    options: StatsOptions,
    metadata: dict[str, str] | None = None,
) -> None:
    """Survival files -> estimates Parquet. Rows travel as Arrow tables (read by row group and
    sliced), never as one Python dict per row: per-row objects were three quarters of the
    stage's time."""
    reads = []
    for i, path in enumerate(files):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            present = set(pq.read_schema(f).names)
        columns = [c for c in COLUMNS if c in present]
        reads.append(pipeline | f"Read{i}" >> beam.io.ReadFromParquetBatched(path, columns=columns))
    prepared = reads | "Flatten" >> beam.Flatten() | "Prepare" >> beam.FlatMap(prepare)
    identity = (
        prepared
        | "Identity" >> beam.Map(WinnerIdentity.of, DESIGN_FIELDS)
        | "MergeIdentity" >> beam.CombineGlobally(_merge_identity)
    )
    (
        prepared
        | "Key" >> beam.FlatMap(key_table, options.criteria, design_groups(files))
        | "Bootstrap" >> beam.CombinePerKey(BootstrapCombineFn(options))
        | "ToRow" >> beam.Map(lambda kv, o: to_row(kv[0], kv[1], o), options)
        | "Gather" >> beam.combiners.ToList()
        | "Finalise" >> beam.FlatMap(finalise, beam.pvalue.AsSingleton(identity))
        | "Write"
        >> beam.io.WriteToParquet(
            out_prefix,
            schema=ESTIMATES_SCHEMA.with_metadata(metadata) if metadata else ESTIMATES_SCHEMA,
            codec="snappy",
            num_shards=1,
            shard_name_template="-SSSSS-of-NNNNN",
            file_name_suffix=".parquet",
        )
    )


def _merge_identity(parts: Iterable[WinnerIdentity]) -> WinnerIdentity:
    out = WinnerIdentity()
    for part in parts:
        out.merge(part)
    return out


AGREEMENT_COLUMNS = (
    "composite_id", "sample_id", "variant", "design", "group_a", "group_b", "position",
    "a_subject_id", "b_subject_id", "model_name", "point_winner", "crops",
)  # fmt: skip


def write_agreement(files: Sequence[str], out_dir: str, options: StatsOptions) -> str | None:
    """``OUT/agreement.parquet``: pairwise cropper agreement (:mod:`cropaudit.stats.agreement`)
    when the survival tables hold several croppers; None (and no file) otherwise. Reads only
    the columns it needs; the comparison itself is in memory, O(rows)."""
    import pandas as pd

    from cropaudit.stats.agreement import agreement

    target = StatsDir(out_dir).agreement
    fileio.delete_tree(target)
    data = [fileio.read_bytes(f) for f in files]
    models = set()
    for raw in data:  # one column first: most runs hold one cropper and need nothing else
        models.update(pq.read_table(pa.BufferReader(raw), columns=["model_name"])[0].unique())
    if len(models) < 2:
        return None
    frames = []
    for raw in data:
        present = pq.read_schema(pa.BufferReader(raw)).names
        columns = [c for c in AGREEMENT_COLUMNS if c in present]
        frames.append(pq.read_table(pa.BufferReader(raw), columns=columns))
    survival = pa.concat_tables(frames, promote_options="default").to_pandas()
    result = agreement(survival, options.replicates, options.seed, options.level)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(result), preserve_index=False), sink)
    fileio.write_atomic(target, sink.getvalue().to_pybytes())
    return target


def write_face_rates(
    files: Sequence[str], out_dir: str, options: StatsOptions, pair_files: Sequence[str] = ()
) -> str | None:
    """``OUT/face_rates.parquet`` and ``OUT/face_rate_differences.parquet``: the face/body rates
    of the single-image tables per criterion and their differences between groups
    (:func:`cropaudit.stats.gaze.face_rates`, :func:`~cropaudit.stats.gaze.face_rate_differences`,
    plus a ``criterion`` column), with the single-image rows that survival/v3-v4 ``pair_files``
    hold; None (and no files) without such rows."""
    from cropaudit.stats.gaze import face_rate_differences, face_rates

    stats = StatsDir(out_dir)
    for target in (stats.face_rates, stats.face_rate_differences):
        fileio.delete_tree(target)
    tables = [pq.read_table(pa.BufferReader(fileio.read_bytes(f))) for f in files]
    tables += _single_rows_of_old_tables(pair_files)
    if not tables:
        return None
    single = pa.concat_tables(
        [t.select(tables[0].column_names) for t in tables], promote_options="default"
    )
    criteria = set()
    for row in (r for t in tables for r in t.slice(0, 1).to_pylist()):
        criteria |= row_criteria(row, "point_on")
    chosen = [c for c in sorted(criteria) if options.criteria is None or c in options.criteria]
    for target, compute in ((stats.face_rates, face_rates),
                            (stats.face_rate_differences, face_rate_differences)):  # fmt: skip
        frames = [compute(single, c, options.level).assign(criterion=c) for c in chosen]
        result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(result, preserve_index=False), sink)
        fileio.write_atomic(target, sink.getvalue().to_pybytes())
    return stats.face_rates


def write_no_estimates(prefix: str, metadata: dict[str, str] | None) -> None:
    """The empty estimates table of runs without pairs (single images only)."""
    schema = ESTIMATES_SCHEMA.with_metadata(metadata) if metadata else ESTIMATES_SCHEMA
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink, compression="snappy")
    fileio.write_atomic(f"{prefix}-00000-of-00001.parquet", sink.getvalue().to_pybytes())


def run_stats(
    survival_paths: list[str],
    out_dir: str,
    replicates: int = 1000,
    level: float = 0.95,
    criteria: Sequence[str] | None = None,
    seed: int = 0,
    pipeline_args: list[str] | None = None,
    render: bool = True,
    bootstrap_correction: str = "cgm",
    overwrite: bool = False,
    trust_modified: bool = False,
    model_max: int = MAX_COMPOSITES,
) -> str:
    """Run the statistics stage; returns the estimates Parquet path.

    Writes ``OUT/estimates/estimates-00000-of-00001.parquet``, ``OUT/plots/<criterion>.png|svg``,
    ``OUT/report.html``, ``OUT/agreement.parquet`` (runs comparing croppers),
    ``OUT/face_rates.parquet`` and ``OUT/face_rate_differences.parquet`` (single-image runs:
    :mod:`cropaudit.stats.gaze`) and, last,
    ``OUT/_SUCCESS``. Runs on the pinned ``direct`` runner unless
    ``pipeline_args`` name another ``--runner`` (see :mod:`cropaudit.pipelines.runners`).
    ``bootstrap_correction`` is ``cgm`` (bootstrap rescaled to the two-way cluster-robust
    variance; default) or ``none`` (plain pigeonhole bootstrap, conservative).
    ``overwrite`` replaces an earlier statistics output in ``out_dir`` (nothing else there);
    ``trust_modified`` uses survival tables that differ from their run summaries, and records
    what differs in the estimates' metadata, ``_SUCCESS`` and the HTML report.
    """
    options = StatsOptions(
        replicates=int(replicates),
        level=float(level),
        criteria=tuple(criteria) if criteria else None,
        seed=int(seed),
        bootstrap_correction=str(bootstrap_correction),
        model_max=int(model_max),
    )
    tables, modified, hashes = resolve_tables(survival_paths, trust_modified)
    files, single = tables[survival.TABLE], tables[single_survival.TABLE]
    available = available_criteria(files) | available_criteria(single, point="point_on")
    unknown = sorted(set(options.criteria or ()) - available)
    if unknown:
        raise UserError(
            f"no criterion {', '.join(unknown)} in these runs (they have "
            f"{', '.join(sorted(available))})"
        )
    runner, beam_options = pipeline_options(pipeline_args)
    stats = StatsDir(out_dir)
    metadata = {TABLES_KEY: json.dumps(hashes, sort_keys=True)}
    if modified:
        metadata[UNVERIFIED_KEY] = json.dumps(modified, sort_keys=True)
    with stats.writing(overwrite=overwrite):
        if files:
            with pipeline(runner, beam_options) as p:
                build_pipeline(p, files, stats.estimates_prefix, options, metadata)
        else:
            write_no_estimates(stats.estimates_prefix, metadata)
        write_agreement(files, out_dir, options)
        write_face_rates(single, out_dir, options, files)
        reading = Reading.of_runs(survival_paths)
        return _finish(stats, list(survival_paths), render, modified, files, reading, hashes)


@dataclass(frozen=True)
class Reading:
    """How the findings read the estimates: the runs' ``[analysis]`` and crop aspect ratios
    (the first run's that has a config; the defaults otherwise)."""

    analysis: AnalysisConfig = AnalysisConfig()
    aspect_ratios: tuple[float, ...] = ()

    @classmethod
    def of_runs(cls, paths: Sequence[str]) -> Reading:
        from cropaudit import config as config_mod

        for path in paths:
            text = RunDir.open(fileio.absolute(path.rstrip("/"))).config_text()
            if text is not None:
                cfg = config_mod.loads(text)
                return cls(cfg.analysis, tuple(cfg.crop.aspect_ratios))
        return cls()


def _finish(
    stats: StatsDir,
    inputs: list[str],
    render: bool,
    modified: dict[str, list[str]] | None = None,
    survival_files: Sequence[str] = (),
    reading: Reading = Reading(),
    tables: dict[str, str] | None = None,
) -> str:
    """Findings, plots and page from the written estimates (with the planning section of the
    runs' ``survival_files``, if any), then ``_SUCCESS`` and the ownership record (inside
    :meth:`StatsDir.writing`); the estimates path."""
    stats.require_estimates()
    estimates = stats.estimates()
    write_findings(stats, estimates.to_pandas(), survival_files, reading)
    if render:
        from cropaudit.report.plan_section import stats_planning_section
        from cropaudit.report.stats_page import write_outputs

        plan = stats_planning_section(survival_files, estimates.to_pandas(), stats.root)
        write_outputs(estimates, stats.root, unverified=modified, planning=plan)
    return stats.publish(inputs, modified, tables)


def write_findings(
    stats: StatsDir, estimates: pd.DataFrame, survival_files: Sequence[str], reading: Reading
) -> list[Finding]:
    """``OUT/findings.json``: :func:`cropaudit.stats.run_findings.run_findings` of the written
    estimates and single-image rates, planned from the survival tables when they are small
    enough (``PLAN_ROWS``)."""
    from cropaudit.stats.planning import PLAN_ROWS
    from cropaudit.stats.run_findings import run_findings

    survival = None
    rows = sum(pq.read_metadata(pa.BufferReader(fileio.read_bytes(f))).num_rows
               for f in survival_files)  # fmt: skip
    if survival_files and 0 < rows <= PLAN_ROWS:
        tables = [pq.read_table(pa.BufferReader(fileio.read_bytes(f))) for f in survival_files]
        survival = pa.concat_tables(tables, promote_options="default")
    rates = differences = None
    if fileio.exists(stats.face_rates):
        rates, differences = (
            pq.read_table(pa.BufferReader(fileio.read_bytes(f))).to_pandas()
            for f in (stats.face_rates, stats.face_rate_differences)
        )
    items = run_findings(
        estimates,
        primary_criterion=reading.analysis.primary_criterion or None,
        parity_width=reading.analysis.parity_width,
        aspect_ratios=reading.aspect_ratios,
        survival=survival,
        rates=rates,
        differences=differences,
    )
    body = json.dumps(findings_json(items), indent=2, sort_keys=True)
    fileio.write_atomic(stats.findings, body.encode())
    return items


def print_findings(stats_dir: str) -> None:
    """Print the ``text`` of each finding of a finished statistics folder (the end of the
    terminal output of ``cropaudit stats`` and ``demo``)."""
    data = json.loads(fileio.read_bytes(StatsDir(stats_dir).findings))
    lines = [f["text"] for f in data["findings"]]
    if lines:
        print("findings:")
        for line in lines:
            print(f"  {line}")


#: Key fields a plain table may leave out, and the value its rows get.
TABLE_KEY_DEFAULTS = {
    "model_name": "table",
    "model_hash": "",
    "layout": "",
    "layout_params": "",
    "preprocessing": "",
    "variant": BASE_VARIANT,
    "design": survival.PAIRS,
    "criterion": "outcome",
    "comparison": "pair",
    "group_a": "a",
    "group_b": "b",
}


def read_plain_table(path: str) -> pd.DataFrame:
    """A Parquet or CSV table of composites (every column read as given; CSV as strings);
    ``UserError`` for a file that is not one, or has no rows."""
    if not path.endswith((".parquet", ".csv")):
        raise UserError(f"{path}: a table must end in .parquet or .csv (or give a run directory)")
    data = io.BytesIO(fileio.read_bytes(path))
    try:
        if path.endswith(".parquet"):
            # no pre-buffering, one thread: Arrow's I/O pool, still starting when an error
            # about the table ends the command, aborts the interpreter's exit beside Beam
            # ("terminate called without an active exception")
            table = pq.read_table(data, use_threads=False, pre_buffer=False)
            df = table.to_pandas(use_threads=False)
        else:
            df = pd.read_csv(data, dtype=str, keep_default_na=False, na_values=[""])
    except (pa.ArrowException, OSError, ValueError, pd.errors.ParserError) as exc:
        kind = "Parquet" if path.endswith(".parquet") else "CSV"
        raise UserError(f"{path} is not a readable {kind} table: {first_line(exc)}") from None
    if df.empty:
        raise UserError(f"{path} has no rows; nothing to analyse")
    return df


def _require_plain_values(df: pd.DataFrame, path: str, columns: Sequence[str]) -> None:
    """``UserError`` for a role or stratum column holding lists, maps or records: a value
    there must be one label, compared and grouped as such."""
    for column in columns:
        nested = df[column].map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray)))
        if nested.any():
            value = df[column][nested].iloc[0]
            raise UserError(
                f"{path}: column {column!r} holds {type(value).__name__} values (e.g. "
                f"{list(value)[:3]}); a role or stratum column must hold one label per row"
            )


def run_stats_table(
    path: str,
    out_dir: str,
    columns: dict[str, str] | None = None,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    render: bool = True,
    bootstrap_correction: str = "cgm",
    overwrite: bool = False,
    model_max: int = MAX_COMPOSITES,
) -> str:
    """The statistics stage on a plain table (one row per composite) instead of a run: same
    estimator, same outputs. ``columns`` maps a role of :data:`cropaudit.stats.table.ROLES` or an
    estimates key field (``group_a``, ``criterion`` ...) to the table's column; key fields the
    table has are the strata, the others take :data:`TABLE_KEY_DEFAULTS`. Runs in-process."""
    import hashlib

    from cropaudit import __version__
    from cropaudit.stats.table import ROLES, estimate_survival

    options = StatsOptions(replicates, level, None, seed, bootstrap_correction, model_max)
    columns = dict(columns or {})
    unknown = set(columns) - set(ROLES) - set(KEY_FIELDS)
    if unknown:
        roles, keys = ", ".join(ROLES), ", ".join(KEY_FIELDS)
        raise UserError(
            f"--column: unknown names {sorted(unknown)}; expected a role ({roles}) or a key "
            f"field ({keys})"
        )
    raw = fileio.read_bytes(path)
    df = read_plain_table(path)
    keys = {columns.pop(f): f for f in KEY_FIELDS if f in columns}
    missing = [c for c in keys if c not in df.columns]
    if missing:
        raise UserError(f"{path} has no column(s) {missing}")
    df = df.rename(columns=keys)
    by = [f for f in KEY_FIELDS if f in df.columns]
    roles = {**ROLES, **columns}
    _require_plain_values(df, path, [*by, *(c for c in roles.values() if c in df.columns)])
    est = estimate_survival(
        df, by, columns, replicates, level, seed, bootstrap_correction, model_max
    )
    provenance = {
        "config_hashes": ["sha256:" + hashlib.sha256(raw).hexdigest()],
        "survival_seeds": [],
        "versions": [f"cropaudit {__version__}"],
    }
    rows = []
    for record in est.to_dict("records"):
        key = tuple(str(record.pop(f)) if f in by else TABLE_KEY_DEFAULTS[f] for f in KEY_FIELDS)
        rows.append(to_row(key, {**record, **provenance}, options))
    rows = finalise(rows)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, ESTIMATES_SCHEMA), buf, compression="snappy")
    stats = StatsDir(out_dir)
    with stats.writing(overwrite=overwrite):
        fileio.write_atomic(stats.estimates_file, buf.getvalue())
        return _finish(stats, [path], render)
