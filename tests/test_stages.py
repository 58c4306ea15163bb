"""Stages on their own: a PTransform in a TestPipeline on a few elements, and assert_that."""

from __future__ import annotations

import hashlib

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from cropaudit.model.base import SaliencyModel
from cropaudit.model.baseline import CentreSurroundHandler
from cropaudit.transforms.infer import PredictSaliency
from cropaudit.transforms.records import Box, Composite, Face, RenderedComposite

BATCH = 4
FAILED_ONCE: set[str] = set()


class _FailsOnce(SaliencyModel):
    """Fails the first time it sees each batch, then answers like the real model."""

    def __init__(self, real):
        self.real = real

    def predict(self, batch):
        key = hashlib.sha256(batch.tobytes()).hexdigest()
        if key not in FAILED_ONCE:
            FAILED_ONCE.add(key)
            raise RuntimeError("injected transient failure")
        return self.real.predict(batch)


class _Broken(SaliencyModel):
    def predict(self, batch):
        raise RuntimeError("injected permanent failure")


class FailsOnceHandler(CentreSurroundHandler):
    name = "stage-test-fails-once"

    def load_model(self):
        return _FailsOnce(super().load_model())


class BrokenHandler(CentreSurroundHandler):
    name = "stage-test-broken"

    def load_model(self):
        return _Broken()


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
    with TestPipeline() as p:
        out = p | beam.Create(elements) | PredictSaliency(FailsOnceHandler(), batch_size=BATCH)
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
    with TestPipeline() as p:
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
