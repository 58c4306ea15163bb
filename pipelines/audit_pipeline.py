"""The audit pipeline: manifest -> design -> render -> infer -> crop -> survival table.

``run_audit`` validates everything it can before any worker starts (config, manifest columns,
group sizes), runs the Beam pipeline, then checks what the sinks actually published, writes the
run summary and, last, the ``_SUCCESS`` marker: a directory without it is not a finished run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import GoogleCloudOptions

from cropaudit import fileio, ownership, progress, tablecheck
from cropaudit.config import ExperimentConfig, LayoutConfig
from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyModelHandler
from cropaudit.model.cropper import BoxCropper, Cropper
from cropaudit.model.registry import model_handler
from cropaudit.model.resize import PreprocessOptions
from cropaudit.pipelines.runners import pipeline, pipeline_options
from cropaudit.provenance import versions
from cropaudit.schemas import single_survival, survival
from cropaudit.schemas.records import Face
from cropaudit.schemas.survival import DEAD_LETTER_SCHEMA
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.boxes import CropBoxes
from cropaudit.transforms.crop import SimulateCrops
from cropaudit.transforms.design import (
    SampleComposites,
    check_design,
    design_cells,
    expected_composites,
    group_sizes,
    index_groups,
)
from cropaudit.transforms.design_kind import DesignKind, design_kind
from cropaudit.transforms.infer import PredictSaliency
from cropaudit.transforms.manifests import load_faces
from cropaudit.transforms.render import DEAD_LETTER, RenderComposites, Variants
from cropaudit.transforms.run_plan import Plan, check_plan, make_plan
from cropaudit.transforms.write import (
    CODEC,
    WriteDeadLetters,
    WriteSurvivalTable,
    canonical_row,
    collapse_duplicates,
    survival_schema,
)

SUCCESS = "_SUCCESS"
#: What a run directory consists of: ``--overwrite`` replaces these files and keeps others.
RUN_OUTPUT = ownership.OutputKind(
    "run",
    (
        SUCCESS,
        "run_summary.json",
        "config.toml",
        f"{survival.TABLE}/part*.parquet",
        f"{single_survival.TABLE}/part*.parquet",
        "dead_letter/part*.parquet",
    ),
    tables=(survival.TABLE, single_survival.TABLE, "dead_letter"),
)
#: The survival tables a run directory may hold: one per design kind (a run writes its kind's).
SURVIVAL_TABLES = (survival.TABLE, single_survival.TABLE)
#: The run's folder inside an output that holds one (``cropaudit demo``: DIR/run, DIR/stats).
INNER_RUN = "run"
#: Stages whose dead letters stand for a whole composite.
COMPOSITE_STAGES = ("render", "predict")


@dataclass(frozen=True)
class RunPaths:
    """Where a run's outputs live under its output directory."""

    root: str

    @property
    def survival(self) -> str:
        """The pair survival table (the single-image design's is :meth:`table`)."""
        return self.table(survival.TABLE)

    def table(self, name: str) -> str:
        """The folder of table ``name`` (``DesignKind.table``, ``dead_letter``)."""
        return fileio.join(self.root, name)

    @property
    def dead_letter(self) -> str:
        return fileio.join(self.root, "dead_letter")

    @property
    def summary(self) -> str:
        return fileio.join(self.root, "run_summary.json")

    @property
    def config(self) -> str:
        return fileio.join(self.root, "config.toml")

    @property
    def marker(self) -> str:
        return fileio.join(self.root, SUCCESS)


def run_handler(
    config: ExperimentConfig, spec: str, options: PreprocessOptions | None = None
) -> Cropper:
    """The Beam ``ModelHandler`` for ``spec`` with the run's pre-processing and batch size."""
    options = options or config.model.preprocess_options()
    return model_handler(spec, options=options, batch_size=config.model.batch_size)


def variant_handlers(config: ExperimentConfig, handler: SaliencyModelHandler) -> Variants:
    """Sweep variant name -> (layout, handler) it renders with; ``base`` first. Variants that
    change the pre-processing (resize, JPEG round trip) get a handler for ``model.spec`` with
    their options: the same model (checked by name and hash), loaded once by PredictSaliency."""
    base_options = config.model.preprocess_options()
    out: dict[str, tuple[LayoutConfig, SaliencyModelHandler]] = {}
    for variant in config.variants():
        options = variant.config.model.preprocess_options()
        h = handler if options == base_options else run_handler(config, config.model.spec, options)
        if (h.name, h.content_hash) != (handler.name, handler.content_hash):
            raise UserError(
                f"sweep variant {variant.name}: model.spec {config.model.spec!r} is not the model"
                f" of this run ({handler.name}); a resize/jpeg_quality sweep re-creates the"
                " handler from model.spec"
            )
        out[variant.name] = (variant.config.layout, h)
    return out


