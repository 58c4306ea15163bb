"""Resolve a model spec string to a cropper: a :class:`SaliencyModelHandler` or a
:class:`~cropaudit.model.cropper.BoxCropper` (the one place that knows every kind of model).

Specs: a catalogue name (``baseline``, ``fastgaze``, the third-party croppers ``smartcrop``,
``opencv-spectral-residual``, ``opencv-fine-grained``, or a name from the user catalogue; see
:mod:`cropaudit.model.catalogue`), fetched and verified once here; ``plugin:module:function`` or
``plugin:NAME`` (a Python callable, or an entry point in group ``cropaudit.croppers``) and an
``http://``/``https://`` URL (a cropping endpoint; see :mod:`cropaudit.model.plugin`);
``fastgaze:PATH`` (a ``.vxm`` file or a converted model); ``keras:PATH`` (a ``.keras`` file or
a SavedModel directory); a bare path ending in ``.vxm``/``.keras`` or a directory is recognised
too. A catalogue name wins over a same-named folder; write ``./NAME`` or ``keras:NAME`` for the
folder.
"""

from __future__ import annotations

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyModelHandler
from cropaudit.model.catalogue import BUILTIN, LOCAL_KINDS, CatalogueEntry, catalogue
from cropaudit.model.cropper import Cropper
from cropaudit.model.resize import DEFAULT_OPTIONS, PreprocessOptions

_PATH_SUFFIXES = (".vxm", ".keras", ".h5")


def load_handler(
    spec: str,
    options: PreprocessOptions = DEFAULT_OPTIONS,
    *,
    catalogue_file: str | None = None,
    cache_dir: str | None = None,
    offline: bool = False,
) -> Cropper:
    """The handler for ``spec``; ``catalogue_file``/``cache_dir``/``offline`` apply to names."""
    if spec.startswith(("plugin:", "http://", "https://")):
        from cropaudit.model.plugin import plugin_cropper

        return plugin_cropper(spec)
    if spec in BUILTIN or _is_name(spec):
        entries = catalogue(catalogue_file)
        if spec in entries:
            return from_catalogue(entries[spec], options, cache_dir, offline)
        if not fileio.exists(spec):
            raise UserError(
                f"unknown model {spec!r}: neither a catalogue name ({', '.join(sorted(entries))})"
                " nor an existing path"
            )
    kind, _, path = spec.partition(":")
    if kind not in ("fastgaze", "keras"):  # a bare path: recognise it by its form
        kind, path = ("fastgaze" if spec.endswith(".vxm") else "keras"), spec
    if not path:
        raise UserError(f"model spec {spec!r} needs a path: '{kind}:PATH'")
    return _by_kind(kind, path, options)


def from_catalogue(
    entry: CatalogueEntry,
    options: PreprocessOptions = DEFAULT_OPTIONS,
    cache_dir: str | None = None,
    offline: bool = False,
) -> Cropper:
    """Fetch and verify ``entry`` now (on the launcher), then wrap the handler of its kind."""
    if entry.kind in LOCAL_KINDS:
        return _local(entry.name, options)
    from cropaudit.model.catalogue_handler import CatalogueHandler
    from cropaudit.model.download import fetch_entry, is_offline, resolve_cache_dir

    cache_dir, offline = resolve_cache_dir(cache_dir), is_offline(offline)
    path = fetch_entry(entry, cache_dir, offline)
    return CatalogueHandler(entry, _by_kind(entry.kind, path, options), cache_dir, offline)


def _local(name: str, options: PreprocessOptions) -> Cropper:
    """A model that ships with cropaudit or its ``croppers`` extra (imported only when asked)."""
    if name == "smartcrop":
        from cropaudit.model.croppers.smartcrop import SmartcropCropper

        return SmartcropCropper()
    if name.startswith("opencv-"):
        from cropaudit.model.croppers.opencv_saliency import OpenCVSaliencyHandler

        return OpenCVSaliencyHandler(name, options)
    from cropaudit.model.baseline import CentreSurroundHandler

    return CentreSurroundHandler(options)


def _is_name(spec: str) -> bool:
    """A bare word, not a ``kind:PATH`` spec nor anything shaped like a path."""
    return ":" not in spec and "/" not in spec and not spec.endswith(_PATH_SUFFIXES)


def _by_kind(kind: str, path: str, options: PreprocessOptions) -> SaliencyModelHandler:
    if kind == "fastgaze":
        from cropaudit.model.fastgaze.handler import FastGazeHandler

        return FastGazeHandler(path, options)
    from cropaudit.model.keras_model import KerasSaliencyHandler

    return KerasSaliencyHandler(path, options)
