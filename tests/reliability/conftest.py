"""Helpers for the reliability tests: small synthetic runs and hand-made bad inputs."""

from __future__ import annotations

import csv
import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cropaudit.pipelines.demo_pipeline import embedded_config
from cropaudit.synthetic import write_face_set


def face_rows(face_set: Path) -> list[dict[str, str]]:
    """The synthetic manifest's rows with absolute image paths, for a test to edit."""
    with open(face_set, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["image_uri"] = str(face_set.parent / r["image_uri"])
    return rows


def tiny_config(manifest: Path, **design):
    return embedded_config().replace(
        name="reliability",
        manifest={"path": str(manifest)},
        design={"composites_per_pair": 2, "controls": [], **design},
    )


@pytest.fixture(scope="session")
def face_set(tmp_path_factory) -> Path:
    return write_face_set(tmp_path_factory.mktemp("faces"), seed=5, subjects_per_group=2)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width×height (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def exif_rotated_jpeg() -> bytes:
    """40 wide × 20 high stored, EXIF orientation 6 (display rotated 90° clockwise)."""
    img = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg_bytes(img, exif=exif)


def bad_image_cases() -> dict[str, tuple[bytes | None, str | None]]:
    """name -> (bytes, or None for a missing file; expected reason, or None if converted)."""
    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48, 3), np.uint8))
    good_jpeg = jpeg_bytes(face)
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    la = Image.new("LA", (32, 32), (10, 0))
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)
    sixteen = Image.fromarray(np.full((32, 32), 65535, np.uint16))
    return {
        "missing": (None, "image_missing"),
        "zero_bytes": (b"", "image_empty"),
        "truncated_jpeg": (good_jpeg[: len(good_jpeg) // 2], "image_truncated"),
        "not_an_image": (b"hello, I am text" * 10, "image_not_an_image"),
        "cmyk_jpeg": (jpeg_bytes(face.convert("CMYK")), None),
        "rgba_transparent": (png_bytes(rgba), None),
        "la_transparent": (png_bytes(la), None),
        "p_transparent": (buf.getvalue(), None),
        "png_16bit": (png_bytes(sixteen), None),
        "grayscale": (png_bytes(face.convert("L")), None),
        "exif_rotated": (exif_rotated_jpeg(), None),
        "one_pixel": (png_bytes(Image.new("RGB", (1, 1))), "image_too_small"),
        "extreme_aspect": (png_bytes(Image.new("RGB", (2000, 40))), "image_extreme_aspect"),
        "decompression_bomb": (png_declaring(40000, 40000), "image_too_large"),
    }


def tree_digest(root: Path) -> dict[str, str]:
    """Every file (sha256) and folder below ``root``: equal digests, nothing changed."""
    return {
        p.relative_to(root).as_posix(): (
            "folder" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        )
        for p in sorted(root.rglob("*"))
    }
