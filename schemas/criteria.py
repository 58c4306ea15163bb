"""Names of the survival criteria, as the ``criterion`` column of the estimates table spells them.

``point``: which face holds the salient point. ``crop_<aspect ratio>`` (two decimals, e.g.
``crop_0.56``): which face keeps more visible area in the simulated crop of that ratio. The
statistics stage writes the names, the report and the sensitivity analysis read them back, all
through these functions.
"""

from __future__ import annotations

POINT = "point"
CROP_PREFIX = "crop_"


def criterion_name(aspect_ratio: float) -> str:
    """The criterion of the crop with ``aspect_ratio`` (height/width)."""
    return f"{CROP_PREFIX}{aspect_ratio:.2f}"


def crop_ratio(criterion: str) -> float | None:
    """The aspect ratio a ``crop_<ratio>`` criterion names; None for ``point``.

    Raises ValueError for any other name."""
    if criterion == POINT:
        return None
    if criterion.startswith(CROP_PREFIX):
        try:
            return float(criterion[len(CROP_PREFIX) :])
        except ValueError:
            pass
    raise ValueError(f"criterion must be {POINT!r} or '{CROP_PREFIX}<ratio>', got {criterion!r}")


#: The crop ratios (height/width) Twitter's cropper produced: the default crop criteria.
TWITTER_ASPECT_RATIOS = (0.56, 1.0, 1.14, 2.0)
