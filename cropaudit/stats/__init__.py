"""Pure statistics of survival tables. ``estimate_survival`` (:mod:`cropaudit.stats.table`) is
the public estimator for any table of composites; it is imported lazily so that importing a
submodule stays light."""

from __future__ import annotations

__all__ = ["estimate_survival"]


def __getattr__(name: str):
    if name == "estimate_survival":
        from cropaudit.stats.table import estimate_survival

        return estimate_survival
    raise AttributeError(f"module 'cropaudit.stats' has no attribute {name!r}")
