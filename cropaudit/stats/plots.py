"""Forest plots of survival ratios: one figure per criterion, one line per comparison.

The ratio is drawn with its subject-clustered bootstrap interval (BCa, falling back to
percentile where BCa is undefined) against a parity line at 0.5, so the eye reads distance from
parity, not bar heights.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

#: Context columns a label names only when they vary across the plotted rows.
CONTEXT = ("model_name", "layout", "preprocessing", "variant")


def comparison_label(row: pd.Series, context: tuple[str, ...] = CONTEXT) -> str:
    head = " / ".join(str(row[c]) for c in context if c in row)
    design = "" if row["design"] == "pairs" else f" [{row['design']}]"
    pair = f"{row['group_a']} vs {row['group_b']}{design}"
    return f"{head}: {pair}" if head else pair


def varying_context(df: pd.DataFrame) -> tuple[str, ...]:
    """The context columns with more than one value in ``df``: the rest go in the title."""
    return tuple(c for c in CONTEXT if c in df and df[c].nunique() > 1)


def shared_context(df: pd.DataFrame) -> str:
    fixed = [c for c in CONTEXT if c in df and df[c].nunique() == 1]
    return " / ".join(str(df[c].iloc[0]) for c in fixed)


def finite(value) -> bool:
    """Whether ``value`` is a finite number (None and non-numbers are not)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def interval(row: pd.Series, stat: str = "ratio") -> tuple[float, float]:
    """``stat``'s reported interval (``<stat>_low/high``) from an estimates row; for tables
    written before it existed, the BCa interval, or percentile where BCa is undefined."""
    lo, hi = row.get(f"{stat}_low"), row.get(f"{stat}_high")
    if not (finite(lo) and finite(hi)):
        lo, hi = row.get(f"{stat}_bca_low"), row.get(f"{stat}_bca_high")
    if not (finite(lo) and finite(hi)):
        lo, hi = row.get(f"{stat}_percentile_low"), row.get(f"{stat}_percentile_high")
    return lo, hi


def forest_plot(estimates: pd.DataFrame, criterion: str) -> dict[str, bytes]:
    """PNG and SVG bytes of one criterion's forest plot."""
    df = estimates[estimates["criterion"] == criterion].reset_index(drop=True)
    context = varying_context(df)
    labels = [comparison_label(r, context) for _, r in df.iloc[::-1].iterrows()]
    width = 6 + 0.065 * max((len(label) for label in labels), default=0)
    fig, ax = plt.subplots(figsize=(width, 1.6 + 0.4 * max(len(df), 1)))
    for i, row in df.iterrows():
        lo, hi = interval(row)
        y = len(df) - 1 - i
        if finite(lo) and finite(hi):
            ax.plot([lo, hi], [y, y], color="tab:blue", lw=2)
        ax.plot([row["ratio"]], [y], "o", color="tab:blue")
    ax.axvline(0.5, color="grey", ls="--", lw=1, label="parity (0.5)")
    ax.set_yticks(range(len(df)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("survival ratio of group a, wins_a / (wins_a + wins_b); dashed: parity 0.5")
    level = df["level"].iloc[0] if len(df) else 0.95
    title = f"{criterion}: survival ratio with {level:.0%} subject-clustered CI"
    ax.set_title(f"{title}\n{shared_context(df)}" if len(df) else title, fontsize=9)
    fig.tight_layout()
    out = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        # a tight box: long comparison labels and the title are never clipped
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", pad_inches=0.15)
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return out
