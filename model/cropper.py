"""Box croppers: the kind of cropper that returns crop boxes instead of a saliency map.

A cropper takes an image and the requested aspect ratios and returns a
:class:`~cropaudit.schemas.records.Cropping` (one box per ratio, plus the salient point when
it has one). Saliency models (:class:`~cropaudit.model.base.SaliencyModelHandler`) are croppers
through the crop rule (:func:`cropaudit.transforms.crop.grid_cropping`); a :class:`BoxCropper`
(smartcrop, a Python callable, an HTTP cropping API) decides its boxes itself. Both are Beam
``ModelHandler`` subclasses (:class:`~cropaudit.model.base.CropperHandler`): small and picklable,
recording the cropper's identity (name, version, settings); :meth:`BoxCropper.load_model` builds
the heavy part once per worker. Under ``RunInference`` a box cropper's inference is its
:class:`Cropping`, for the ratios in ``inference_args`` (``{"aspect_ratios": (...)}``), else
those set by :meth:`BoxCropper.configure` (default: Twitter's). Results are scored from the boxes
alone, so nothing downstream (survival table, statistics, report) knows which kind ran.
"""

from __future__ import annotations

import abc
import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

from cropaudit.errors import UserError
from cropaudit.model.base import CropperHandler, SaliencyModelHandler
from cropaudit.schemas.criteria import TWITTER_ASPECT_RATIOS
from cropaudit.schemas.records import Cropping

#: The optional extra that installs the third-party croppers.
CROPPERS_EXTRA = "croppers"


def require(module: str, cropper: str, extra: str = CROPPERS_EXTRA):
    """Import ``module`` or fail with one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(
            f"the {cropper} cropper needs the optional package {module!r} ({exc}); install it "
            f"with: pip install 'cropaudit[{extra}]'"
        ) from None


def package_version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


class CropperError(Exception):
    """A cropper failure with a short reason code for its dead letter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class LoadedCropper(abc.ABC):
    """A cropper ready to run on one worker."""

    @abc.abstractmethod
    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        """(H, W, 3) uint8 RGB and aspect ratios (height/width) -> one box per ratio."""


def crop_or_error(crop, image: np.ndarray, ratios: tuple[float, ...]):
    """``crop(image, ratios)``, or the exception it raised (the caller dead-letters it)."""
    try:
        return crop(image, ratios)
    except Exception as exc:  # noqa: BLE001 - dead-lettered by the caller
        return exc


def crop_batch(model, images: Sequence[np.ndarray], ratios: tuple[float, ...]) -> list:
    """The cropper's :class:`Cropping` (or the exception it raised) for each image."""
    many = getattr(model, "crop_many", None)
    if many is not None:
        return many(images, ratios)
    return [crop_or_error(model.crop, image, ratios) for image in images]


def checked(result, width: int, height: int) -> tuple[str, str] | None:
    """None for a usable cropping, else the dead letter's (reason, detail)."""
    if isinstance(result, Exception):  # a plugin's CropperError carries its own reason
        return getattr(result, "reason", "cropper_error"), f"{type(result).__name__}: {result}"
    if not isinstance(result, Cropping):
        return "cropper_error", f"cropper returned {type(result).__name__}, not a Cropping"
    try:
        result.check(width, height)
    except ValueError as exc:
        return "bad_crop_box", str(exc)
    return None


class BoxCropper(CropperHandler):
    """Describes a box cropper; cheap to build and to pickle (it travels to workers).

    Its identity is ``name`` plus :meth:`settings`: the content hash is the sha256 of both
    (with the package version), so a row's ``model_hash`` changes whenever the cropper could
    decide differently.
    """

    #: Short identifier recorded in every result row.
    name: str
    #: The model input is the rendered image itself; kept for the handler contract.
    preprocessing_kind = "image"

    @abc.abstractmethod
    def settings(self) -> Mapping[str, Any]:
        """Everything that defines the cropper's decisions (recorded as ``preprocessing``)."""

    @property
    @abc.abstractmethod
    def source(self) -> str:
        """Where the cropper comes from, with its version (e.g. ``pypi:smartcrop==0.5.0``)."""

    #: Ratios (height/width) ``run_inference`` crops for when ``inference_args`` name none.
    aspect_ratios: tuple[float, ...] = TWITTER_ASPECT_RATIOS

    @abc.abstractmethod
    def load_model(self) -> LoadedCropper:
        """Build the cropper; called once per worker."""

    def configure(self, *, aspect_ratios: Sequence[float] | None = None, **settings):
        """:meth:`CropperHandler.configure`, plus the default ``aspect_ratios``."""
        if aspect_ratios is not None:
            self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        return super().configure(**settings)

    def validate_inference_args(self, inference_args: dict[str, Any] | None) -> None:
        unknown = set(inference_args or {}) - {"aspect_ratios"}
        if unknown:
            raise ValueError(f"{self.name}: unknown inference_args {sorted(unknown)}")

    def infer(self, model: LoadedCropper, images: list[np.ndarray], inference_args: dict) -> list:
        r"""Checked images -> their ``Cropping``\ s; a failed or malformed cropping raises
        ``ValueError`` with its reason (Beam's ``with_exception_handling`` routes the batch
        aside)."""
        ratios = inference_args.get("aspect_ratios") or self.aspect_ratios
        ratios = tuple(float(r) for r in ratios)
        results = crop_batch(model, [self.preprocess(x) for x in images], ratios)
        for image, result in zip(images, results):
            problem = checked(result, image.shape[1], image.shape[0])
            if problem is not None:
                raise ValueError(f"{self.name}: {problem[0]}: {problem[1]}")
        return results

    def settings_json(self) -> str:
        return json.dumps(self.settings(), sort_keys=True, separators=(",", ":"), default=str)

    @property
    def content_hash(self) -> str:
        definition = f"{self.name};{self.source};{self.settings_json()}"
        return hashlib.sha256(definition.encode()).hexdigest()

    @property
    def preprocessing(self) -> str:
        return f"rgb uint8 image; settings {self.settings_json()}"

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The rendered RGB image, unchanged: the cropper sees what a user would upload."""
        return image


#: Any cropper the pipeline can run.
Cropper = Union[SaliencyModelHandler, BoxCropper]  # noqa: UP007 (runtime isinstance on 3.10)
