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


def comparison_label(row: pd.Series) -> str:
    head = f"{row['model_name']} / {row['layout']} / {row['preprocessing']}"
    design = "" if row["design"] == "pairs" else f" [{row['design']}]"
    return f"{head}{design}: {row['group_a']} vs {row['group_b']}"


def interval(row: pd.Series) -> tuple[float, float]:
    lo, hi = row["ratio_bca_low"], row["ratio_bca_high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = row["ratio_percentile_low"], row["ratio_percentile_high"]
    return lo, hi


def forest_plot(estimates: pd.DataFrame, criterion: str) -> dict[str, bytes]:
    """PNG and SVG bytes of one criterion's forest plot."""
    df = estimates[estimates["criterion"] == criterion].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * max(len(df), 1)))
    for i, row in df.iterrows():
        lo, hi = interval(row)
        y = len(df) - 1 - i
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [y, y], color="tab:blue", lw=2)
        ax.plot([row["ratio"]], [y], "o", color="tab:blue")
    ax.axvline(0.5, color="grey", ls="--", lw=1, label="parity (0.5)")
    ax.set_yticks(range(len(df)))
    ax.set_yticklabels([comparison_label(r) for _, r in df.iloc[::-1].iterrows()], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("survival ratio of group a (wins_a / (wins_a + wins_b))")
    level = df["level"].iloc[0] if len(df) else 0.95
    ax.set_title(f"{criterion}: survival ratio with {level:.0%} subject-clustered bootstrap CI")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=110)
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return out
