"""Statistics stage: survival tables -> estimates table, plots and an HTML report.

Thin Beam wrapper around :mod:`cropaudit.stats`: rows are keyed by stratum (model, layout,
preprocessing, design, criterion, comparison) and a CombineFn streams the multiway bootstrap's
sufficient statistics (per-replicate weighted wins, per-subject wins for the jackknife, per-cell
wins for the bootstrap variance correction, see :mod:`cropaudit.stats.bootstrap`). Weights
are a pure function of (seed, subject, replicate), and all sums are exact integers, so the result
does not depend on the runner, sharding or order. The few per-stratum rows are then gathered once
to adjust p-values across the whole run (Holm, Benjamini-Hochberg).
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
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from cropaudit import fileio, ownership
from cropaudit.errors import UserError
from cropaudit.pipelines.audit import verified_run
from cropaudit.pipelines.runners import pipeline, pipeline_options
from cropaudit.schemas.estimates import ESTIMATES_SCHEMA, KEY_FIELDS
from cropaudit.stats.bootstrap import CORRECTIONS, OUTCOME_CODE, POSITION_CODE, SufficientStats
from cropaudit.stats.estimates import estimate_stratum
from cropaudit.stats.tests_multiple import benjamini_hochberg, holm
from cropaudit.stats.weights import WeightCache

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
#: What a statistics output folder consists of (see :mod:`cropaudit.ownership`).
STATS_OUTPUT = ownership.OutputKind(
    "stats",
    (
        "_SUCCESS",
        "report.html",
        "agreement.parquet",
        "estimates/*.parquet",
        "plots/*.png",
        "plots/*.svg",
    ),
    tables=("estimates",),
)
#: Estimates file metadata: the survival tables used although they differ from their run
#: summaries (``--trust-modified``), run -> what differs.
UNVERIFIED_KEY = "cropaudit.unverified_inputs"


@dataclass(frozen=True)
class StatsOptions:
    """Options of one statistics run (recorded in every estimates row)."""

    replicates: int = 1000
    level: float = 0.95
    criteria: tuple[str, ...] | None = None
    seed: int = 0
    bootstrap_correction: str = "cgm"

    def __post_init__(self) -> None:
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


def criterion_name(aspect_ratio: float) -> str:
    return f"crop_{aspect_ratio:.2f}"


def row_outcomes(row: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(criterion, winner) pairs of one survival row: the salient point (none for a box-only
    cropper) and every crop."""
    if row["point_winner"] is not None:
        yield "point", row["point_winner"]
    for crop in row["crops"] or ():
        yield criterion_name(crop["aspect_ratio"]), crop["winner"]


def batch_groups(rows: Sequence[dict[str, Any]]) -> Iterator[tuple[tuple[str, ...], set[str]]]:
    """(design key, groups seen) of a batch, to find designs with more than two groups."""
    groups: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for row in rows:
        groups[tuple(row[f] for f in DESIGN_FIELDS)].update((row["group_a"], row["group_b"]))
    yield from groups.items()


