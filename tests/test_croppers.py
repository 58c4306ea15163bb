"""Third-party croppers (smartcrop, OpenCV saliency) on real images, the box-cropper interface,
and a run that compares croppers on the same composites."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests_support import astronaut_saliency_json, obama_mcconnell, real_faces

from cropaudit.cli import main
from cropaudit.errors import UserError
from cropaudit.model.base import SaliencyGrid
from cropaudit.model.cropper import BoxCropper, require
from cropaudit.model.registry import load_handler
from cropaudit.schemas.records import Box, Cropping
from cropaudit.transforms.crop import crop_box, grid_cropping, score_cropping, simulate_crop

RATIOS = (0.56, 1.0, 1.14, 2.0)


def _ratio_ok(box: Box, ar: float, width: int, height: int) -> bool:
    """The box has aspect ratio ``ar`` (to a pixel of rounding) or fills the limiting side."""
    return abs(box.h - ar * box.w) <= max(2.0, 0.02 * box.h)


@pytest.mark.parametrize("name", ["obama", "astronaut"])
def test_smartcrop_gives_one_box_per_ratio_inside_real_images(name):
    image = obama_mcconnell() if name == "obama" else real_faces()["astronaut"]
    cropper = load_handler("smartcrop")
    assert isinstance(cropper, BoxCropper)
    cropping = cropper.load_model().crop(cropper.preprocess(image), RATIOS)
    h, w = image.shape[:2]
    cropping.check(w, h)
    assert cropping.point is None and cropping.grid is None
    for ar, box in zip(cropping.ratios, cropping.boxes):
        assert _ratio_ok(box, ar, w, h), (ar, box)
        # smartcrop's default scales: each side is 90-100% of the largest box of that ratio
        largest = crop_box(0, 0, w, h, ar)
        assert 0.89 * largest.w <= box.w <= largest.w and 0.89 * largest.h <= box.h <= largest.h
    # deterministic, and not simply centred on a wide image: it chose where to cut
    again = cropper.load_model().crop(image, RATIOS)
    assert again == cropping


def test_smartcrop_records_version_and_default_settings():
    import smartcrop

    d = load_handler("smartcrop").describe()
    assert d["model_name"] == "smartcrop"
    assert d["model_source"].startswith("pypi:smartcrop==")
    settings = json.loads(d["preprocessing"].split("settings ", 1)[1])
    assert settings["SmartCrop"]["skin_color"] == list(smartcrop.library.DEFAULT_SKIN_COLOR)
    assert settings["crop"]["min_scale"] == 0.9
    assert len(d["model_hash"]) == 64


@pytest.mark.parametrize("name", ["opencv-spectral-residual", "opencv-fine-grained"])
def test_opencv_croppers_crop_around_their_saliency_maximum(name):
    image = real_faces()["astronaut"]
    handler = load_handler(name)
    x = handler.preprocess(image)
    scores = handler.load_model().predict_fixed(x[None], 16)[0]
    assert np.isfinite(scores).all() and scores.max() > scores.min()
    grid = handler.to_grid(scores, image.shape[:2], x.shape[:2])
    h, w = image.shape[:2]
    assert grid.xs.max() < w and grid.ys.max() < h
    cropping = grid_cropping(grid, w, h, RATIOS)
    sx, sy, _ = grid.salient_point()
    assert cropping.point[:2] == (sx, sy)
    assert cropping.boxes == tuple(crop_box(sx, sy, w, h, ar) for ar in RATIOS)
    assert handler.describe()["model_source"].startswith("pypi:opencv-contrib-python-headless==")


def test_opencv_maps_differ_between_the_two_algorithms():
    image = obama_mcconnell()
    maps = []
    for name in ("opencv-spectral-residual", "opencv-fine-grained"):
        handler = load_handler(name)
        maps.append(handler.load_model().predict(handler.preprocess(image)[None])[0])
    assert maps[0].shape == maps[1].shape
    assert not np.allclose(maps[0] / maps[0].max(), maps[1] / maps[1].max())


def test_box_only_cropping_is_scored_from_its_boxes():
    a, b = Box(0, 0, 100, 100), Box(0, 200, 100, 100)
    keeps_b = Cropping((1.0, 2.0), (Box(0, 180, 100, 100), Box(0, 0, 100, 300)))
    outcome = score_cropping(keeps_b, a, b)
    assert outcome.point_winner is None and outcome.salient_x is None
    assert outcome.grid_rows is None and np.isnan(outcome.a_max)
    assert [c.winner for c in outcome.crops] == ["b", "tie"]
    assert [c.b_area for c in outcome.crops] == [8000, 10000]


def test_grid_cropping_then_scoring_is_the_saliency_rule():
    scores = np.zeros((4, 2), np.float32)
    scores[3, 1] = 1.0
    grid = SaliencyGrid(
        scores, np.array([10, 60], np.float32), np.array([10, 60, 110, 160], np.float32)
    )
    a, b = Box(0, 0, 80, 80), Box(0, 100, 80, 80)
    direct = score_cropping(grid_cropping(grid, 80, 180, RATIOS), a, b)
    assert direct == simulate_crop(grid, 80, 180, a, b, RATIOS)
    assert direct.point_winner == "b" and direct.grid_rows == 4


def test_missing_extra_gives_one_line_naming_it():
    with pytest.raises(UserError, match=r"pip install 'cropaudit\[croppers\]'") as err:
        require("cropaudit_no_such_module", "example")
    assert "\n" not in str(err.value)


def test_model_list_shows_the_croppers(capsys):
    assert main(["model", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("smartcrop", "opencv-spectral-residual", "opencv-fine-grained", "fastgaze"):
        assert name in out
    assert "cropper" in out


def test_saliency_command_prints_smartcrop_crops_per_ratio(capsys, tmp_path):
    out = astronaut_saliency_json(capsys, tmp_path, "smartcrop")
    assert out["model_name"] == "smartcrop" and out["salient_point"] is None
    ratios = [c["aspect_ratio"] for c in out["crops"]]
    assert ratios == [0.56, 1.0, 1.14, 2.0, 1.0]  # Twitter's ratios and the image's own
    for c in out["crops"]:
        assert c["x"] >= 0 and c["x"] + c["w"] <= 512 and c["y"] >= 0 and c["y"] + c["h"] <= 512


def test_compare_refuses_duplicates_and_sweeps():
    from cropaudit.errors import ConfigError
    from cropaudit.pipelines.demo_pipeline import embedded_config

    cfg = embedded_config()
    with pytest.raises(ConfigError, match="repeats a model"):
        cfg.replace(model={"compare": ["baseline"]})
    with pytest.raises(ConfigError, match="model.compare"):
        cfg.replace(model={"compare": ["smartcrop"]}, sweep={"pad": [16]})
    # one-model configs keep the hash they had before model.compare existed
    assert "compare" not in cfg.to_dict()["model"]


def test_croppers_experiment_lists_every_cropper():
    from cropaudit import config as config_mod

    cfg = config_mod.load(str(Path(__file__).parents[1] / "experiments" / "croppers.toml"))
    assert cfg.model.specs == (
        "fastgaze", "smartcrop", "opencv-spectral-residual", "opencv-fine-grained", "baseline",
    )  # fmt: skip


def test_web_croppers_experiment_lists_every_web_cropper():
    from cropaudit import config as config_mod

    path = Path(__file__).parents[1] / "experiments" / "web_croppers.toml"
    assert config_mod.load(str(path)).model.specs == (
        "fastgaze", "vips-attention", "vips-entropy", "vips-centre", "thumbor", "smartcrop",
    )  # fmt: skip


# -- one run, several croppers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compared(tmp_path_factory, fastgaze_cache):
    """experiments/croppers.toml on the demo faces: rows, stats and report."""
    from cropaudit import config as config_mod
    from cropaudit.pipelines.audit_pipeline import run_audit
    from cropaudit.synthetic import write_face_set

    tmp = tmp_path_factory.mktemp("croppers")
    manifest = write_face_set(tmp / "faces", seed=3, subjects_per_group=3)
    cfg = config_mod.load(str(Path(__file__).parents[1] / "experiments" / "croppers.toml"))
    cfg = cfg.replace(manifest={"path": str(manifest)}, design={"composites_per_pair": 2})
    summary = run_audit(cfg, str(tmp / "run"), quiet=True, overwrite=True)
    return tmp, cfg, summary


@pytest.mark.slow
def test_one_run_scores_every_composite_with_every_cropper(compared):
    from cropaudit.rundir import read_table

    tmp, cfg, summary = compared
    df = read_table(str(tmp / "run" / "survival")).to_pandas()
    names = {"fastgaze", "smartcrop", "opencv-spectral-residual", "opencv-fine-grained",
             "baseline-centre-surround"}  # fmt: skip
    assert set(df.model_name) == names
    # 6 group pairs x 2 samples x 2 orders, each scored by all five croppers
    assert summary["composites_expected"] == 24 * 5 == len(df)
    assert summary["all_composites_accounted"] and df.composite_id.is_unique
    per_sample = df.groupby("sample_id").model_name.nunique()
    assert (per_sample == 5).all() and len(per_sample) == 24
    # rendered once: every cropper saw the same faces at the same place
    assert (df.assign(box=df.a_box.map(str)).groupby("sample_id").box.nunique() == 1).all()
    smart = df[df.model_name == "smartcrop"]
    assert smart.point_winner.isna().all() and smart.salient_x.isna().all()
    others = df[df.model_name != "smartcrop"]
    assert others.point_winner.notna().all()
    assert all(
        json.loads(p)["SmartCrop"] for p in smart.preprocessing.str.split("settings ").str[1]
    )
    assert all(c == f"{s}#{m}" for c, s, m in zip(df.composite_id, df.sample_id, df.model_name))


@pytest.mark.slow
def test_stats_and_report_show_croppers_side_by_side(compared):
    import pandas as pd

    from cropaudit.pipelines.stats_pipeline import run_stats
    from cropaudit.report import build_report

    tmp, _, _ = compared
    run_stats([str(tmp / "run")], str(tmp / "stats"), replicates=200, render=False)
    agree = pd.read_parquet(tmp / "stats" / "agreement.parquet")
    pairs = set(zip(agree.model_1, agree.model_2))
    assert ("fastgaze", "smartcrop") in pairs and len(pairs) == 10
    assert set(agree.criterion) >= {"point", "crop_0.56"}
    assert not (agree.criterion == "point").any() or "smartcrop" not in set(
        agree[agree.criterion == "point"].model_1
    ) | set(agree[agree.criterion == "point"].model_2)
    inside = (agree.agreement_boot_low <= agree.agreement) & (
        agree.agreement <= agree.agreement_boot_high
    )
    assert inside.all()
    assert (agree.agree <= agree.n).all() and (agree.n > 0).all()
    out = build_report(str(tmp / "run"), str(tmp / "report.html"), stats_dir=str(tmp / "stats"),
                       gallery=2, quiet=True)  # fmt: skip
    html = Path(out).read_text()
    section = html.split("id='croppers'", 1)[1].split("</section>", 1)[0]
    for name in ("smartcrop", "opencv-fine-grained", "fastgaze", "baseline-centre-surround"):
        assert name in section
    assert "agreement" in section and "crop_1.00" in section


@pytest.fixture(scope="module")
def fastgaze_cache(tmp_path_factory):
    """The catalogue's fastgaze file placed in a fresh model cache (no network in tests)."""
    from conftest import shared_file

    from cropaudit.model.catalogue import BUILTIN
    from cropaudit.model.download import CACHE_ENV, OFFLINE_ENV, cache_path

    source = shared_file("data/fastgaze/fastgaze.vxm")
    cache = tmp_path_factory.mktemp("model-cache")
    target = Path(cache_path(BUILTIN["fastgaze"], str(cache)))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    mp = pytest.MonkeyPatch()
    mp.setenv(CACHE_ENV, str(cache))
    mp.setenv(OFFLINE_ENV, "1")
    yield cache
    mp.undo()


@pytest.mark.slow
def test_demo_compares_the_models_it_is_given(tmp_path):
    from cropaudit.rundir import read_table

    args = ["demo", "--out", str(tmp_path), "--no-stats", "--no-progress"]
    assert main([*args, "--models", "baseline", "opencv-spectral-residual"]) == 0
    df = read_table(str(tmp_path / "run" / "survival")).to_pandas()
    assert set(df.model_name) == {"baseline-centre-surround", "opencv-spectral-residual"}
    counts = df.groupby("model_name").size()
    assert counts.iloc[0] == counts.iloc[1] == df.sample_id.nunique()
