"""Resolve a model spec string to a cropper (the one place that knows every kind of model): a
:class:`SaliencyModelHandler` or a :class:`~cropaudit.model.cropper.BoxCropper`, both Beam
``ModelHandler`` subclasses. :func:`model_handler` is the public factory
(``cropaudit.model.model_handler``); :func:`load_handler` resolves a spec with the run's
pre-processing options.

Specs: a catalogue name (``baseline``, ``fastgaze``, the third-party croppers ``smartcrop``,
``opencv-spectral-residual``, ``opencv-fine-grained``, ``vips-attention``, ``vips-entropy``,
``vips-centre``, ``thumbor``, or a name from the user catalogue; see
:mod:`cropaudit.model.catalogue`), fetched and verified once here; ``plugin:module:function`` or
``plugin:NAME`` (a Python callable, or an entry point in group ``cropaudit.croppers``) and an
``http://``/``https://`` URL (a cropping endpoint; see :mod:`cropaudit.model.plugin`);
``thumbor+http://HOST:PORT#root=DIR`` (a thumbor server the user runs; see
:mod:`cropaudit.model.croppers.thumbor`);
``fastgaze:PATH`` (a ``.vxm`` file or a converted model); ``keras:PATH`` (a ``.keras`` file or
a SavedModel directory); a bare path ending in ``.vxm``/``.keras`` or a directory is recognised
too. A catalogue name wins over a same-named folder; write ``./NAME`` or ``keras:NAME`` for the
folder.
"""

from __future__ import annotations

from collections.abc import Sequence

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyModelHandler
from cropaudit.model.catalogue import BUILTIN, LOCAL_KINDS, CatalogueEntry, catalogue
from cropaudit.model.cropper import BoxCropper, Cropper
from cropaudit.model.resize import DEFAULT_OPTIONS, PreprocessOptions

_PATH_SUFFIXES = (".vxm", ".keras", ".h5")


def model_handler(
    spec: str,
    *,
    options: PreprocessOptions = DEFAULT_OPTIONS,
    batch_size: int | None = None,
    share_model_across_processes: bool | None = None,
    model_copies: int | None = None,
    aspect_ratios: Sequence[float] | None = None,
    catalogue_file: str | None = None,
    cache_dir: str | None = None,
    offline: bool = False,
) -> Cropper:
    """A Beam ``ModelHandler`` for ``spec`` (the specs of ``--model``), for ``RunInference``.

    Input: an ``(H, W, 3)`` uint8 RGB image (keyed ones through Beam's ``KeyedModelHandler``);
    output: ``PredictionResult(image, inference, model_id="NAME@sha256:HASH")`` whose inference
    is a :class:`~cropaudit.model.base.SaliencyGrid` in the image's pixels, or a box cropper's
    ``Cropping`` (for ``aspect_ratios``, default Twitter's, or those in ``inference_args``).
    ``batch_size``: rows per prediction call, fixed (default 16); ``share_model_across_processes``
    and ``model_copies``: Beam's (one shared copy per machine suits a GPU; off by default).
    """
    handler = load_handler(
        spec, options, catalogue_file=catalogue_file, cache_dir=cache_dir, offline=offline
    )
    handler.configure(
        batch_size=batch_size,
        share_model_across_processes=share_model_across_processes,
        model_copies=model_copies,
    )
    if aspect_ratios is not None:
        if not isinstance(handler, BoxCropper):
            raise UserError(
                f"{spec}: aspect_ratios is for box croppers; saliency models crop by the crop"
                " rule (cropaudit.transforms.crop.grid_cropping)"
            )
        handler.configure(aspect_ratios=aspect_ratios)
    return handler


def load_handler(
    spec: str,
    options: PreprocessOptions = DEFAULT_OPTIONS,
    *,
    catalogue_file: str | None = None,
    cache_dir: str | None = None,
    offline: bool = False,
) -> Cropper:
    """The handler for ``spec``; ``catalogue_file``/``cache_dir``/``offline`` apply to names."""
    if spec.startswith("thumbor+"):
        from cropaudit.model.croppers.thumbor import ThumborCropper

        return ThumborCropper(spec)
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
    if name == "thumbor":
        from cropaudit.model.croppers.thumbor import ThumborCropper

        return ThumborCropper()
    if name.startswith("vips-"):
        from cropaudit.model.croppers.vips import VipsCropper

        return VipsCropper(name)
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