def key_rows(
    rows: Sequence[dict[str, Any]],
    criteria: tuple[str, ...] | None,
    groups: dict[tuple[str, ...], set[str]] | None = None,
) -> Iterator[tuple[tuple[str, ...], RowBatch]]:
    """Columnarise a batch of survival rows into one :class:`RowBatch` per stratum.

    Every row goes to its ``pair`` stratum. In designs with more than two groups (per
    ``groups``; all designs when it is None) rows of two different groups also go to one
    ``group_vs_rest`` stratum per group, seen from that group's face.
    """
    cols: dict[tuple[str, ...], list[list]] = defaultdict(lambda: [[], [], [], [], {}])
    for row in rows:
        base = tuple(row[f] for f in DESIGN_FIELDS)
        ga, gb = row["group_a"], row["group_b"]
        k_way = groups is None or len(groups.get(base, ())) > 2
        pos = POSITION_CODE[row["position"]]
        sa, sb = row["a_subject_id"], row["b_subject_id"]
        prov = {name: str(row[name]) for name in PROVENANCE}
        for criterion, winner in row_outcomes(row):
            if criteria is not None and criterion not in criteria:
                continue
            out = OUTCOME_CODE[winner]
            targets = [(("pair", ga, gb), sa, sb, pos, out)]
            if k_way and ga != gb:
                targets.append((("group_vs_rest", ga, "rest"), sa, sb, pos, out))
                targets.append((("group_vs_rest", gb, "rest"), sb, sa, 1 - pos, SWAP[out]))
            for comp, s1, s2, p, o in targets:
                c = cols[(*base, criterion, *comp)]
                c[0].append(s1)
                c[1].append(s2)
                c[2].append(p)
                c[3].append(o)
                for name, value in prov.items():
                    c[4].setdefault(name, set()).add(value)
    for key, (a, b, p, o, prov) in cols.items():
        yield (
            key,
            RowBatch(
                np.array(a, dtype=object),
                np.array(b, dtype=object),
                np.array(p, dtype=np.int64),
                np.array(o, dtype=np.int64),
                prov,
            ),
        )


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
        est = estimate_stratum(acc, self.options.level, self.options.bootstrap_correction)
        for name, column in PROVENANCE.items():
            est[column] = sorted(acc.provenance.get(name, ()))
        return est


def to_row(key: tuple[str, ...], est: dict[str, Any], options: StatsOptions) -> dict[str, Any]:
    row = dict(zip(KEY_FIELDS, key, strict=True))
    row.update(est)
    row.update(replicates=options.replicates, level=options.level, seed=options.seed)
    row["bootstrap_correction"] = options.bootstrap_correction
    return row


def finalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop ``group_vs_rest`` strata of two-group designs (they repeat the pair), sort, and adjust
    p-values across every remaining comparison of the run."""
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
    for test in ("binomial", "bootstrap"):
        p = [r[f"p_{test}"] for r in rows]
        for suffix, adjusted in (("holm", holm(p)), ("bh", benjamini_hochberg(p))):
            for r, value in zip(rows, adjusted, strict=True):
                r[f"p_{test}_{suffix}"] = float(value)
    return rows


def resolve_survival(
    paths: Sequence[str], trust_modified: bool = False
) -> tuple[list[str], dict[str, list[str]]]:
    """Parquet files of finished runs, and per run how its table differs from its summary
    (only with ``trust_modified``; otherwise a difference is a ``UserError``). Each path is a
    run directory (or its ``survival`` folder); a run without ``_SUCCESS`` is refused, since
    its table may be partial."""
    if not paths:
        raise UserError("no survival paths given")
    files: list[str] = []
    modified: dict[str, list[str]] = {}
    for path in paths:
        run = fileio.absolute(path.rstrip("/"))  # as the workers of a cluster see it
        if run.endswith("/survival") or run.endswith("\\survival"):
            run = fileio.dirname(run)
        run_paths, differences = verified_run(run, trust_modified)
        if differences:
            modified[run] = differences
        found = fileio.glob(fileio.join(run_paths.survival, "*.parquet"))
        if not found:
            raise UserError(f"{run} has no survival/*.parquet files")
        files.extend(found)
    return files, modified


def available_criteria(files: Sequence[str]) -> set[str]:
    """Criteria the tables can be analysed by: those of each file's first row (every row of a
    run has the same aspect ratios)."""
    found = set()
    for path in files:  # footer and first row only
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            for batch in parquet.iter_batches(batch_size=1, columns=["point_winner", "crops"]):
                if batch.num_rows:
                    found.update(c for c, _ in row_outcomes(batch.to_pylist()[0]))
                    break
    return found


def _read_survival(pipeline: beam.Pipeline, i: int, path: str):
    """Rows of one survival file; tables written before sweeps existed (survival/v1) have no
    ``variant`` column and read as variant ``base``."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        present = set(pq.read_schema(f).names)
    columns = [c for c in COLUMNS if c in present]
    rows = pipeline | f"Read{i}" >> beam.io.ReadFromParquet(path, columns=columns)
    if "variant" in present:
        return rows
    return rows | f"BaseVariant{i}" >> beam.Map(lambda r: {**r, "variant": "base"})


