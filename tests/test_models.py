"""Model handlers behind the one interface: baseline, any Keras/SavedModel by path."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cropaudit.errors import UserError
from cropaudit.model.base import stride_grid
from cropaudit.model.registry import load_handler
from cropaudit.model.resize import PreprocessOptions


def test_stride_grid_matches_the_fastgaze_reference_geometry():
    grid = stride_grid(np.zeros((20, 4), np.float32), (3000, 583), (320, 62), 16)
    assert grid.xs.astype(int).tolist() == [75, 225, 375, 525]
    assert grid.ys.astype(int).tolist() == [75 + 150 * r for r in range(20)]


def test_baseline_prefers_a_face_like_blob_to_a_flat_area():
    handler = load_handler("baseline")
    handler = pickle.loads(pickle.dumps(handler))  # handlers travel to workers
    image = np.full((640, 320, 3), 255, np.uint8)
    yy, xx = np.mgrid[:640, :320]
    image[(yy - 480) ** 2 + (xx - 160) ** 2 < 40**2] = (30, 30, 30)
    x = handler.preprocess(image)
    assert x.shape == (320, 160, 3) and x.dtype == np.float32
    scores = handler.load_model().predict(np.stack([x, x]))
    assert scores.shape == (2, 20, 10)
    grid = handler.to_grid(scores[0], image.shape[:2], x.shape[:2])
    sx, sy, _ = grid.salient_point()
    assert abs(sx - 160) < 50 and abs(sy - 480) < 60
    assert handler.describe()["model_hash"] == load_handler("baseline").content_hash


def _tiny_model():
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(4, padding="same")(x)
    outputs = keras.layers.Conv2D(1, 1)(x)
    return keras.Model(inputs, outputs)


def test_keras_file_and_savedmodel_load_by_path_and_agree(tmp_path):
    import tensorflow as tf

    model = _tiny_model()
    keras_path = tmp_path / "tiny.keras"
    model.save(keras_path)
    saved = tmp_path / "tiny_savedmodel"
    model.export(saved)  # a SavedModel directory with a serving signature
    batch = np.random.default_rng(0).uniform(0, 255, (2, 64, 48, 3)).astype(np.float32)
    expected = model(batch).numpy()[..., 0]
    for spec in (f"keras:{keras_path}", str(keras_path), f"keras:{saved}"):
        handler = load_handler(spec, PreprocessOptions(box=64))
        out = handler.load_model().predict(batch)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        grid = handler.to_grid(out[0], (640, 480), (64, 48))
        assert grid.scores.shape == (16, 12)
        assert grid.xs[0] == pytest.approx(2 * 10.0)  # stride 4, half-stride 2, k = 10
        assert len(handler.content_hash) == 64
    assert tf.__version__


def test_unknown_or_missing_models_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_handler(f"keras:{tmp_path / 'missing.keras'}")
    with pytest.raises(UserError, match="needs a path"):
        load_handler("keras:")
