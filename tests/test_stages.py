"""Stages on their own: a PTransform in a TestPipeline on a few elements, and assert_that.
Here: the prediction stage (retry, dead letter, short batch) and every stage's element types;
the other stages' tests sit beside their modules' (test_render, test_boxes, test_crop, ...)."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.typehints.decorators import TypeCheckError

from cropaudit.model.baseline import CentreSurroundHandler
from cropaudit.pipelines.runners import make_runner
from cropaudit.schemas.records import Box, Composite, Face, RenderedComposite
from cropaudit.transforms.infer import PredictSaliency
from tests.fault_models import FAILED_ONCE, BrokenHandler, FlakyHandler

BATCH = 4


def local_pipeline() -> test_pipeline.TestPipeline:
    """A TestPipeline on the pinned local runner (Beam's default first looks for Prism)."""
    return test_pipeline.TestPipeline(runner=make_runner("direct", PipelineOptions()))


def canvases(n: int) -> list[np.ndarray]:
    """``n`` canvases of one shape with different seeded pixels."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (96, 64, 3), dtype=np.uint8) for _ in range(n)]


def rendered(n: int) -> list[RenderedComposite]:
    """``n`` composites of one shape (for a batch of 4: one batch and a short one)."""
    handler = CentreSurroundHandler()
    out = []
    for i, canvas in enumerate(canvases(n)):
        face = Face(f"img-{i}", f"img-{i}.png", f"s-{i}", (("g", "x"),))
        composite = Composite(f"pairs:k:{i}:a_first", "pairs", "x", "x", i, "a_first", face, face)
        box_a, box_b = Box(0, 0, 64, 40), Box(0, 56, 64, 40)
        out.append(
            RenderedComposite(
                composite,
                box_a,
                box_b,
                width=64,
                height=96,
                model_input=handler.preprocess(canvas),
            )
        )
    return out


def test_predict_retries_a_failure_and_pads_the_short_last_batch():
    elements = rendered(BATCH + 1)
    handler = CentreSurroundHandler()
    model = handler.load_model()
    # each composite scored alone, at the fixed batch size: what any batching must give
    expected = []
    for r in elements:
        scores = model.predict_fixed(r.model_input[None], BATCH)[0]
        grid = handler.to_grid(scores, (r.height, r.width), r.model_input.shape[:2])
        expected.append((r.composite.composite_id, grid.scores.tobytes(), grid.xs.tobytes()))
    FAILED_ONCE.clear()
    with local_pipeline() as p:
        out = p | beam.Create(elements) | PredictSaliency(FlakyHandler(), batch_size=BATCH)
        assert_that(
            out.predicted
            | "Key"
            >> beam.Map(
                lambda rg: (
                    rg[0].composite.composite_id,
                    rg[1].scores.tobytes(),
                    rg[1].xs.tobytes(),
                )
            ),
            equal_to(expected),
        )
        assert_that(out.dead_letter, equal_to([]), label="NoDeadLetters")
    assert FAILED_ONCE, "the failure was injected"


def test_predict_dead_letters_every_composite_of_a_model_that_always_fails():
    elements = rendered(BATCH + 1)
    with local_pipeline() as p:
        out = (
            p
            | beam.Create(elements)
            | PredictSaliency(BrokenHandler(), batch_size=BATCH, id_suffix="#broken")
        )
        assert_that(out.predicted, equal_to([]), label="NothingPredicted")
        assert_that(
            out.dead_letter | beam.Map(lambda d: (d.stage, d.reason, d.element_id, d.detail)),
            equal_to(
                [
                    (
                        "predict",
                        "inference_error",
                        f"{r.composite.composite_id}#broken",
                        "RuntimeError: injected permanent failure",
                    )
                    for r in elements
                ]
            ),
        )


def test_a_short_batch_is_padded_and_scores_as_each_image_alone_under_run_inference():
    """Three composites, batch 4: one call padded by one row; each grid equals what the model's
    Beam handler gives for that composite's canvas alone (``run_inference`` on one image)."""
    elements = rendered(BATCH - 1)
    handler = CentreSurroundHandler().configure(batch_size=BATCH)
    model = handler.load_model()
    expected = [
        (r.composite.composite_id, handler.run_inference([c], model)[0].inference.scores.tobytes())
        for r, c in zip(elements, canvases(BATCH - 1))
    ]
    # the same again with one model per machine (share_model_across_processes, for a GPU)
    shared = CentreSurroundHandler().configure(share_model_across_processes=True)
    p = local_pipeline()
    composites = p | beam.Create(elements)
    for label, h in (("PerProcess", handler), ("Shared", shared)):
        out = composites | label >> PredictSaliency(h, batch_size=BATCH)
        key = f"Key{label}" >> beam.MapTuple(
            lambda r, g: (r.composite.composite_id, g.scores.tobytes())
        )
        assert_that(out.predicted | key, equal_to(expected), label=f"Equal{label}")
    result = p.run()
    result.wait_until_finish()
    padding = result.metrics().query(MetricsFilter().with_name("batch_padding_rows"))["counters"]
    assert sum(c.committed for c in padding) == 2  # one padded row in each branch


def _stages():
    """(name, a stage built for a few real elements) for every PTransform of the audit."""
    from cropaudit.config import LayoutConfig
    from cropaudit.model.registry import load_handler
    from cropaudit.transforms.boxes import CropBoxes
    from cropaudit.transforms.crop import SimulateCrops
    from cropaudit.transforms.design import SampleComposites
    from cropaudit.transforms.render import RenderComposites
    from cropaudit.transforms.write import WriteDeadLetters, WriteSurvivalTable

    handler = CentreSurroundHandler()
    return {
        "SampleComposites": lambda: SampleComposites([], 1, "counterbalanced"),
        "RenderComposites": lambda: RenderComposites(handler, LayoutConfig()),
        "PredictSaliency": lambda: PredictSaliency(handler),
        "CropBoxes": lambda: CropBoxes(load_handler("plugin:cropper_plugins:centred"), (1.0,)),
        "SimulateCrops": lambda: SimulateCrops(),
        "WriteSurvivalTable": lambda: WriteSurvivalTable("/nonexistent/part", pa.schema([])),
        "WriteDeadLetters": lambda: WriteDeadLetters("/nonexistent/part", "h"),
    }


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_stage_declares_its_element_types_and_beam_checks_them(stage):
    """Built on a PCollection of ints, each stage is refused while the pipeline is built."""
    p = beam.Pipeline(runner=make_runner("direct", PipelineOptions()))
    numbers = p | beam.Create([1, 2])
    with pytest.raises(TypeCheckError, match="type hint violation"):
        _ = numbers | _stages()[stage]()
