"""Model files are checked: non-finite weights refused at load, conversions only into an empty or
cropaudit-owned folder, every model error one line (issue 13, item 6)."""

from __future__ import annotations

import numpy as np
import pytest

from cropaudit.cli import main
from cropaudit.model.fastgaze.vxm import VxmError, read_model
from tests.reliability.conftest import jpeg_bytes
from tests.reliability.snapshot import folder_digest
from tests.test_fastgaze_vxm import _tensor, build, tiny_entries
from tests.test_models import _tiny_model


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "face.jpg"
    rng = np.random.default_rng(1)
    path.write_bytes(jpeg_bytes(Image.fromarray(rng.integers(0, 255, (64, 48, 3), np.uint8))))
    return path


def _one_line_error(capsys, *words: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cropaudit: error: "), err
    assert "Traceback" not in err and all(w in err for w in words), err


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_vxm_with_non_finite_weights_is_refused_at_load(bad, image, face_set, tmp_path, capsys):
    weights = np.random.default_rng(0).normal(size=(1, 3, 1, 1))
    weights[0, 1, 0, 0] = bad
    vxm = tmp_path / "bad.vxm"
    vxm.write_bytes(build({**tiny_entries(), **_tensor("0w", weights)}))
    with pytest.raises(VxmError, match="'0w' holds 1 non-finite value"):
        read_model(vxm.read_bytes())
    before = folder_digest(tmp_path)
    assert main(["saliency", "--model", f"fastgaze:{vxm}", str(image)]) == 2
    _one_line_error(capsys, "non-finite")
    config = tmp_path / "c.toml"
    config.write_text(
        f'name = "nan"\n[manifest]\npath = "{face_set}"\n[groups]\n'
        f'attributes = ["tone"]\n[model]\nspec = "fastgaze:{vxm}"\n'
    )
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 2  # before anything is written
    _one_line_error(capsys, "non-finite")
    config.unlink()
    assert folder_digest(tmp_path) == before and not out.exists()


def test_keras_models_with_non_finite_weights_or_bogus_files_are_one_line_errors(
    image, tmp_path, capsys
):
    model = _tiny_model()
    weights = model.get_weights()
    weights[0][0, 0, 0, 0] = np.nan
    model.set_weights(weights)
    nan_keras = tmp_path / "nan.keras"
    model.save(nan_keras)
    nan_saved = tmp_path / "nan_saved"
    model.export(nan_saved)
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"PK\x03\x04 not really a zip archive")
    empty = tmp_path / "empty"
    empty.mkdir()
    before = folder_digest(tmp_path)
    for spec, words in (
        (f"keras:{nan_keras}", ("nan.keras", "1 non-finite value")),
        (f"keras:{nan_saved}", ("nan_saved", "1 non-finite value")),
        (f"keras:{bogus}", ("cannot load Keras model",)),
        (f"keras:{empty}", ("no model files found",)),
    ):
        assert main(["saliency", "--model", spec, str(image)]) == 2, spec
        _one_line_error(capsys, *words)
    assert main(["model", "info", str(empty)]) == 2
    _one_line_error(capsys, "is an empty folder, not a model")
    assert folder_digest(tmp_path) == before


def test_model_convert_writes_only_into_an_empty_or_owned_folder(tmp_path, capsys):
    vxm = tmp_path / "tiny.vxm"
    vxm.write_bytes(build(tiny_entries()))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    afile = tmp_path / "afile"
    afile.write_text("keep me too")
    before = folder_digest(tmp_path)
    for target in (foreign, afile):
        assert main(["model", "convert", str(vxm), str(target)]) == 2
        _one_line_error(capsys, str(target))
    assert folder_digest(tmp_path) == before
    out = tmp_path / "converted"
    assert main(["model", "convert", str(vxm), str(out)]) == 0  # a new folder
    assert main(["model", "convert", str(vxm), str(out)]) == 0  # its own folder again
    capsys.readouterr()
    assert folder_digest(tmp_path, skip=(out,)) == before
    assert main(["model", "info", str(out)]) == 0
