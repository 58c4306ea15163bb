"""Decoding face images into RGB arrays, with a documented conversion or a reason code for each
kind of bad input (never a crash, never a silent replacement).

Conversions: EXIF orientation applied; greyscale, palette, CMYK and 16-bit images converted to
8-bit RGB; transparency flattened onto white. Refused with a reason code: see ``REASONS``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

#: Reason codes for images that cannot be used, with their meaning.
REASONS = {
    "image_missing": "the file does not exist or cannot be read",
    "image_empty": "the file has zero bytes",
    "image_not_an_image": "the bytes are not an image format Pillow can identify",
    "image_truncated": "the image data ends early or is corrupt",
    "image_too_large": "declared size exceeds the pixel limit (decompression-bomb guard)",
    "image_too_small": "smaller than the minimum side length",
    "image_extreme_aspect": "aspect ratio beyond the allowed maximum",
    "image_file_too_large": "the file exceeds the byte limit",
    "image_not_a_file": "the path is a FIFO, device, socket or folder (never opened for reading)",
    "canvas_too_large": "the face scaled for the layout, or the composite, exceeds the pixel limit",
}

MAX_PIXELS = 60_000_000
MAX_FILE_BYTES = 64 << 20
MIN_SIDE = 8
MAX_ASPECT = 20.0


class ImageError(Exception):
    """An image that cannot be used; ``reason`` is a code from :data:`REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def decode_image(data: bytes, name: str = "") -> np.ndarray:
    """Image bytes -> (H, W, 3) uint8 RGB, or :class:`ImageError` with a reason code."""
    if not data:
        raise ImageError("image_empty", f"{name} has zero bytes")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError("image_file_too_large", f"{name} has {len(data)} bytes")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError("image_too_large", f"{name}: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError("image_not_an_image", f"{name} is not a recognised image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError("image_truncated", f"{name}: {exc}") from None
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError("image_too_large", f"{name} declares {width}x{height} pixels")
    if min(width, height) < MIN_SIDE:
        raise ImageError("image_too_small", f"{name} is {width}x{height}")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError("image_extreme_aspect", f"{name} is {width}x{height}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except Image.DecompressionBombWarning as exc:
        raise ImageError("image_too_large", f"{name}: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise ImageError("image_too_large", f"{name}: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError("image_truncated", f"{name}: {exc}") from None
    return np.asarray(rgb, dtype=np.uint8)


def load_image(uri: str) -> np.ndarray:
    """Read and decode the image at ``uri`` (local or ``gs://``)."""
    return decode_image(read_image_bytes(uri), uri)


def read_image_bytes(uri: str) -> bytes:
    """The bytes of the image file at ``uri``, within :data:`MAX_FILE_BYTES`, or
    :class:`ImageError`: a FIFO, device or socket is never opened for reading."""
    from cropaudit import fileio
    from cropaudit.errors import NotAFileError, TooLargeError

    try:
        data = fileio.read_bytes(uri, limit=MAX_FILE_BYTES)
    except FileNotFoundError:
        raise ImageError("image_missing", f"{uri} does not exist") from None
    except NotAFileError as exc:
        raise ImageError("image_not_a_file", str(exc)) from None
    except TooLargeError as exc:
        raise ImageError("image_file_too_large", str(exc)) from None
    except OSError as exc:
        raise ImageError("image_missing", f"{uri}: {exc}") from None
    return data
