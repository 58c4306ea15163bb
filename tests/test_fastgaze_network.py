"""The TensorFlow port against the spec's reference figures, a NumPy oracle, its converted form,
batching, and the CFD-3k geometry."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from cropaudit.model.base import stride_grid
from cropaudit.model.fastgaze.handler import MEANS, FastGazeHandler
from cropaudit.model.fastgaze.vxm import read_model
from cropaudit.model.resize import PreprocessOptions, fit_size
from cropaudit.transforms.candidate_crops import candidate_crops, default_ratios, is_symmetric
from tests.conftest import shared_file
from tests.test_fastgaze_vxm import _i32, _tensor, build


@pytest.fixture(scope="module")
def handler():
    return FastGazeHandler(str(shared_file("data/fastgaze/fastgaze.vxm")))


@pytest.fixture(scope="module")
def reference(handler):
    data = shared_file("data/images/obama_mcconnell.jpeg").read_bytes()
    hw, x = handler.preprocess_jpeg(data)
    scores = handler.load_model().predict(x[None])[0]
    return hw, x, scores


def test_reference_image(handler, reference):
    hw, x, scores = reference
    assert hw == (3000, 583)
    assert x.shape == (320, 62, 3)
    assert scores.shape == (20, 4)
    grid = handler.to_grid(scores, hw, x.shape[:2])
    np.testing.assert_array_equal(grid.xs, [75, 225, 375, 525])
    np.testing.assert_array_equal(grid.ys, 75 + 150 * np.arange(20))
    sx, sy, top = grid.salient_point()
    assert (sx, sy) == (375, 525)
    assert abs(top - 6.08) < 0.05
    assert scores[:10].max() > scores[10:].max()
    assert abs(scores[10:].max() - 5.957) < 0.05
    assert (scores[8:13] < 0).all()  # the white gap
    crops = candidate_crops(grid, 583, 3000)
    boxes = [(c.x, c.y, c.w, c.h) for c in crops.crops]
    assert boxes == [
        (0, 362, 583, 326),
        (0, 234, 583, 583),
        (0, 193, 583, 665),
        (0, 0, 583, 1166),
        (0, 0, 583, 3000),
    ]
    assert [c.aspect_ratio for c in crops.crops] == list(default_ratios(583, 3000))
    assert len(crops.points) == 80


def test_cfd_salient_points_lie_on_the_grid():
    from cropaudit.transforms.crop import crop_box

    table = shared_file("data/reference/df_cfd_3k.csv")
    w, h = fit_size(583, 3000)
    assert (w, h) == (62, 320)
    grid = stride_grid(np.zeros((20, 4), np.float32), (3000, 583), (h, w), stride=16)
    on_grid = {(int(x), int(y)) for x in grid.xs for y in grid.ys}
    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3000
    for row in rows:
        sx, sy = int(row["sal_x_twitter"]), int(row["sal_y_twitter"])
        assert (sx, sy) in on_grid
        box = crop_box(sx, sy, 583, 3000, 0.56)
        expected = tuple(
            int(row[f"{k}_twitter"])
            for k in ("top_left_x", "top_left_y", "crop_width", "crop_height")
        )
        assert (box.x, box.y, box.w, box.h) == expected


def _numpy_forward(model, x: np.ndarray) -> np.ndarray:
    """A direct NumPy reading of §2: the oracle for layout, padding, pooling and activations."""
    for layer in model.layers:
        if layer.type == 2:
            h, w, c = x.shape
            pad = np.full((h + h % 2, w + w % 2, c), -np.inf, np.float32)
            pad[:h, :w] = x
            x = pad.reshape(pad.shape[0] // 2, 2, pad.shape[1] // 2, 2, c).max(axis=(1, 3))
        elif layer.type == 0:
            k = layer.weight.shape[2]
            p = k // 2
            xp = np.pad(x, ((p, p), (p, p), (0, 0)))
            out = np.zeros((*x.shape[:2], layer.weight.shape[0]), np.float64)
            for i in range(k):
                for j in range(k):
                    patch = xp[i : i + x.shape[0], j : j + x.shape[1]]
                    out += patch @ layer.weight[:, :, i, j].T
            out += layer.bias
            x = np.where(out < 0, (layer.alpha if layer.leaky else 0.0) * out, out)
            x = x.astype(np.float32)
    return x[..., 0]


def test_network_matches_numpy_oracle():
    rng = np.random.default_rng(3)
    entries = {
        "layerCount": _i32(4),
        "modelType": _i32(2),
        "0Type": _i32(0),
        "0Act": _i32(1),
        **_tensor("0w", rng.normal(size=(4, 3, 3, 3))),
        **_tensor("0b", rng.normal(size=4)),
        "1Type": _i32(2),
        "1Pool": _i32(2),
        "2Type": _i32(0),
        "2Act": _i32(4),
        **_tensor("2w", rng.normal(size=(1, 4, 3, 3))),
        **_tensor("2b", np.array([-0.3])),
        **_tensor("2alpha", np.array([0.2])),
        "3Type": _i32(3),
        "3KernelSize": _i32(19),
        "3Std": _i32(3),
    }
    from cropaudit.model.fastgaze.network import FastGazeNet

    model = read_model(build(entries))
    x = rng.normal(size=(2, 7, 5, 3)).astype(np.float32)
    got = FastGazeNet(model)(x).numpy()
    assert got.shape == (2, 4, 3)
    for i in range(2):
        np.testing.assert_allclose(got[i], _numpy_forward(model, x[i]), rtol=1e-5, atol=1e-5)


def test_batch_matches_single(handler, reference):
    _, x, scores = reference
    rng = np.random.default_rng(5)
    batch = np.stack([x, x[:, ::-1], x + rng.normal(0, 10, x.shape).astype(np.float32), x])
    model = handler.load_model()
    batched = model.predict(batch)
    np.testing.assert_allclose(batched[0], scores, atol=1e-5)
    for i in range(len(batch)):
        np.testing.assert_allclose(batched[i], model.predict(batch[i : i + 1])[0], atol=1e-5)


def test_fixed_batch_scores_do_not_depend_on_batch_mates(handler, reference):
    """The pipeline scores every composite in a batch of exactly batch_size rows; with oneDNN on
    (cropaudit's default) a row's scores are then bit-identical whatever shares its batch, so
    runners that cut bundles differently write identical tables."""
    _, x, _ = reference
    rng = np.random.default_rng(11)
    others = rng.normal(0, 60, (20, *x.shape)).astype(np.float32)
    model = handler.load_model()
    alone = model.predict_fixed(x[None], 8)[0]
    crowded = model.predict_fixed(np.concatenate([others[:5], x[None], others[5:]]), 8)[5]
    shuffled = model.predict_fixed(np.concatenate([others[:2], x[None], others[9:12]]), 8)[2]
    assert np.array_equal(alone, crowded) and np.array_equal(alone, shuffled)
    many = model.predict_fixed(others, 8)  # 8 + 8 + 4 rows (and 4 of padding)
    assert many.shape == (20, *alone.shape)
    for i in (0, 7, 8, 15, 16, 19):
        assert np.array_equal(many[i], model.predict_fixed(others[i : i + 1], 8)[0])


def test_importing_cropaudit_turns_tensorflow_onednn_on_and_provenance_tells():
    def run(first: str) -> list[str]:
        code = (
            f"import {first}\n"
            "import cropaudit, tensorflow\n"
            "from tensorflow.python.util import _pywrap_util_port as port\n"
            "from cropaudit.provenance import versions\n"
            "print(port.IsMklEnabled(), versions().rsplit(';', 1)[-1])"
        )
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        return [*out.stdout.split(), "warned" if "imported before cropaudit" in out.stderr else ""]

    assert run("cropaudit") == ["True", "tf_onednn=on", ""]
    # A notebook that imported TensorFlow first: TF's own default (off on this AVX2 CPU), a
    # warning, and provenance that says what actually ran.
    state, provenance, warned = run("tensorflow")
    assert warned == "warned"
    assert provenance == ("tf_onednn=on" if state == "True" else "tf_onednn=off")


def test_converted_model_matches_vxm(handler, reference, tmp_path):
    from cropaudit.cli import main

    _, x, scores = reference
    out = tmp_path / "fastgaze_sm"
    assert main(["model", "convert", handler.path, str(out)]) == 0
    converted = FastGazeHandler(str(out))
    assert converted.converted
    assert converted.content_hash == handler.content_hash
    same = {k: v for k, v in converted.describe().items() if k != "model_source"}
    assert same == {k: v for k, v in handler.describe().items() if k != "model_source"}
    assert converted.describe()["model_source"] == str(out)
    loaded = converted.load_model()
    np.testing.assert_allclose(loaded.predict(x[None])[0], scores, atol=1e-5)
    batch = np.stack([x, x - 7.0])
    np.testing.assert_allclose(
        loaded.predict(batch), handler.load_model().predict(batch), atol=1e-5
    )


def test_handler_contract(handler):
    assert handler.name == "fastgaze"
    assert handler.content_hash.startswith("b76cefc2") and handler.content_hash.endswith("bdf7")
    assert handler.preprocessing == PreprocessOptions().describe()
    clone = pickle.loads(pickle.dumps(handler))
    assert clone.path == handler.path and clone._model is None
    image = np.full((40, 30, 3), 200, np.uint8)
    x = handler.preprocess(image)
    assert x.dtype == np.float32
    assert x.shape == (320, 240, 3)
    np.testing.assert_allclose(x[0, 0], 200 - MEANS, atol=1e-4)


def test_symmetry_check():
    rng = np.random.default_rng(0)
    half = rng.integers(0, 255, (50, 20, 3), dtype=np.uint8)
    assert is_symmetric(np.concatenate([half, half[:, ::-1]], axis=1))
    ramp = np.tile(np.linspace(0, 255, 40, dtype=np.uint8)[None, :, None], (50, 1, 3))
    assert not is_symmetric(ramp)


def test_saliency_command_json(capsys, handler):
    from cropaudit.cli import main

    image = shared_file("data/images/obama_mcconnell.jpeg")
    assert main(["saliency", str(image), "--model", f"fastgaze:{handler.path}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["salient_point"]["x"] == 375 and out["salient_point"]["y"] == 525
    assert out["crops"][0] == {"aspect_ratio": 0.56, "x": 0, "y": 362, "w": 583, "h": 326}
    assert len(out["points"]) == 80
    assert out["model_hash"] == handler.content_hash