def manifest_uri(config: ExperimentConfig, config_dir: str | None) -> str:
    path = config.manifest.path
    if not path:
        raise UserError("the config names no manifest (manifest.path); pass --manifest")
    if fileio.is_remote(path) or path.startswith("/") or not config_dir:
        return fileio.absolute(path)
    return fileio.absolute(fileio.join(config_dir, path))


def design_of(config: ExperimentConfig, faces) -> tuple[dict, list, int]:
    """The group index, the checked design cells and the planned composites (every variant)."""
    index = index_groups(faces, config.groups.attributes)
    cells = design_cells(index, config.design)
    check_design(index, cells)
    return index, cells, expected_composites(cells, config.design.order, config.sweep_size())


def plan_config(config: ExperimentConfig, config_dir: str | None) -> tuple[Plan, list[str]]:
    """The plan of ``config`` and the manifest's groups; when the manifest cannot be found
    (``validate`` on a config whose data is elsewhere) the plan counts no composites."""
    if not config.manifest.path:
        return make_plan(config, None), []
    uri = manifest_uri(config, config_dir)
    if not fileio.exists(uri):
        return make_plan(config, None), []
    index, _, expected = design_of(config, load_faces(uri, config)[0])
    return make_plan(config, expected), sorted(index)


class ReadFaces(beam.PTransform):
    """Manifest URI -> faces (main output) and manifest dead letters (``dead_letter``)."""

    def __init__(self, uri: str, config: ExperimentConfig):
        super().__init__()
        self._uri = uri
        self._config = config

    def expand(self, pbegin):
        config = self._config

        def read(uri):
            faces, letters = load_faces(uri, config)
            yield from faces
            for letter in letters:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)

        return (
            pbegin
            | "ManifestUri" >> beam.Create([self._uri])
            | "Load"
            >> beam.FlatMap(read).with_output_types(Face).with_outputs(DEAD_LETTER, main="faces")
        )


def build_audit(
    p: beam.Pipeline,
    config: ExperimentConfig,
    handler: SaliencyModelHandler,
    uri: str,
    paths: RunPaths,
    cells,
    variants: Variants | None = None,
    others: Sequence[Cropper] = (),
) -> None:
    """Lay the audit's stages onto ``p``; ``variants`` (from :func:`variant_handlers`) renders
    every sampled composite once per sweep variant (default: the base only); ``others`` are
    further croppers scored on the same rendered composites (``model.compare``)."""
    variants = dict(variants or {BASE_VARIANT: (config.layout, handler)})
    kind = design_kind(config.design.kind)
    attributes = tuple(config.groups.attributes)
    read = p | "ReadFaces" >> ReadFaces(uri, config)
    group_index = (
        read.faces
        | "AllFaces" >> beam.combiners.ToList()
        | "IndexGroups" >> beam.Map(lambda faces: index_groups(faces, attributes))
    )
    composites = group_index | "SampleComposites" >> SampleComposites(
        cells, config.design.seed, config.design.order, list(variants)
    )
    croppers = (handler, *(others or ()))
    rendered = composites | "RenderComposites" >> RenderComposites(
        handler, config.layout, variants, croppers[1:]
    )
    outcomes, predict_dead = score_composites(rendered.rendered, croppers, config, kind)
    progress.track(outcomes, rendered[DEAD_LETTER], predict_dead)  # local progress bar
    run_versions = versions()
    provenance = {  # per variant: its actual layout parameters and pre-processing
        name: {
            "layout": layout.kind,
            "layout_params": json.dumps(layout.params(), sort_keys=True),
            **h.describe(),
            "seed": config.design.seed,
            "config_hash": config.config_hash,
            "versions": run_versions,
        }
        for name, (layout, h) in variants.items()
    }
    if len(croppers) > 1:  # one model per run has exactly one variant (config checks)
        base = provenance.pop(BASE_VARIANT)
        provenance = {i: {**base, **c.describe()} for i, c in enumerate(croppers)}
    suffixes = row_suffixes(croppers)
    schema = survival_schema(
        kind.schema, kind.version, config.to_toml(), config.config_hash, run_versions
    )
    rows = outcomes | "ToSurvivalRows" >> beam.MapTuple(
        lambda r, o: kind.row(
            r,
            o,
            provenance[r.model if len(croppers) > 1 else r.composite.variant],
            suffixes[r.model],
        )
    )
    table = fileio.join(paths.table(kind.table), "part")
    rows | "WriteSurvivalTable" >> WriteSurvivalTable(table, schema)
    (
        (read[DEAD_LETTER], rendered[DEAD_LETTER], predict_dead)
        | "AllDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters"
        >> WriteDeadLetters(fileio.join(paths.dead_letter, "part"), config.config_hash)
    )


