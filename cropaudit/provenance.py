"""Provenance recorded with every result: package versions, config and model identity."""

from __future__ import annotations

import os
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

    Ends with TensorFlow's oneDNN switch, which changes CPU results in the last bits.
    """
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    found.append(f"tf_onednn_opts={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}")
    return ";".join(found)