def build_pipeline(
    pipeline: beam.Pipeline,
    files: Sequence[str],
    out_prefix: str,
    options: StatsOptions,
    metadata: dict[str, str] | None = None,
) -> None:
    reads = [_read_survival(pipeline, i, f) for i, f in enumerate(files)]
    batches = (
        reads
        | "Flatten" >> beam.Flatten()
        | "SkipSingle" >> beam.Filter(lambda r: r["design"] != "single")  # no pair: stats.gaze
        | "Batch" >> beam.BatchElements(min_batch_size=512, max_batch_size=8192)
    )
    groups = (
        batches
        | "BatchGroups" >> beam.FlatMap(batch_groups)
        | "Groups" >> beam.CombinePerKey(lambda sets: set().union(*sets))
    )
    (
        batches
        | "Key" >> beam.FlatMap(key_rows, options.criteria, beam.pvalue.AsDict(groups))
        | "Bootstrap" >> beam.CombinePerKey(BootstrapCombineFn(options))
        | "ToRow" >> beam.Map(lambda kv, o: to_row(kv[0], kv[1], o), options)
        | "Gather" >> beam.combiners.ToList()
        | "Finalise" >> beam.FlatMap(finalise)
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


def read_estimates(out_dir: str) -> pa.Table:
    files = fileio.glob(fileio.join(out_dir, "estimates", "*.parquet"))
    tables = [pq.read_table(io.BytesIO(fileio.read_bytes(f))) for f in files]
    if not tables:
        return ESTIMATES_SCHEMA.empty_table()
    return pa.concat_tables(tables).cast(ESTIMATES_SCHEMA)


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

    target = fileio.join(out_dir, "agreement.parquet")
    fileio.delete_tree(target)
    frames = []
    for f in files:
        table = pq.read_table(pa.BufferReader(fileio.read_bytes(f)))
        frames.append(table.select([c for c in AGREEMENT_COLUMNS if c in table.column_names]))
    survival = pa.concat_tables(frames, promote_options="default").to_pandas()
    if survival["model_name"].nunique() < 2:
        return None
    result = agreement(survival, options.replicates, options.seed, options.level)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(result), preserve_index=False), sink)
    fileio.write_atomic(target, sink.getvalue().to_pybytes())
    return target


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
) -> str:
    """Run the statistics stage; returns the estimates Parquet path.

    Writes ``OUT/estimates/estimates-00000-of-00001.parquet``, ``OUT/plots/<criterion>.png|svg``,
    ``OUT/report.html``, ``OUT/agreement.parquet`` (runs comparing croppers) and, last,
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
    )
    files, modified = resolve_survival(survival_paths, trust_modified)
    available = available_criteria(files)
    unknown = sorted(set(options.criteria or ()) - available)
    if unknown:
        raise UserError(
            f"no criterion {', '.join(unknown)} in these runs (they have "
            f"{', '.join(sorted(available))})"
        )
    runner, beam_options = pipeline_options(pipeline_args)
    prefix = fileio.join(fileio.absolute(out_dir), "estimates", "estimates")
    metadata = {UNVERIFIED_KEY: json.dumps(modified, sort_keys=True)} if modified else None
    with ownership.writing(out_dir, STATS_OUTPUT, overwrite=overwrite, command="cropaudit stats"):
        with pipeline(runner, beam_options) as p:
            build_pipeline(p, files, prefix, options, metadata)
        written = fileio.glob(fileio.join(out_dir, "estimates", "*.parquet"))
        if not written:
            raise UserError("the statistics pipeline wrote no estimates")
        write_agreement(files, out_dir, options)
        if render:
            from cropaudit.stats.report import write_outputs

            write_outputs(read_estimates(out_dir), out_dir, unverified=modified)
        success = {"estimates": written, "inputs": list(survival_paths)}
        if modified:
            success["unverified_inputs"] = modified
        fileio.write_atomic(fileio.join(out_dir, "_SUCCESS"), json.dumps(success).encode())
        ownership.finish(out_dir, STATS_OUTPUT)
    return written[0]