def row_suffixes(croppers: Sequence[Cropper]) -> list[str]:
    """What each cropper appends to composite ids: nothing in a one-model run, else
    ``#<model_name>`` (so ids stay unique per row; schemas.survival)."""
    if len(croppers) == 1:
        return [""]
    return [f"#{c.name}" for c in croppers]


def score_composites(
    rendered, croppers: Sequence[Cropper], config: ExperimentConfig, kind: DesignKind
):
    """Rendered composites -> (outcomes, predict-stage dead letters): each composite goes to the
    cropper its ``model`` index names; saliency models predict a grid, box croppers crop, and
    the design ``kind`` scores the result."""
    ratios = config.crop.aspect_ratios
    batch = config.model.batch_size
    parts = [rendered]
    if len(croppers) > 1:
        parts = rendered | "ByCropper" >> beam.Partition(lambda r, n: r.model, len(croppers))
    outcomes, dead = [], []
    for i, (cropper, suffix) in enumerate(zip(croppers, row_suffixes(croppers))):
        tag = "" if len(croppers) == 1 else f"[{cropper.name}]"
        if isinstance(cropper, BoxCropper):
            decided = parts[i] | f"CropBoxes{tag}" >> CropBoxes(cropper, ratios, batch, suffix)
        else:
            decided = parts[i] | f"PredictSaliency{tag}" >> PredictSaliency(cropper, batch, suffix)
        outcomes.append(
            decided.predicted | f"SimulateCrops{tag}" >> SimulateCrops(ratios, kind.score)
        )
        dead.append(decided[DEAD_LETTER])
    if len(croppers) == 1:
        return outcomes[0], dead[0]
    return (
        outcomes | "AllCroppers" >> beam.Flatten(),
        dead | "AllCropperDeadLetters" >> beam.Flatten(),
    )


def run_croppers(config: ExperimentConfig, handler: Cropper) -> list[Cropper]:
    """The run's croppers: ``handler`` (for ``model.spec``) then one per ``model.compare``;
    names must differ, since rows are told apart by ``model_name``."""
    croppers = [handler] + [run_handler(config, spec) for spec in config.model.compare]
    names = [c.name for c in croppers]
    if len(set(names)) != len(names):
        raise UserError(f"model.compare: two croppers share a name ({', '.join(names)})")
    return croppers


def read_table(folder: str) -> pa.Table:
    """All Parquet parts under ``folder`` as one table (empty parts included)."""
    files = fileio.glob(fileio.join(folder, "*.parquet"))
    if not files:
        raise UserError(f"no Parquet files under {folder}")
    tables = [pq.read_table(pa.BufferReader(fileio.read_bytes(f))) for f in files]
    return pa.concat_tables(tables).combine_chunks()


def table_hash(table: pa.Table | Iterable[pa.RecordBatch]) -> str:
    """Order- and sharding-independent content hash of a table, metadata ignored: sha256 over
    the sorted per-row digests, so it streams batch by batch (32 bytes held per row)."""
    batches = table.to_batches() if isinstance(table, pa.Table) else table
    digests = [
        hashlib.sha256(canonical_row(row).encode()).digest()
        for batch in batches
        for row in batch.to_pylist()
    ]
    return hashlib.sha256(b"".join(sorted(digests))).hexdigest()


