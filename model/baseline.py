"""Built-in weight-free baseline: centre-surround contrast saliency in TensorFlow.

A simplified Itti-Koch model: differences of Gaussians (centre sigma 1, surround sigma 4, at the
model-input scale) on intensity and two colour-opponent channels, summed and pooled to a
stride-16 grid — the same grid geometry as FastGaze, so crops compare directly. It needs no
download, so the tool runs anywhere; it is a reference point, not a model of Twitter's cropper.
(Spectral residual was tried first; on the 3×1 layout it fires on the straight face/white
boundary rather than on faces.)
"""

from __future__ import annotations

import hashlib

import numpy as np

from cropaudit.model.base import SaliencyModel, StrideGridHandler
from cropaudit.model.fastgaze.vxm import STRIDE  # the same grid geometry as FastGaze

CENTRE_SIGMA = 1.0
SURROUND_SIGMA = 4.0
#: Everything that defines the algorithm; its hash is the model's content hash.
DEFINITION = (
    f"centre-surround/v1;channels=I,R-G,B-Y;dog={CENTRE_SIGMA},{SURROUND_SIGMA};"
    f"abs;sum;pad=reflect;pool=avg{STRIDE}"
)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Separable Gaussian as a (k, k, 1, 1) conv kernel, truncated at 3 sigma."""
    radius = int(3 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-(x**2) / (2 * sigma**2))
    k /= k.sum()
    return np.outer(k, k).astype(np.float32)[:, :, None, None]


class CentreSurroundModel(SaliencyModel):
    def __init__(self) -> None:
        import tensorflow as tf

        self._tf = tf
        kernels = [tf.constant(gaussian_kernel(s)) for s in (CENTRE_SIGMA, SURROUND_SIGMA)]

        def blur(x, kernel):
            # Reflect at the borders: zero padding would make every image edge look salient.
            r = kernel.shape[0] // 2
            return tf.nn.conv2d(
                tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], "REFLECT"), kernel, 1, "VALID"
            )

        @tf.function(reduce_retracing=True)
        def predict(batch):
            r, g, b = batch[..., 0], batch[..., 1], batch[..., 2]
            # Intensity and two colour-opponent channels, folded into the batch axis.
            channels = tf.concat([(r + g + b) / 3.0, r - g, b - (r + g) / 2.0], axis=0) / 255.0
            channels = channels[..., None]
            dog = tf.abs(blur(channels, kernels[0]) - blur(channels, kernels[1]))
            dog = tf.add_n(tf.split(dog, 3, axis=0))
            return tf.nn.avg_pool2d(dog, STRIDE, STRIDE, "SAME")[..., 0] * 100.0

        self._predict = predict

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._predict(self._tf.constant(batch, self._tf.float32)).numpy()


class CentreSurroundHandler(StrideGridHandler):
    name = "baseline-centre-surround"
    stride = STRIDE

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(DEFINITION.encode()).hexdigest()

    def load_model(self) -> SaliencyModel:
        return CentreSurroundModel()
