"""Bad configs: one clear message naming the key; loading never executes anything."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cropaudit import config as config_mod
from cropaudit.errors import ConfigError

toml_scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.integers(-5, 300), max_size=4),
)
keys = st.sampled_from(
    [
        "seed",
        "kind",
        "fit",
        "fill",
        "spec",
        "aspect_ratios",
        "width",
        "pairs",
        "order",
        "attributes",
        "nope",
        "box",
        "jpeg_quality",
    ]
)
sections = st.sampled_from(["design", "layout", "model", "crop", "groups", "manifest", "extra"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(sections, st.dictionaries(keys, toml_scalars, max_size=4), max_size=4))
def test_fuzzed_config_structures_raise_only_config_errors(data):
    try:
        config_mod.from_dict(data)
    except ConfigError as exc:
        assert str(exc).split(":")[0]  # the message starts with the key path
    except RecursionError:  # pragma: no cover
        pytest.fail("recursion")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable, max_size=200))
def test_fuzzed_config_text_raises_only_config_errors(text):
    with contextlib.suppress(ConfigError):
        config_mod.loads(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[layout]\nface_height = 100000", "layout.face_height"),
        ("[layout]\nheight = -3", "layout.height"),
        ("[model]\nbox = 8", "model.box"),
        ("[design]\nseed = 1.5", "design.seed"),
    ],
)
def test_impossible_geometry_names_the_key(text, key):
    with pytest.raises(ConfigError, match=key):
        config_mod.loads(text)


def test_loading_is_data_only(tmp_path):
    marker = tmp_path / "pwned"
    text = f"name = \"__import__('os').system('touch {marker}')\"\n"
    cfg = config_mod.loads(text)
    assert "__import__" in cfg.name and not marker.exists()
