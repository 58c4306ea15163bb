"""A cropaudit model in a user's own Beam pipeline: ``RunInference(model_handler(spec))`` finds
the salient points that ``cropaudit saliency`` prints for the same images."""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from cropaudit.cli import main
from cropaudit.model import model_handler
from cropaudit.model.base import SaliencyGrid
from cropaudit.pipelines.runners import make_runner

SIZES = ((180, 120), (96, 160), (720, 480))  # (height, width): one larger than the 320 box


def images(tmp_path, photo: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """PNG files (``saliency`` decodes them as Beam's user would: no JPEG shortcut) with one
    bright textured patch each, in a different place, on seeded noise; ``photo`` is added."""
    rng = np.random.default_rng(11)
    out = {}
    for i, (h, w) in enumerate(SIZES):
        image = rng.integers(90, 110, (h, w, 3), dtype=np.uint8)
        y, x, k = (h * (i + 1)) // 5, (w * (3 - i)) // 4, max(24, h // 10)
        patch = rng.integers(0, 256, (k, k // 2 * 2, 3), dtype=np.uint8)
        image[y : y + k, x - k // 2 : x + k // 2] = patch
        out[str(tmp_path / f"img{i}.png")] = image
    if photo is not None:
        out[str(tmp_path / "photo.png")] = photo
    for path, image in out.items():
        Image.fromarray(image).save(path)
    return out


def saliency_points(spec: str, paths: list[str], capsys) -> dict[str, tuple[int, int]]:
    """What ``cropaudit saliency --json`` prints for each image: the expectation."""
    capsys.readouterr()
    assert main(["saliency", *paths, "--model", spec, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {r["image"]: (r["salient_point"]["x"], r["salient_point"]["y"]) for r in rows}


def check(spec: str, named: dict[str, np.ndarray], capsys) -> None:
    """A user pipeline (keyed images through RunInference) finds the command's points, and every
    result names the model and its sha256."""
    expected = saliency_points(spec, list(named), capsys)
    assert sorted(expected) == sorted(named)
    handler = model_handler(spec)
    model_id = f"{handler.name}@sha256:{handler.content_hash}"

    def point(keyed: tuple[str, PredictionResult]):
        key, result = keyed
        assert isinstance(result.inference, SaliencyGrid) and result.model_id == model_id
        x, y, _ = result.inference.salient_point()
        return key, (x, y)

    with test_pipeline.TestPipeline(runner=make_runner("direct", PipelineOptions())) as p:
        points = (
            p
            | beam.Create(sorted(named.items()))
            | RunInference(KeyedModelHandler(handler))
            | beam.Map(point)
        )
        assert_that(points, equal_to(sorted(expected.items())))


def test_baseline_under_run_inference_matches_the_saliency_command(tmp_path, capsys):
    check("baseline", images(tmp_path), capsys)


def test_fastgaze_under_run_inference_matches_the_saliency_command(
    tmp_path, capsys, fastgaze_vxm, shared_photo
):
    check(f"fastgaze:{fastgaze_vxm}", images(tmp_path, shared_photo), capsys)


@pytest.fixture
def shared_photo() -> np.ndarray:
    """The shared reference photo, decoded (written out as PNG by :func:`images`)."""
    from tests.conftest import shared_file

    with Image.open(shared_file("data/images/obama_mcconnell.jpeg")) as im:
        return np.asarray(im.convert("RGB"))


def test_the_handler_refuses_what_is_not_an_rgb_image():
    handler = model_handler("baseline")
    model = handler.load_model()
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        handler.run_inference([np.zeros((8, 8, 3), np.float32)], model)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        handler.run_inference([np.zeros((8, 8, 4), np.uint8)], model)


def test_the_readme_example_runs_as_written(capsys):
    """The README's RunInference snippet, executed: three images, three salient points."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Use a cropaudit model in your own Beam pipeline", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    capsys.readouterr()
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(
        line.startswith("baseline-centre-surround@sha256:") for line in lines
    )


def test_a_box_cropper_under_run_inference_gives_the_commands_crops(tmp_path, capsys):
    """A box cropper's inference is its Cropping, for the ratios it was made with."""
    named = images(tmp_path)
    spec = "plugin:cropper_plugins:centred"
    capsys.readouterr()
    argv = ["saliency", *named, "--model", spec, "--aspect-ratios", "1", "2", "--json"]
    assert main([*argv, "--allow-plugins"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = {r["image"]: [(c["x"], c["y"], c["w"], c["h"]) for c in r["crops"]] for r in rows}
    handler = model_handler(spec, aspect_ratios=(1.0, 2.0))
    with test_pipeline.TestPipeline(runner=make_runner("direct", PipelineOptions())) as p:
        crops = (
            p
            | beam.Create(sorted(named.items()))
            | RunInference(KeyedModelHandler(handler))
            | beam.MapTuple(lambda key, r: (key, [(b.x, b.y, b.w, b.h) for b in r.inference.boxes]))
        )
        assert_that(crops, equal_to(sorted(expected.items())))
