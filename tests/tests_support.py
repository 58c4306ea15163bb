"""Real photos for cropper and face-detector tests: the shared two-face image and the face
photos scikit-image ships inside its wheel (no download)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from conftest import shared_file
from PIL import Image

OBAMA_MCCONNELL = "data/images/obama_mcconnell.jpeg"


@cache
def obama_mcconnell() -> np.ndarray:
    return np.asarray(Image.open(shared_file(OBAMA_MCCONNELL)).convert("RGB"))


@cache
def real_faces() -> dict[str, np.ndarray]:
    """RGB face photos bundled with scikit-image: ``astronaut`` (Eileen Collins, 512x512)."""
    from skimage import data

    return {"astronaut": np.asarray(data.astronaut(), np.uint8)}


@cache
def lfw_faces() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's LFW subset: 100 face crops and 100 non-face patches, 25x25 grey."""
    from skimage import data

    subset = np.asarray(data.lfw_subset())
    return subset[:100], subset[100:]


def astronaut_saliency_json(capsys, folder, model: str) -> dict:
    """``cropaudit saliency ASTRONAUT.png --model MODEL --json`` (the 512x512 photo), parsed."""
    import json

    from cropaudit.cli import main

    path = Path(folder) / "astronaut.png"
    Image.fromarray(real_faces()["astronaut"]).save(path)
    assert main(["saliency", str(path), "--model", model, "--json"]) == 0
    return json.loads(capsys.readouterr().out)