def iter_batches(folder: str, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The record batches of every Parquet part under ``folder``, one file in memory at a time."""
    for f in fileio.glob(fileio.join(folder, "*.parquet")):
        part = pq.ParquetFile(pa.BufferReader(fileio.read_bytes(f)))
        if part.num_row_groups:  # a part with no rows (every composite dead-lettered) has none
            yield from part.iter_batches(batch_size=4096, columns=columns)


def composite_ids(folder: str) -> list[str]:
    """The ``composite_id`` column of a published table, read without the other columns."""
    return [i for b in iter_batches(folder, ["composite_id"]) for i in b.column(0).to_pylist()]


def remove_duplicate_rows(paths: RunPaths, config_hash: str, table: str = survival.TABLE) -> int:
    """Rows of the published survival table ``table`` that share a composite id collapse to one,
    and a copy that differs becomes a dead letter (:func:`collapse_duplicates`); returns the rows
    removed. Beam discards a failed bundle's output, so copies are rare (an at-least-once sink,
    a non-deterministic stage): checking after the write reads only the id column and keeps
    every runner's memory flat, where a GroupByKey over whole rows would hold them all."""
    folder = paths.table(table)
    ids = composite_ids(folder)
    if len(ids) == len(set(ids)):
        return 0
    table = read_table(folder)
    by_id: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        by_id.setdefault(row["composite_id"], []).append(row)
    kept, dead = [], []
    for cid, rows in sorted(by_id.items()):
        for kind, item in collapse_duplicates(cid, rows):
            (kept if kind == "row" else dead).append(item)
    unique = pa.Table.from_pylist(kept, schema=table.schema)
    old = fileio.glob(fileio.join(folder, "*.parquet"))
    fileio.write_atomic(fileio.join(folder, "part-deduplicated.parquet"), _parquet(unique))
    for f in old:
        fileio.delete_tree(f)
    if dead:
        letters = pa.Table.from_pylist(
            [d.to_row(config_hash) for d in dead], schema=DEAD_LETTER_SCHEMA
        )
        name = fileio.join(paths.dead_letter, "part-duplicates.parquet")
        fileio.write_atomic(name, _parquet(letters))
    return len(ids) - unique.num_rows


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=CODEC)
    return sink.getvalue().to_pybytes()


def summarize(
    paths: RunPaths,
    config: ExperimentConfig,
    expected: int,
    suffixes: Sequence[str] = ("",),
    **extra,
) -> dict:
    """What the sinks actually published, checked against the design. ``suffixes``: one per
    cropper (:func:`row_suffixes`); a composite that failed to render is lost to each of them.
    The survival table is the design kind's; a single-image run's summary names it
    (``survival_table_name``)."""
    table = design_kind(config.design.kind).table
    dead = read_table(paths.dead_letter)
    ids: list[str] = []

    def batches() -> Iterator[pa.RecordBatch]:  # ids and hash from one read of the table
        for batch in iter_batches(paths.table(table)):
            ids.extend(batch.column("composite_id").to_pylist())
            yield batch

    table_sha256 = table_hash(batches())
    duplicates = len(ids) - len(set(ids))
    dead_rows = dead.to_pylist()
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
        "survival_table_sha256": table_sha256,
        "survival_table": tablecheck.describe(paths.table(table)),
        **({} if table == survival.TABLE else {"survival_table_name": table}),
        "versions": versions(),
        **extra,
    }


