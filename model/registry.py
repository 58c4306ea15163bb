"""Resolve a model spec string to a :class:`SaliencyModelHandler` (the one place that knows
every kind of model).

Specs: ``baseline``; ``fastgaze:PATH`` (a ``.vxm`` file or a converted model); ``keras:PATH``
(a ``.keras`` file or a SavedModel directory); a bare path ending in ``.vxm``/``.keras`` or a
directory is recognised too.
"""

from __future__ import annotations

from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyModelHandler
from cropaudit.model.resize import DEFAULT_OPTIONS, PreprocessOptions


def load_handler(
    spec: str, options: PreprocessOptions = DEFAULT_OPTIONS
) -> SaliencyModelHandler:
    kind, _, path = spec.partition(":")
    if kind not in ("baseline", "fastgaze", "keras"):  # a bare path: recognise it by its form
        kind, path = ("fastgaze" if spec.endswith(".vxm") else "keras"), spec
    if kind == "baseline":
        from cropaudit.model.baseline import CentreSurroundHandler

        return CentreSurroundHandler(options)
    if not path:
        raise UserError(f"model spec {spec!r} needs a path: '{kind}:PATH'")
    if kind == "fastgaze":
        from cropaudit.model.fastgaze.handler import FastGazeHandler

        return FastGazeHandler(path, options)
    from cropaudit.model.keras_model import KerasSaliencyHandler

    return KerasSaliencyHandler(path, options)
