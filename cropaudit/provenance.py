"""Provenance recorded with every result: package versions, config and model identity."""

from __future__ import annotations

import os
import sys
from importlib import metadata

PACKAGES = (
    "cropaudit",
    "apache-beam",
    "tensorflow-cpu",
    "tensorflow",
    "numpy",
    "pillow",
    "pyarrow",
)


def versions() -> str:
    """``name=version`` pairs of the packages that decide results, ``;``-separated.

    Ends with TensorFlow's oneDNN state, which changes CPU results in the last bits.
    """
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    found.append(f"tf_onednn={onednn_state()}")
    return ";".join(found)


def onednn_state() -> str:
    """``on``/``off`` as TensorFlow runs, once it is imported; before that, the switch that it
    will read at import (``TF_ENABLE_ONEDNN_OPTS``, which cropaudit sets to 1 by default)."""
    if "tensorflow" in sys.modules:
        try:
            from tensorflow.python.util import _pywrap_util_port

            return "on" if _pywrap_util_port.IsMklEnabled() else "off"
        except (ImportError, AttributeError):
            return "unknown"
    return {"1": "on", "0": "off"}.get(os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""), "tf-default")
