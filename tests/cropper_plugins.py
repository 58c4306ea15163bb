"""Croppers used as ``plugin:cropper_plugins:NAME`` by the plugin tests."""

from __future__ import annotations


def centred(image, ratios):
    """The largest centred box of each ratio, as (x, y, w, h) tuples."""
    h, w = image.shape[:2]
    out = []
    for ar in ratios:
        bw, bh = (w, min(h, round(ar * w))) if ar < h / w else (min(w, round(h / ar)), h)
        out.append(((w - bw) // 2, (h - bh) // 2, bw, bh))
    return out


def top_left_dicts(image, ratios):
    """Boxes as dicts, always in the top-left corner."""
    h, w = image.shape[:2]
    side = min(h, w) // 2
    return [{"x": 0, "y": 0, "w": side, "h": side} for _ in ratios]


def outside(image, ratios):
    """A box that leaves the image: must be dead-lettered, never scored."""
    h, w = image.shape[:2]
    return [(w - 10, 0, 20, h) for _ in ratios]


def wrong_count(image, ratios):
    return [(0, 0, 1, 1)]


def broken(image, ratios):
    raise RuntimeError("the cropper crashed")
