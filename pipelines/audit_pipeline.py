"""The audit pipeline: manifest -> design -> render -> infer -> crop -> survival table.

``run_audit`` reads the manifest once and checks the design, the plan and the output folder
before any worker starts (:func:`cropaudit.transforms.run_plan.read_inputs`), lays the stages
onto a pipeline that starts from what it read (:class:`ManifestFaces`), runs it, then has the
run folder (:class:`cropaudit.rundir.RunDir`) check what the sinks actually published, write the
run summary and, last, the ``_SUCCESS`` marker: a directory without it is not a finished run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import GoogleCloudOptions

from cropaudit import progress
from cropaudit.config import ExperimentConfig, LayoutConfig
from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyModelHandler
from cropaudit.model.cropper import BoxCropper, Cropper
from cropaudit.model.registry import model_handler
from cropaudit.model.resize import PreprocessOptions
from cropaudit.pipelines.runners import pipeline, pipeline_options
from cropaudit.provenance import versions
from cropaudit.rundir.run_dir import DEAD_LETTER as DEAD_LETTER_TABLE
from cropaudit.rundir.run_dir import NO_ROWS, RunDir, format_summary, no_rows_reason
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.boxes import CropBoxes
from cropaudit.transforms.crop import SimulateCrops
from cropaudit.transforms.design import SampleComposites, group_sizes
from cropaudit.transforms.design_kind import DesignKind, design_kind
from cropaudit.transforms.infer import PredictSaliency
from cropaudit.transforms.render import DEAD_LETTER, RenderComposites, Variants
from cropaudit.transforms.run_plan import AuditInputs, check_plan, make_plan, read_inputs
from cropaudit.transforms.sampling import GroupIndex
from cropaudit.transforms.write import (
    WriteDeadLetters,
    WriteSurvivalTable,
    survival_schema,
)


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


class ManifestFaces(beam.PTransform):
    """The driver's reading of the manifest (:class:`AuditInputs`) -> the group index (main
    output) and the manifest's dead letters (``dead_letter``): the pipeline starts from what the
    driver read and checked, and never reads the manifest again."""

    def __init__(self, inputs: AuditInputs):
        super().__init__()
        self._inputs = inputs

    def expand(self, pbegin):
        index, letters = self._inputs.index, self._inputs.dead_letters  # not the faces twice

        def emit(_):
            yield index
            for letter in letters:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)

        return (
            pbegin
            | "Start" >> beam.Create([None])
            | "Emit"
            >> beam.FlatMap(emit)
            .with_output_types(GroupIndex)
            .with_outputs(DEAD_LETTER, main="index")
        )


def build_audit(
    p: beam.Pipeline,
    config: ExperimentConfig,
    handler: SaliencyModelHandler,
    inputs: AuditInputs,
    run: RunDir,
    variants: Variants | None = None,
    others: Sequence[Cropper] = (),
) -> None:
    """Lay the audit's stages onto ``p``, writing into ``run`` (its root as the workers see
    it); ``variants`` (from :func:`variant_handlers`) renders every sampled composite once per
    sweep variant (default: the base only); ``others`` are further croppers scored on the same
    rendered composites (``model.compare``)."""
    variants = dict(variants or {BASE_VARIANT: (config.layout, handler)})
    kind = design_kind(config.design.kind)
    manifest = p | "ManifestFaces" >> ManifestFaces(inputs)
    composites = manifest.index | "SampleComposites" >> SampleComposites(
        inputs.cells, config.design.seed, config.design.order, list(variants)
    )
    croppers = (handler, *(others or ()))
    rendered = composites | "RenderComposites" >> RenderComposites(
        handler, config.layout, variants, croppers[1:]
    )
    outcomes, predict_dead = score_composites(rendered.rendered, croppers, config, kind)
    progress.track(None, rendered[DEAD_LETTER])  # local progress bar (croppers: per branch)
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
    schema = survival_schema(kind.table, config.to_toml(), config.config_hash, run_versions)
    rows = outcomes | "ToSurvivalRows" >> beam.MapTuple(
        lambda r, o: kind.row(
            r,
            o,
            provenance[r.model if len(croppers) > 1 else r.composite.variant],
            suffixes[r.model],
        )
    )
    rows | "WriteSurvivalTable" >> WriteSurvivalTable(run.part_prefix(kind.table.name), schema)
    (
        (manifest[DEAD_LETTER], rendered[DEAD_LETTER], predict_dead)
        | "AllDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters"
        >> WriteDeadLetters(run.part_prefix(DEAD_LETTER_TABLE), config.config_hash)
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
        progress.track(outcomes[-1], dead[-1])  # before the Flatten, which waits for every branch
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
    shared_model_copies: int = 0,
) -> dict:
    """Validate, run the pipeline, verify its outputs, publish the run; returns its summary.
    The plan is checked first (:func:`check_plan`); ``allow_large_plan`` lets a plan beyond the
    local runner's reach start anyway. ``shared_model_copies`` > 0: every model is loaded that
    many times per machine and shared by its worker processes (Beam's
    ``share_model_across_processes``, for a GPU); 0, one copy per process. Not part of the
    config: it changes memory, never a row."""
    # the cheap checks first (options, manifest, design, plan, output folder): a run that
    # cannot start fails before a model is downloaded
    if shared_model_copies < 0:
        raise UserError(
            f"--shared-model-copies must be 0 (one model per process) or more, got "
            f"{shared_model_copies}"
        )
    inputs = read_inputs(config, config_dir)
    runner, options = pipeline_options(pipeline_args)
    plan = make_plan(config, inputs.expected)
    check_plan(plan, runner, allow_large_plan, groups=inputs.groups)
    command = f"cropaudit run {config.name}"
    run = RunDir(out_dir)
    run.check_writable(overwrite=overwrite, command=command)
    handler = handler or run_handler(config, config.model.spec)
    croppers = run_croppers(config, handler)
    for cropper in croppers:  # a model that cannot score (NaN weights) fails here, not on a worker
        cropper.check()
    variants = variant_handlers(config, handler)
    if shared_model_copies:
        for h in [*croppers, *(h for _, h in variants.values())]:  # configuring twice is harmless
            h.configure(share_model_across_processes=True, model_copies=shared_model_copies)
    expected_rows = inputs.expected * len(croppers)  # one row per composite and cropper

    with run.writing(overwrite=overwrite, config_hash=config.config_hash, command=command):
        started = time.monotonic()
        bar = progress.reporter(
            expected_rows,
            enabled=show_progress and not quiet and runner == "direct",
            unit="composites" if len(croppers) == 1 else f"crops by {len(croppers)} croppers",
        )
        with bar, pipeline(runner, options) as p:
            build_audit(p, config, handler, inputs, run.absolute(), variants, croppers[1:])
        template = options.view_as(GoogleCloudOptions).template_location
        if template:  # Dataflow template creation: the job was built and staged, nothing ran
            if not quiet:
                print(f"Dataflow template -> {template} (staged, not run; nothing published)")
            return {"runner": runner, "template_location": template}
        seconds = time.monotonic() - started
        table = design_kind(config.design.kind).table.name
        removed = run.remove_duplicate_rows(config.config_hash, table)

        summary = run.summarize(
            config,
            expected_rows,
            row_suffixes(croppers),
            table=table,
            manifest=inputs.uri,
            manifest_faces=len(inputs.faces),
            manifest_dead_lettered=len(inputs.dead_letters),
            groups=group_sizes(inputs.index),
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
        run.publish(config, summary)
    if summary["status"] == NO_ROWS:
        raise UserError(f"run {config.name} -> {out_dir} {no_rows_reason(summary)} (no _SUCCESS)")
    if not quiet:
        print(format_summary(summary, out_dir))
    return summary
