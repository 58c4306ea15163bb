"""Resizing an image to a model's input: the step that decides results (FastGaze spec §3).

The resize method is a named, recorded option. ``faithful`` follows the spec (JPEG DCT-domain
reduction through PIL's ``draft``, repeated halving with round-up while both halves stay at least
the target, then Lanczos); ``bilinear``, ``area`` and ``lanczos-direct`` exist for sensitivity
studies. JPEG input with an embedded ICC profile is converted to sRGB whatever the method, since
that is a decoding step, not a resampling choice.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps

RESIZE_METHODS = ("faithful", "bilinear", "area", "lanczos-direct")


@dataclass(frozen=True)
class PreprocessOptions:
    """How an image becomes model input; recorded with every result."""

    resize: str = "faithful"
    box: int = 320
    #: Round-trip in-memory images through JPEG at this quality first (``None``: no round trip),
    #: since Twitter's binary always decoded a JPEG file.
    jpeg_quality: int | None = None

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_METHODS:
            raise ValueError(f"resize must be one of {RESIZE_METHODS}, got {self.resize!r}")
        if self.box < 16:
            raise ValueError(f"box must be at least 16 pixels, got {self.box}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1..100 or None, got {self.jpeg_quality}")

    def describe(self) -> str:
        jpeg = "none" if self.jpeg_quality is None else f"q{self.jpeg_quality}"
        return f"resize={self.resize};box={self.box};jpeg={jpeg}"


DEFAULT_OPTIONS = PreprocessOptions()


def round_half_away(x: float) -> int:
    """Round half away from zero (C's ``round``), unlike Python's banker's rounding."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def fit_size(width: int, height: int, box: int = 320) -> tuple[int, int]:
    """Target (w, h) that fits a ``box``×``box`` square, aspect kept, float32 scale (§3.1)."""
    s = np.float32(min(np.float32(box) / np.float32(width), np.float32(box) / np.float32(height)))
    tw = max(1, round_half_away(float(np.float32(s * np.float32(width)))))
    th = max(1, round_half_away(float(np.float32(s * np.float32(height)))))
    return tw, th


def _halve_while_large(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    tw, th = target
    while (img.width + 1) // 2 >= tw and (img.height + 1) // 2 >= th:
        img = img.reduce(2)
    return img


def _resize_pil(img: Image.Image, target: tuple[int, int], method: str) -> Image.Image:
    if method == "faithful":
        return _halve_while_large(img, target).resize(target, Image.Resampling.LANCZOS)
    if method == "lanczos-direct":
        return img.resize(target, Image.Resampling.LANCZOS)
    if method == "bilinear":
        # Plain bilinear interpolation without anti-aliasing, as a naive pipeline would do it.
        return _bilinear_no_antialias(img, target)
    if method == "area":
        return img.resize(target, Image.Resampling.BOX)
    raise ValueError(f"unknown resize method {method!r}")


def _bilinear_no_antialias(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    import tensorflow as tf

    arr = np.asarray(img, dtype=np.float32)[None]
    out = tf.image.resize(arr, (target[1], target[0]), method="bilinear", antialias=False)
    return Image.fromarray(np.clip(np.rint(out[0].numpy()), 0, 255).astype(np.uint8))


def decode_jpeg_for_model(
    data: bytes, options: PreprocessOptions
) -> tuple[tuple[int, int], np.ndarray]:
    """Decode JPEG bytes the way the binary did: DCT-domain reduction first (``faithful`` only).

    Returns the original (H0, W0) and the resized float32 RGB array on a 0..255 scale. EXIF
    orientation is applied (after the DCT reduction, which scales both sides alike), so sizes
    and pixels are those of the displayed image, as every other decoder in cropaudit sees it.
    Callers validate the bytes first (``transforms.images.decode_image``: size limits,
    decompression bombs); non-JPEG images go through that decoder, not this function.
    """
    img = Image.open(io.BytesIO(data))
    is_jpeg = img.format == "JPEG"
    orientation = img.getexif().get(0x0112, 1) if is_jpeg else 1
    turned = orientation in (5, 6, 7, 8)  # stored sideways: displayed width is stored height
    width, height = (img.height, img.width) if turned else (img.width, img.height)
    target = fit_size(width, height, options.box)
    if options.resize == "faithful" and is_jpeg:
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding (in stored orientation)
        img.draft("RGB", (target[1], target[0]) if turned else target)
    if orientation != 1:
        img = ImageOps.exif_transpose(img)  # a new image; keeps the ICC profile in ``info``
    img = _to_srgb(img) if is_jpeg else img.convert("RGB")
    return (height, width), np.asarray(_resize_pil(img, target, options.resize), dtype=np.float32)


def _to_srgb(img: Image.Image) -> Image.Image:
    """RGB in sRGB: an embedded ICC profile is applied (§3.2); without one, a plain convert."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if img.mode not in ("RGB", "CMYK", "L"):
                img = img.convert("RGB")
            out = ImageCms.profileToProfile(
                img, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if out is not None:
                return out
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable profile: decode as if it were absent, as libjpeg callers do
    return img.convert("RGB")


def resize_for_model(image: np.ndarray, options: PreprocessOptions) -> np.ndarray:
    """(H0, W0, 3) uint8 RGB in memory -> resized (h, w, 3) float32 on a 0..255 scale."""
    if options.jpeg_quality is not None:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=options.jpeg_quality)
        return decode_jpeg_for_model(buf.getvalue(), options)[1]
    img = Image.fromarray(image)
    target = fit_size(img.width, img.height, options.box)
    return np.asarray(_resize_pil(img, target, options.resize), dtype=np.float32)
