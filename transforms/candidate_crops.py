"""``candidate_crops``-style post-processing for one image (spec §4).

The crop rule itself lives in :func:`cropaudit.transforms.crop.crop_box`; this module adds what
only the single-image ``saliency`` command needs: Twitter's default ratio list (which ends with
the image's own ratio), the horizontal-symmetry check, and a plain record of the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cropaudit.model.base import SaliencyGrid
from cropaudit.schemas.criteria import TWITTER_ASPECT_RATIOS
from cropaudit.transforms.crop import grid_cropping

SYMMETRY_THUMB = 10
SYMMETRY_PERCENTILE = 95.0
SYMMETRY_THRESHOLD = 25.0


def default_ratios(width: int, height: int) -> tuple[float, ...]:
    """Twitter's ratios plus the image's own (height/width), as ``candidate_crops`` used."""
    return (*TWITTER_ASPECT_RATIOS, height / width)


def is_symmetric(image: np.ndarray) -> bool:
    """Whether an (H, W, 3) uint8 image is left-right symmetric by ``candidate_crops``' test.

    A 10×10 thumbnail is compared with its mirror; the image is symmetric when the 95th
    percentile of the absolute difference is below 25 (on the 0..255 scale).
    """
    thumb = Image.fromarray(np.asarray(image, np.uint8)).resize(
        (SYMMETRY_THUMB, SYMMETRY_THUMB), Image.Resampling.LANCZOS
    )
    t = np.asarray(thumb, dtype=np.float32)
    diff = np.abs(t - t[:, ::-1])
    return bool(np.percentile(diff, SYMMETRY_PERCENTILE) < SYMMETRY_THRESHOLD)


@dataclass(frozen=True)
class Crop:
    aspect_ratio: float
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class CandidateCrops:
    """What ``candidate_crops ... show_all_points`` reports for one image."""

    width: int
    height: int
    salient_x: int
    salient_y: int
    salient_score: float
    symmetric: bool
    crops: tuple[Crop, ...]
    #: (x, y, score) for every grid cell, row-major.
    points: tuple[tuple[int, int, float], ...]

    def to_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "salient_point": {
                "x": self.salient_x,
                "y": self.salient_y,
                "score": self.salient_score,
            },
            "symmetric": self.symmetric,
            "crops": [c.__dict__ for c in self.crops],
            "points": [{"x": x, "y": y, "score": s} for x, y, s in self.points],
        }


def candidate_crops(
    grid: SaliencyGrid,
    width: int,
    height: int,
    aspect_ratios: tuple[float, ...] | None = None,
    symmetric: bool = False,
) -> CandidateCrops:
    """Salient point, one crop per ratio and all scored points; a symmetric image's crops are
    centred horizontally instead of on the salient x."""
    sx, sy, score = grid.salient_point()
    ratios = default_ratios(width, height) if aspect_ratios is None else tuple(aspect_ratios)
    cropping = grid_cropping(grid, width, height, ratios, centre_x=symmetric)
    crops = [Crop(ar, b.x, b.y, b.w, b.h) for ar, b in zip(cropping.ratios, cropping.boxes)]
    points = tuple(
        (int(grid.xs[c]), int(grid.ys[r]), float(grid.scores[r, c]))
        for r in range(grid.scores.shape[0])
        for c in range(grid.scores.shape[1])
    )
    return CandidateCrops(width, height, sx, sy, score, symmetric, tuple(crops), points)
