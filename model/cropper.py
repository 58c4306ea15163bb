"""Box croppers: the kind of cropper that returns crop boxes instead of a saliency map.

A cropper takes an image and the requested aspect ratios and returns a
:class:`~cropaudit.schemas.records.Cropping` (one box per ratio, plus the salient point when
it has one). Saliency models (:class:`~cropaudit.model.base.SaliencyModelHandler`) are croppers
through the crop rule (:func:`cropaudit.transforms.crop.grid_cropping`); a :class:`BoxCropper`
(smartcrop, a Python callable, an HTTP cropping API) decides its boxes itself. Both split the
same way Beam's ``ModelHandler`` does: the handler is small and picklable and records the
cropper's identity (name, version, settings); :meth:`BoxCropper.load_model` builds the heavy
part once per worker. Results are scored from the boxes alone, so nothing downstream (survival
table, statistics, report) knows which kind ran.
"""

from __future__ import annotations

import abc
import hashlib
import importlib
import json
from collections.abc import Mapping
from typing import Any, Union

import numpy as np

from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyModelHandler, provenance
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


class LoadedCropper(abc.ABC):
    """A cropper ready to run on one worker."""

    @abc.abstractmethod
    def crop(self, image: np.ndarray, ratios: tuple[float, ...]) -> Cropping:
        """(H, W, 3) uint8 RGB and aspect ratios (height/width) -> one box per ratio."""


class BoxCropper(abc.ABC):
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

    @abc.abstractmethod
    def load_model(self) -> LoadedCropper:
        """Build the cropper; called once per worker."""

    def check(self) -> None:
        """Refuse a cropper that cannot run, before a run starts (the handler contract);
        constructing one already imports and resolves it, so by default nothing is left."""
        return

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

    def describe(self) -> dict[str, str]:
        return provenance(self)


#: Any cropper the pipeline can run.
Cropper = Union[SaliencyModelHandler, BoxCropper]  # noqa: UP007 (runtime isinstance on 3.10)
