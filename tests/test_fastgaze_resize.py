"""§3 pre-processing details: target size, DCT draft decoding and ICC conversion."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms

from cropaudit.model.resize import PreprocessOptions, decode_jpeg_for_model, fit_size


def _jpeg(image: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95, **kwargs)
    return buf.getvalue()


def test_fit_size_reference():
    assert fit_size(583, 3000) == (62, 320)
    assert fit_size(3000, 583) == (320, 62)
    assert fit_size(100, 50) == (320, 160)  # upscaling is allowed


def test_draft_decode_shape_and_original_size():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (3000, 583, 3), dtype=np.uint8)
    hw, out = decode_jpeg_for_model(_jpeg(image), PreprocessOptions())
    assert hw == (3000, 583)
    assert out.shape == (320, 62, 3) and out.dtype == np.float32


def test_icc_profile_is_applied():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    options = PreprocessOptions()
    _, plain = decode_jpeg_for_model(_jpeg(image), options)
    _, tagged = decode_jpeg_for_model(_jpeg(image, icc_profile=srgb), options)
    assert np.abs(plain - tagged).max() <= 2.0  # sRGB -> sRGB is (nearly) the identity
    _, broken = decode_jpeg_for_model(_jpeg(image, icc_profile=b"not a profile"), options)
    np.testing.assert_array_equal(broken, plain)
