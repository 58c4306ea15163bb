"""Experiment configs: validation names the key; every shipped config validates."""

from __future__ import annotations

from importlib import resources

import pytest

from cropaudit import config as config_mod
from cropaudit.cli import main
from cropaudit.errors import ConfigError


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
