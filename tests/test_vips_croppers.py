"""libvips' smartcrop croppers (vips-attention, vips-entropy, vips-centre) on real pixels."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from tests_support import astronaut_saliency_json, real_faces

from cropaudit.cli import main
from cropaudit.model.cropper import BoxCropper
from cropaudit.model.registry import load_handler
from cropaudit.transforms.crop import crop_box

RATIOS = (0.56, 1.0, 1.14, 2.0)
NAMES = ("vips-attention", "vips-entropy", "vips-centre")


def _face_over_flat() -> np.ndarray:
    """A tall picture: the astronaut photo above a flat grey area of the same size."""
    face = real_faces()["astronaut"]
    return np.concatenate([face, np.full_like(face, 128)], axis=0)


@pytest.mark.parametrize("name", NAMES)
def test_each_box_is_the_largest_of_its_ratio_inside_the_image(name):
    cropper = load_handler(name)
    assert isinstance(cropper, BoxCropper)
    image = _face_over_flat()
    h, w = image.shape[:2]
    cropping = cropper.load_model().crop(image, RATIOS)
    cropping.check(w, h)
    for ar, box in zip(cropping.ratios, cropping.boxes):
        largest = crop_box(0, 0, w, h, ar)
        assert (box.w, box.h) == (largest.w, largest.h)
    assert cropper.load_model().crop(image, RATIOS) == cropping  # deterministic


def test_centre_is_centred_and_the_smart_strategies_keep_the_photo_not_the_flat_half():
    image = _face_over_flat()  # 512 wide, 1024 tall: ratio 1 boxes are 512x512
    boxes = {n: load_handler(n).load_model().crop(image, (1.0,)).boxes[0] for n in NAMES}
    assert boxes["vips-centre"].y == 256
    # the photo is the top half: attention (skin, saturation, edges) and entropy move up to it
    assert boxes["vips-attention"].y < 128
    assert boxes["vips-entropy"].y < 128


def test_attention_reports_its_centre_per_ratio_and_the_others_none():
    image = _face_over_flat().transpose(1, 0, 2)  # wide: libvips 8.18 searches both axes
    cropping = load_handler("vips-attention").load_model().crop(image, RATIOS)
    assert cropping.point is None  # audited by its crops (see model.croppers.vips)
    assert len(cropping.focus) == len(RATIOS)
    for (x, _y), box in zip(cropping.focus, cropping.boxes):
        # the transposed photo fills the left half; its face is there, and so is the crop
        assert x < 512 and box.x < 256
    for name in ("vips-entropy", "vips-centre"):
        focus = load_handler(name).load_model().crop(image, RATIOS).focus
        assert focus == (None,) * len(RATIOS)


def test_libvips_version_and_settings_are_recorded_and_identify_the_strategy():
    import pyvips

    described = {n: load_handler(n).describe() for n in NAMES}
    version = ".".join(str(pyvips.version(i)) for i in range(3))
    for name, d in described.items():
        assert d["model_name"] == name
        assert f"libvips {version}" in d["model_source"]
        assert "pypi:pyvips-binary==" in d["model_source"]
        settings = json.loads(d["preprocessing"].split("settings ", 1)[1])
        assert settings["interesting"] == name.removeprefix("vips-")
    assert len({d["model_hash"] for d in described.values()}) == 3


def test_a_pickled_cropper_crops_alike():
    cropper = load_handler("vips-attention").configure(batch_size=3)
    copy = pickle.loads(pickle.dumps(cropper))
    image = _face_over_flat()
    assert copy.batch_size == 3 and copy.content_hash == cropper.content_hash
    assert copy.load_model().crop(image, RATIOS) == cropper.load_model().crop(image, RATIOS)


def test_model_list_and_saliency_json_give_each_ones_crops(capsys, tmp_path):
    assert main(["model", "list"]) == 0
    listed = capsys.readouterr().out
    for name in NAMES:
        assert name in listed
        out = astronaut_saliency_json(capsys, tmp_path, name)
        assert out["model_name"] == name
        assert [c["aspect_ratio"] for c in out["crops"]] == [0.56, 1.0, 1.14, 2.0, 1.0]
        assert out["salient_point"] is None
        for crop in out["crops"]:
            focus = crop["focus"]
            if name == "vips-attention":
                assert 0 <= focus["x"] < 512 and 0 <= focus["y"] < 512
            else:
                assert focus is None
