"""A catalogue model behind the handler contract: named and hashed by its catalogue entry.

Wraps the handler of the model's kind (FastGaze, Keras), so result rows record the catalogue
name and the verified sha256. The wrapper is built once on the launcher, after the file has been
fetched and verified, and pickled to workers with the entry and the resolved cache folder; a
worker's :meth:`load_model` (once per worker process) re-verifies its cached copy, or fetches it
into that cache first, before building the model. Nothing is fetched per element.
"""

from __future__ import annotations

import numpy as np

from cropaudit.model.base import SaliencyGrid, SaliencyModel, SaliencyModelHandler
from cropaudit.model.catalogue import CatalogueEntry
from cropaudit.model.download import fetch_entry


class CatalogueHandler(SaliencyModelHandler):
    """Delegates the model's work to ``inner``; identity (name, hash, source) is the entry's."""

    def __init__(
        self, entry: CatalogueEntry, inner: SaliencyModelHandler, cache_dir: str, offline: bool
    ) -> None:
        self.entry = entry
        self.name = entry.name
        self._inner = inner
        self._cache_dir = cache_dir
        self._offline = offline

    def __repr__(self) -> str:
        return f"CatalogueHandler({self.entry.name!r}, {self._inner!r})"

    def __getattr__(self, attr: str):
        """Model-specific extras of the wrapped handler (e.g. FastGaze's ``preprocess_jpeg``)."""
        if attr.startswith("_"):  # never recurse while unpickling, before _inner exists
            raise AttributeError(attr)
        return getattr(self._inner, attr)

    @property
    def source(self) -> str:
        return self.entry.source

    @property
    def content_hash(self) -> str:
        return self.entry.sha256

    @property
    def preprocessing(self) -> str:
        return self._inner.preprocessing

    def load_model(self) -> SaliencyModel:
        fetch_entry(self.entry, self._cache_dir, self._offline)
        return self._inner.load_model()

    def check(self) -> None:
        fetch_entry(self.entry, self._cache_dir, self._offline)
        self._inner.check()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return self._inner.preprocess(image)

    def to_grid(
        self, scores: np.ndarray, image_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> SaliencyGrid:
        return self._inner.to_grid(scores, image_hw, input_hw)
