"""Configs round-trip, nesting is bounded, an empty config is an error (issue 13, item 7)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cropaudit import config as config_mod
from cropaudit.cli import main
from cropaudit.errors import ConfigError
from tests.reliability.snapshot import folder_digest

#: Any text a TOML file can hold: every code point but lone surrogates, control chars included.
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(text, st.text(st.characters(blacklist_categories=("Cs",)), max_size=30), text, text)
def test_whatever_validates_is_written_back_in_a_form_it_reads(name, description, label, attr):
    try:
        config = config_mod.ExperimentConfig().replace(
            name=name,
            description=description,
            dataset=label,
            manifest={"path": f"{label}.csv"},
            groups={"attributes": [attr], "labels": {attr: [label]}, "missing_labels": [label]},
            design={"pairs": [[label, label + "2"]]},
        )
    except ConfigError:
        return  # not accepted, nothing to write back
    again = config_mod.loads(config.to_toml())
    assert again == config and again.config_hash == config.config_hash


def test_a_name_that_is_not_unicode_text_is_refused_not_written():
    with pytest.raises(ConfigError, match="name"):
        config_mod.ExperimentConfig().replace(name="bad \udcff byte")  # an undecodable argv byte


@pytest.mark.parametrize("depth", [9, 40, 5000])
def test_deep_nesting_is_a_clear_error(depth, tmp_path, capsys):
    path = tmp_path / "deep.toml"
    path.write_text("name = 'x'\nx = " + "[" * depth + "]" * depth + "\n")
    before = folder_digest(tmp_path)
    with pytest.raises(ConfigError, match="nested more than 8 levels"):
        config_mod.load(str(path))
    assert main(["validate", str(path)]) == 1
    assert "nested more than 8 levels" in capsys.readouterr().out
    assert folder_digest(tmp_path) == before


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_an_empty_config_is_an_error(content, tmp_path, capsys):
    path = tmp_path / "empty.toml"
    path.write_text(content)
    before = folder_digest(tmp_path)
    assert main(["validate", str(path)]) == 1
    assert "the config is empty" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "the config is empty" in err and err.count("\n") == 1
    assert folder_digest(tmp_path) == before  # no output folder was created


def test_a_config_that_is_a_fifo_is_an_error_not_a_hang(tmp_path, capsys):
    import os

    from tests.reliability.test_one_decoder import _finishes

    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    good = tmp_path / "good.toml"
    good.write_text('name = "good"\n')
    assert _finishes(lambda: main(["validate", str(fifo), str(good)])) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "is not a regular file (a FIFO)" in out and "ok      " in out
