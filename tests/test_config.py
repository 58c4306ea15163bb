"""Experiment configs: validation names the key; every shipped config validates."""

from __future__ import annotations

from importlib import resources

import pytest

from cropaudit import config as config_mod
from cropaudit.cli import main
from cropaudit.errors import ConfigError
from cropaudit.schemas.variants import parse_variant


def shipped_configs():
    return sorted(
        p for p in resources.files("cropaudit.experiments").iterdir() if p.name.endswith(".toml")
    )


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = config_mod.loads(path.read_text())
    assert cfg.name and len(cfg.config_hash) == 64


def test_round_trip_through_toml_keeps_the_hash():
    cfg = config_mod.ExperimentConfig().replace(
        name="x", design={"pairs": [["A", "B"]], "seed": 7}, layout={"kind": "horizontal"}
    )
    again = config_mod.loads(cfg.to_toml())
    assert again == cfg and again.config_hash == cfg.config_hash
    assert again.replace(design={"seed": 8}).config_hash != cfg.config_hash


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[design]\nseeed = 1", "design.seeed: unknown key"),
        ("colour = 1", "colour: unknown key"),
        ('[design]\nseed = "1"', "design.seed: must be an integer"),
        ("[design]\nseed = true", "design.seed: must be an integer"),
        ("[design]\nseed = -1", "design.seed"),
        ("[design]\ncomposites_per_pair = 0", "design.composites_per_pair"),
        ('[design]\norder = "sideways"', "design.order"),
        ('[design]\ncontrols = ["mirror"]', "design.controls"),
        ('[design]\npairs = [["A", "A"]]', "design.pairs"),
        ('[design]\npairs = [["A"]]', "design.pairs"),
        ("[layout]\nfill = [1, 2]", "layout.fill"),
        ("[layout]\nfill = [1, 2, 300]", "layout.fill"),
        ('[layout]\nkind = "diagonal"', "layout.kind"),
        ("[layout]\nwidth = 0", "layout.width"),
        ('[model]\nresize = "nearest"', "model.resize"),
        ("[model]\nbatch_size = 0", "model.batch_size"),
        ("[crop]\naspect_ratios = []", "crop.aspect_ratios"),
        ("[crop]\naspect_ratios = [-1.0]", "crop.aspect_ratios"),
        ('[crop]\naspect_ratios = ["wide"]', "crop.aspect_ratios[0]: must be a number"),
        ("version = 2", "version"),
        ("[groups]\nattributes = []", "groups.attributes"),
        ('[groups]\nlabels = {gender = ["F"]}', "groups.labels.gender"),
        ("manifest = 3", "manifest: must be a table"),
        ("[layout]\nface_scale = 0", "layout.face_scale"),
        ("[layout]\npad = -1", "layout.pad"),
        ("[sweep]\npadding = [1]", "sweep.padding: unknown key"),
        ('[sweep]\nmode = "random"', "sweep.mode"),
        ('[sweep]\nresize = ["nearest"]', "sweep.resize"),
        ("[sweep]\njpeg_quality = [101]", "sweep.jpeg_quality"),
        ("[sweep]\npad = [-2]", "sweep.pad"),
        ("[sweep]\ngap = [-2]", "sweep.gap"),
        ("[sweep]\nface_scale = [0.0]", "sweep.face_scale"),
        ("[sweep]\npad = [1, 1]", "sweep.pad: has duplicates"),
        ('[sweep]\npad = ["8"]', "sweep.pad[0]: must be an integer"),
        (
            '[sweep]\nmode = "grid"\npad = [1, 2, 3, 4, 5, 6, 7, 8]\ngap = ' + str(list(range(40))),
            "sweep: 369 variants",
        ),
        ("[design", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_key(text, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        config_mod.loads(text)


def test_validate_command_reports_each_file(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text('name = "good"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("[layout]\nfit = 'squash'\n")
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "ok" in out and "layout.fit" in out


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config_mod.load(str(tmp_path / "nope.toml"))


def test_sweep_one_at_a_time_varies_each_axis_alone_around_the_base():
    cfg = config_mod.ExperimentConfig().replace(
        layout={"pad": 0},
        model={"resize": "faithful"},
        sweep={
            "resize": ["faithful", "area"],
            "pad": [0, 8, 31],
            "gap": [100],
            "jpeg_quality": [0],
        },
    )
    variants = cfg.variants()
    assert [v.name for v in variants] == ["base", "resize=area", "gap=100", "pad=8", "pad=31"]
    assert cfg.sweep_size() == 5
    by_name = {v.name: v.config for v in variants}
    assert by_name["resize=area"].model.resize == "area"
    assert by_name["resize=area"].layout == cfg.layout
    assert by_name["gap=100"].layout.gap_height == 100  # vertical_gap: gap is gap_height
    assert by_name["pad=31"].layout.pad == 31 and by_name["pad=31"].model == cfg.model
    assert all(not c.sweep.active for c in by_name.values())
    assert by_name["base"].layout == cfg.layout and by_name["base"].model == cfg.model
    horizontal = cfg.replace(layout={"kind": "horizontal"}, sweep={"resize": [], "pad": []})
    assert horizontal.variants()[1].config.layout.gap == 100
    assert config_mod.ExperimentConfig().variants()[0].name == "base"
    assert len(config_mod.ExperimentConfig().variants()) == 1


def test_sweep_grid_and_variant_names():
    cfg = config_mod.ExperimentConfig().replace(
        sweep={"mode": "grid", "face_scale": [0.5, 1.0], "jpeg_quality": [90, 50]}
    )
    names = [v.name for v in cfg.variants()]
    assert cfg.sweep_size() == len(names) == 6 and names[0] == "base"
    assert "jpeg_quality=50,face_scale=0.5" in names
    assert parse_variant("jpeg_quality=50,face_scale=0.5") == {
        "jpeg_quality": "50",
        "face_scale": "0.5",
    }
    assert parse_variant("base") == {}
    again = config_mod.loads(cfg.to_toml())
    assert again == cfg and [v.name for v in again.variants()] == names


def test_layout_params_name_face_scale_and_pad_only_when_set():
    assert set(config_mod.LayoutConfig().params()) == {
        "width",
        "face_height",
        "gap_height",
        "fit",
        "fill",
    }
    params = config_mod.LayoutConfig(kind="horizontal", face_scale=0.5, pad=3).params()
    assert params["face_scale"] == 0.5 and params["pad"] == 3


def test_fixed_order_is_accepted():
    assert config_mod.loads('[design]\norder = "fixed"').design.order == "fixed"
