"""One image decoder for the pipeline, ``cropaudit saliency`` and the report, with the same
limits and reasons; no reader blocks on a FIFO or device (issue 13, item 4)."""

from __future__ import annotations

import ast
import json
import os
import threading

import numpy as np
import pytest
from PIL import Image

from cropaudit.cli import main
from cropaudit.transforms.images import ImageError, decode_image, load_image
from tests.reliability.conftest import exif_rotated_jpeg, jpeg_bytes, png_bytes, png_declaring
from tests.reliability.snapshot import folder_digest
from tests.reliability.test_security import package_sources


def _finishes(fn, seconds: float = 20.0):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the reader blocked"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _gradient(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 255 // (width - 1) + y * 3) % 256).astype(np.uint8)


def sixteen_bit_png(grey8: np.ndarray) -> bytes:
    """The 8-bit image at 16 bits (v * 257: the same picture with full 16-bit range)."""
    return png_bytes(Image.fromarray(grey8.astype(np.uint16) * 257))


def test_16_bit_pngs_decode_to_their_8_bit_picture():
    grey = _gradient()
    decoded = decode_image(sixteen_bit_png(grey))
    assert (decoded[..., 0] == grey).all() and not (decoded == 255).all()
    dark = np.full((16, 16), 200, np.uint16)  # 200/65535: nearly black, not 8-bit 200
    assert decode_image(png_bytes(Image.fromarray(dark))).max() == 1


@pytest.fixture
def images(tmp_path):
    """Good images and their 8-bit/flattened/upright twins, and bad ones with their reasons."""
    folder = tmp_path / "img"
    folder.mkdir()
    grey = _gradient()
    rgb = np.stack([grey, grey[::-1], 255 - grey], axis=-1)
    rgba = np.dstack([rgb, np.where(grey > 128, 255, 60).astype(np.uint8)])
    flat = decode_image(png_bytes(Image.fromarray(rgba, "RGBA")))  # the pipeline's flattening
    files = {
        "png16.png": sixteen_bit_png(grey),
        "png8.png": png_bytes(Image.fromarray(grey)),
        "alpha.png": png_bytes(Image.fromarray(rgba, "RGBA")),
        "flat.png": png_bytes(Image.fromarray(flat)),
        "exif.jpg": exif_rotated_jpeg(),
        "bomb.png": png_declaring(40000, 40000),
        "text.png": b"not an image at all" * 4,
        "good.jpg": jpeg_bytes(Image.fromarray(rgb)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    os.mkfifo(folder / "fifo.png")
    return folder


BAD = {"fifo.png": "image_not_a_file", "bomb.png": "image_too_large"}
BAD["text.png"] = "image_not_an_image"


def test_saliency_decodes_like_the_pipeline_and_reports_each_bad_image(images, capsys):
    order = ["png16.png", "fifo.png", "png8.png", "alpha.png", "bomb.png", "flat.png"]
    order += ["exif.jpg", "text.png", "good.jpg"]
    before = folder_digest(images)
    paths = [str(images / n) for n in order]
    status = _finishes(lambda: main(["saliency", "--model", "baseline", "--json", *paths]))
    captured = capsys.readouterr()
    assert status == 1  # non-zero at the end, after every image was tried
    lines = captured.out.splitlines()
    results = {os.path.basename(r["image"]): r for r in map(json.loads, lines)}
    assert set(results) == set(order)  # the good ones after a bad one were still scored
    for name, reason in BAD.items():
        assert results[name]["error"] == reason
        assert f"{name}: {reason}: " in captured.err  # one clear line per bad image
    assert captured.err.count("\n") == len(BAD) and "Traceback" not in captured.err

    def scored(name):
        return {k: v for k, v in results[name].items() if k != "image"}

    assert scored("png16.png") == scored("png8.png")  # not an all-white image
    assert scored("alpha.png") == scored("flat.png")  # alpha flattened as the pipeline does
    assert (results["exif.jpg"]["width"], results["exif.jpg"]["height"]) == (20, 40)  # upright
    assert folder_digest(images) == before


def test_readers_never_block_on_fifos_or_devices(images, face_set, tmp_path, capsys):
    with pytest.raises(ImageError) as info:
        _finishes(lambda: load_image(str(images / "fifo.png")))
    assert info.value.reason == "image_not_a_file"
    with pytest.raises(ImageError) as info:
        _finishes(lambda: load_image("/dev/zero"))  # would never end
    assert info.value.reason == "image_not_a_file"
    manifest = tmp_path / "manifest.csv"
    os.mkfifo(manifest)
    before = folder_digest(tmp_path)
    argv = ["manifest", "check", str(manifest), "--attributes", "tone"]
    assert _finishes(lambda: main(argv)) == 2
    assert "is not a regular file (a FIFO)" in capsys.readouterr().err
    config = tmp_path / "c.toml"
    config.write_text(f'name = "fifo"\n[manifest]\npath = "{manifest}"\n')
    out = tmp_path / "out"
    assert _finishes(lambda: main(["run", str(config), "--out", str(out)])) == 2
    assert "is not a regular file (a FIFO)" in capsys.readouterr().err
    config.unlink()
    assert folder_digest(tmp_path) == before and not out.exists()


def test_only_the_one_decoder_opens_image_files():
    """``Image.open`` on user files lives in transforms/images.py; model/resize.py opens only
    bytes that decoder accepted (JPEG DCT path) and the gallery only its own overlay PNG."""
    allowed = {"images.py", "resize.py", "gallery.py"}
    openers = set()
    for path in package_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "Image.open":
                openers.add(path.name)
    assert openers <= allowed and "images.py" in openers
