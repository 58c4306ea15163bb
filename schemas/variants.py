"""Names of sweep variants, as the ``variant`` column of every table spells them.

A run without ``[sweep]`` has only :data:`BASE_VARIANT`; a sweep's other variants are named by
the axes where they differ from the base, in :data:`SWEEP_AXES` order (``pad=16``,
``resize=area,pad=16``). The config builds the names, the tables carry them and the statistics
parse them back, all through these functions.
"""

from __future__ import annotations

from typing import Any

#: Name of the unswept variant (every run has it; a run without ``[sweep]`` has only it).
BASE_VARIANT = "base"
#: Sweep axes in the order variant names list them.
SWEEP_AXES = ("resize", "jpeg_quality", "gap", "face_scale", "pad")


def _format_value(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def variant_name(axes: dict[str, Any]) -> str:
    """``base`` for no axes, else ``axis=value`` pairs in :data:`SWEEP_AXES` order."""
    if not axes:
        return BASE_VARIANT
    return ",".join(f"{a}={_format_value(axes[a])}" for a in SWEEP_AXES if a in axes)


def parse_variant(name: str) -> dict[str, str]:
    """The axes of a variant name (values as text); ``{}`` for ``base``."""
    if name == BASE_VARIANT:
        return {}
    return dict(part.split("=", 1) for part in name.split(","))
