"""Small interval plots the report adds beside :func:`cropaudit.stats.plots.forest_plot`.

The survival-ratio forest plots per criterion come from :mod:`cropaudit.stats.plots` unchanged;
this module draws the same kind of figure for other quantities (first-slot rate, survival ratio
per sensitivity variant), whose axis labels and reference lines differ.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from cropaudit.stats.plots import finite  # noqa: E402


def interval_plot(
    labels: Sequence[str],
    estimates: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    title: str,
    xlabel: str,
    reference: float = 0.5,
    reference_label: str = "parity (0.5)",
) -> bytes:
    """PNG bytes: one line per label, point estimate with its interval, a dashed reference."""
    n = len(labels)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * max(n, 1)))
    for i, (est, lo, hi) in enumerate(zip(estimates, lows, highs)):
        y = n - 1 - i
        if finite(lo) and finite(hi):
            ax.plot([lo, hi], [y, y], color="tab:purple", lw=2)
        if finite(est):
            ax.plot([est], [y], "o", color="tab:purple")
    ax.axvline(reference, color="grey", ls="--", lw=1, label=reference_label)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(labels)[::-1], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
