"""OpenCV's static saliency (``opencv-contrib-python-headless``): spectral residual (Hou & Zhang,
CVPR 2007) and fine-grained (Montabone & Soto, 2010) saliency maps, no weights to download.

Both are saliency models, so they crop by the same rule as FastGaze (around the map's maximum):
the composite is resized as for every model (``model.resize``/``model.box``), OpenCV computes a
map at that size, and the map is average-pooled to a stride-:data:`STRIDE` grid whose cells map
back to image pixels like FastGaze's (:func:`cropaudit.model.base.stride_grid`). Each image is
computed on its own, so batches need no padding.
"""

from __future__ import annotations

import hashlib

import numpy as np

from cropaudit.model.base import SaliencyModel, StrideGridHandler
from cropaudit.model.cropper import package_version, require
from cropaudit.model.resize import DEFAULT_OPTIONS, PreprocessOptions

STRIDE = 8
#: cropaudit name -> OpenCV factory in ``cv2.saliency``.
ALGORITHMS = {
    "opencv-spectral-residual": "StaticSaliencySpectralResidual_create",
    "opencv-fine-grained": "StaticSaliencyFineGrained_create",
}
DISTRIBUTION = "opencv-contrib-python-headless"


def pool(saliency: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Mean over stride x stride cells (edge cells average the pixels they have)."""
    h, w = saliency.shape
    rows, cols = -(-h // stride), -(-w // stride)
    padded = np.full((rows * stride, cols * stride), np.nan, np.float32)
    padded[:h, :w] = saliency
    return np.nanmean(padded.reshape(rows, stride, cols, stride), axis=(1, 3)).astype(np.float32)


class OpenCVSaliencyModel(SaliencyModel):
    def __init__(self, factory: str) -> None:
        self._cv2 = require("cv2", "OpenCV saliency")
        self._algorithm = getattr(self._cv2.saliency, factory)()

    def _one(self, image: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(np.clip(np.rint(image[..., ::-1]), 0, 255).astype(np.uint8))
        ok, saliency = self._algorithm.computeSaliency(bgr)
        if not ok:
            raise RuntimeError("OpenCV computeSaliency failed")
        return pool(np.asarray(saliency, np.float32))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([self._one(x) for x in batch])

    def predict_fixed(self, batch: np.ndarray, batch_size: int) -> np.ndarray:
        """Per-image algorithm: scores never depend on the batch, so no padding is spent."""
        return self.predict(batch)


class OpenCVSaliencyHandler(StrideGridHandler):
    stride = STRIDE

    def __init__(self, name: str, options: PreprocessOptions = DEFAULT_OPTIONS) -> None:
        require("cv2", name)
        if not hasattr(__import__("cv2"), "saliency"):
            from cropaudit.errors import UserError

            raise UserError(
                f"the {name} cropper needs OpenCV's contrib modules (cv2.saliency); install "
                f"{DISTRIBUTION} with: pip install 'cropaudit[croppers]' (and not a second, "
                "non-contrib opencv package)"
            )
        super().__init__(options)
        self.name = name
        self._factory = ALGORITHMS[name]

    @property
    def source(self) -> str:
        return f"pypi:{DISTRIBUTION}=={package_version(DISTRIBUTION)}"

    @property
    def content_hash(self) -> str:
        definition = f"{self.name};cv2.saliency.{self._factory};pool=mean{STRIDE};{self.source}"
        return hashlib.sha256(definition.encode()).hexdigest()

    def load_model(self) -> SaliencyModel:
        return OpenCVSaliencyModel(self._factory)