def run_audit(
    config: ExperimentConfig,
    out_dir: str,
    *,
    config_dir: str | None = None,
    pipeline_args: list[str] | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    show_progress: bool = True,
    handler: SaliencyModelHandler | None = None,
    allow_large_plan: bool = False,
) -> dict:
    """Validate, run the pipeline, verify its outputs, publish the run; returns its summary.
    The plan is checked first (:func:`check_plan`); ``allow_large_plan`` lets a plan beyond the
    local runner's reach start anyway."""
    # the cheap checks first (manifest, design, plan, output folder): a run that cannot start
    # fails before a model is downloaded
    uri = manifest_uri(config, config_dir)
    faces, manifest_dead = load_faces(uri, config)
    index, cells, expected = design_of(config, faces)
    runner, options = pipeline_options(pipeline_args)
    plan = make_plan(config, expected)
    check_plan(plan, runner, allow_large_plan, groups=sorted(index))
    command = f"cropaudit run {config.name}"
    ownership.check_writable(out_dir, RUN_OUTPUT, overwrite=overwrite, command=command)
    handler = handler or run_handler(config, config.model.spec)
    croppers = run_croppers(config, handler)
    for cropper in croppers:  # a model that cannot score (NaN weights) fails here, not on a worker
        cropper.check()
    variants = variant_handlers(config, handler)
    expected_rows = expected * len(croppers)  # one row per composite and cropper

    paths = RunPaths(fileio.absolute(out_dir))  # as the workers of a cluster see it
    with ownership.writing(
        out_dir, RUN_OUTPUT, overwrite=overwrite, config_hash=config.config_hash, command=command
    ):
        started = time.monotonic()
        bar = progress.reporter(
            expected_rows, enabled=show_progress and not quiet and runner == "direct"
        )
        with bar, pipeline(runner, options) as p:
            build_audit(p, config, handler, uri, paths, cells, variants, croppers[1:])
        template = options.view_as(GoogleCloudOptions).template_location
        if template:  # Dataflow template creation: the job was built and staged, nothing ran
            if not quiet:
                print(f"Dataflow template -> {template} (staged, not run; nothing published)")
            return {"runner": runner, "template_location": template}
        seconds = time.monotonic() - started
        removed = remove_duplicate_rows(
            paths, config.config_hash, design_kind(config.design.kind).table
        )

        summary = summarize(
            paths,
            config,
            expected_rows,
            row_suffixes(croppers),
            manifest=uri,
            manifest_faces=len(faces),
            manifest_dead_lettered=len(manifest_dead),
            groups=group_sizes(index),
            model=handler.describe(),
            models=[c.describe() for c in croppers],
            variants=list(variants),
            runner=runner,
            seconds=round(seconds, 2),
            duplicate_rows_removed=removed,
            plan=plan.describe(),
            beam_counters=progress.beam_counters(getattr(p, "result", None)),
        )
        if summary["duplicate_composite_ids"] or not summary["all_composites_accounted"]:
            raise RuntimeError(f"published tables do not match the design: {summary}")
        fileio.write_atomic(paths.config, config.to_toml().encode())
        fileio.write_atomic(paths.summary, json.dumps(summary, indent=2, sort_keys=True).encode())
        fileio.write_atomic(paths.marker, b"")
        ownership.finish(out_dir, RUN_OUTPUT, config.config_hash)
    if not quiet:
        print(format_summary(summary, out_dir))
    return summary


def format_summary(summary: dict, out_dir: str) -> str:
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


def run_folder(path: str) -> str:
    """``path``, or the run inside it: a folder with no ``_SUCCESS`` of its own but a ``run/``
    folder is an output that holds a run (``cropaudit demo``'s), so ``report``, ``stats`` and
    the rest accept the folder the demo printed."""
    inner = fileio.join(path, INNER_RUN)
    if not fileio.exists(fileio.join(path, SUCCESS)) and fileio.is_folder(inner):
        return inner
    return path


def require_finished(run_dir: str) -> RunPaths:
    """A finished run's paths (of the run inside ``run_dir`` when it holds one: see
    :func:`run_folder`), or a clear error for a run that never completed."""
    run_dir = run_folder(run_dir)
    paths = RunPaths(run_dir)
    if not fileio.exists(paths.marker):
        raise UserError(
            f"{run_dir} is not a finished run (no {SUCCESS} marker); its tables may be partial: "
            "wait for the run to complete or rerun it"
        )
    return paths


def survival_folder(paths: RunPaths, summary: dict | None = None) -> str:
    """The folder of the survival table a finished run wrote: the one its summary names
    (``survival_table_name``, single-image runs), else the pair table."""
    if summary is None:
        try:
            summary = json.loads(fileio.read_bytes(paths.summary))
        except (FileNotFoundError, ValueError):
            summary = {}
    return paths.table(summary.get("survival_table_name") or survival.TABLE)


def verified_run(run_dir: str, trust_modified: bool = False) -> tuple[RunPaths, list[str]]:
    """A finished run whose survival table matches its summary's record, and the differences
    (``UserError`` naming them, unless ``trust_modified``: the caller records them)."""
    paths = require_finished(run_dir)
    try:
        summary = json.loads(fileio.read_bytes(paths.summary))
    except (FileNotFoundError, ValueError):
        summary = {}
    found = tablecheck.differences(survival_folder(paths, summary), summary.get("survival_table"))
    if found and not trust_modified:
        raise UserError(
            f"the survival table of {run_dir} does not match its run_summary.json: "
            f"{'; '.join(found)}; pass --trust-modified to use it anyway (outputs record it)"
        )
    return paths, found
