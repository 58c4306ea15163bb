"""Provenance recorded with every result: package versions, config and model identity."""

from __future__ import annotations

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
    """``name=version`` pairs of the packages that decide results, ``;``-separated."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ";".join(found)
