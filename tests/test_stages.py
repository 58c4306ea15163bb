"""Stages on their own: a PTransform in a TestPipeline on a few elements, and assert_that."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from cropaudit.model.baseline import CentreSurroundHandler
from cropaudit.pipelines.runners import make_runner
from cropaudit.schemas.records import Box, Composite, Face, RenderedComposite
from cropaudit.transforms.infer import PredictSaliency
from tests.fault_models import FAILED_ONCE, BrokenHandler, FlakyHandler

BATCH = 4


def local_pipeline() -> test_pipeline.TestPipeline:
    """A TestPipeline on the pinned local runner (Beam's default first looks for Prism)."""
    return test_pipeline.TestPipeline(runner=make_runner("direct", PipelineOptions()))


def rendered(n: int) -> list[RenderedComposite]:
    """``n`` composites of one shape with different seeded pixels (one batch and a short one)."""
    handler = CentreSurroundHandler()
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        face = Face(f"img-{i}", f"img-{i}.png", f"s-{i}", (("g", "x"),))
        composite = Composite(f"pairs:k:{i}:a_first", "pairs", "x", "x", i, "a_first", face, face)
        canvas = rng.integers(0, 256, (96, 64, 3), dtype=np.uint8)
        box_a, box_b = Box(0, 0, 64, 40), Box(0, 56, 64, 40)
        out.append(RenderedComposite(composite, 64, 96, box_a, box_b, handler.preprocess(canvas)))
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
