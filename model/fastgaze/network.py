"""FastGaze's network (spec §2) as a TensorFlow module built from the ``.vxm`` tensors.

A plain chain of 'same'-padded convolutions, 2×2 SAME max-pools and (leaky) ReLUs. The stored
Gaussian blur is deliberately not applied, because Twitter's ``candidate_crops`` printed the raw
output. The module is a ``tf.Module`` so that :mod:`.convert` can save it as a SavedModel.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cropaudit.model.fastgaze.vxm import BLUR, CONV, POOL, VxmModel


def oihw_to_hwio(weight: np.ndarray) -> np.ndarray:
    """The file's (out, in, kh, kw) conv weights in TF's (kh, kw, in, out) layout."""
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)), dtype=np.float32)


class FastGazeNet(tf.Module):
    """Batched FastGaze: (B, h, w, 3) pre-processed float32 -> (B, rows, cols) raw scores."""

    def __init__(self, model: VxmModel, content_hash: str = "") -> None:
        super().__init__(name="fastgaze")
        #: Recorded inside the module so a converted model keeps its provenance.
        self.content_hash = tf.Variable(content_hash, trainable=False, name="content_hash")
        self.kernels: list[tf.Variable] = []
        self.biases: list[tf.Variable] = []
        # (kind, index into kernels, alpha or None); alphas are fixed per layer so stay Python.
        self._plan: list[tuple[int, int, float | None]] = []
        for layer in model.layers:
            if layer.type == CONV:
                self._plan.append((CONV, len(self.kernels), layer.alpha if layer.leaky else None))
                self.kernels.append(
                    tf.Variable(oihw_to_hwio(layer.weight), trainable=False, name=f"w{layer.index}")
                )
                self.biases.append(tf.Variable(layer.bias, trainable=False, name=f"b{layer.index}"))
            elif layer.type == POOL:
                self._plan.append((POOL, -1, None))
            elif layer.type == BLUR:
                continue  # stored, but candidate_crops does not apply it
        self.alphas = [a for kind, _, a in self._plan if kind == CONV]

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        x = images
        for kind, i, alpha in self._plan:
            if kind == POOL:
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
                continue
            x = tf.nn.bias_add(
                tf.nn.conv2d(x, self.kernels[i], strides=1, padding="SAME"), self.biases[i]
            )
            x = tf.nn.relu(x) if alpha is None else tf.nn.leaky_relu(x, alpha=alpha)
        return x[..., 0]


def output_size(input_hw: tuple[int, int]) -> tuple[int, int]:
    """Grid (rows, cols) for an input of (h, w): four SAME pools, each rounding up."""
    h, w = input_hw
    for _ in range(4):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w
