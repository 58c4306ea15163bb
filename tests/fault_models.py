"""Saliency models that fail on purpose, for the fault tests of runs and of the prediction stage."""

from __future__ import annotations

import hashlib

from cropaudit.model.base import SaliencyModel
from cropaudit.model.baseline import CentreSurroundHandler

#: Batches (by content) that have failed once; clear it before a test that counts on it.
FAILED_ONCE: set[str] = set()


class FlakyModel(SaliencyModel):
    """Fails the first time it sees each batch, then answers like the real model."""

    def __init__(self, real):
        self.real = real

    def predict(self, batch):
        key = hashlib.sha256(batch.tobytes()).hexdigest()
        if key not in FAILED_ONCE:
            FAILED_ONCE.add(key)
            raise RuntimeError("injected transient failure")
        return self.real.predict(batch)


class BrokenModel(SaliencyModel):
    def predict(self, batch):
        raise RuntimeError("injected permanent failure")


class FlakyHandler(CentreSurroundHandler):
    name = "flaky-baseline"

    def load_model(self):
        return FlakyModel(super().load_model())


class BrokenHandler(CentreSurroundHandler):
    name = "broken-baseline"

    def load_model(self):
        return BrokenModel()

    def check(self):  # the run's start-up check would stop it; this fault is for the workers
        pass
