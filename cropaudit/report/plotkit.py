"""The plot kit both pages draw with: one interval (forest) plot, and the comparison labels.

Every figure is one line per row, the point estimate with its interval against a dashed
reference line (parity, 0.5, for survival ratios), so the eye reads distance from the reference,
not bar heights. :func:`forest_plot` is that figure for one criterion of an estimates table; the
run report also draws it for other quantities (first-slot rate, ratio per variant, face share).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cropaudit.schemas.criteria import POINT  # noqa: E402
from cropaudit.schemas.survival import PAIRS  # noqa: E402
from cropaudit.stats.intervals import finite, reported_interval  # noqa: E402

#: Context columns a label names only when they vary across the plotted rows. Never the
#: pre-processing: a box cropper's is its settings JSON (provenance, not a label).
CONTEXT = ("model_name", "layout", "variant")
#: One colour per cropper in the plots that compare croppers.
MODEL_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
PARITY_XLABEL = "survival ratio of group a, wins_a / (wins_a + wins_b); dashed: parity 0.5"


def comparison_label(row: pd.Series, context: tuple[str, ...] = CONTEXT) -> str:
    head = " / ".join(str(row[c]) for c in context if c in row)
    design = "" if row["design"] == PAIRS else f" [{row['design']}]"
    pair = f"{row['group_a']} vs {row['group_b']}{design}"
    return f"{head}: {pair}" if head else pair


def criteria_order(criteria: Iterable[str]) -> list[str]:
    """Criteria as both pages list them: ``point`` first, then the crops by name."""
    return sorted(set(criteria), key=lambda c: (c != POINT, c))


def criteria_groups(estimates: pd.DataFrame) -> list[tuple[str, ...]]:
    """The criteria of ``estimates`` in :func:`criteria_order`, those whose winners are identical
    row for row in one tuple: two criteria go together when every row of each names the other in
    its ``identical_criteria`` (as the statistics stage records them), so no row of either is
    left unshown. The pages show such criteria once, naming all of them
    (:func:`criteria_title`). Without that column, one each."""
    order = criteria_order(estimates["criterion"])
    if "identical_criteria" not in estimates:
        return [(c,) for c in order]
    same: dict[str, set[str]] = {}
    for criterion in order:
        rows = estimates.loc[estimates["criterion"] == criterion, "identical_criteria"]
        same[criterion] = set.intersection(*(set(map(str, [] if v is None else v)) for v in rows))
    groups, placed = [], set()
    for criterion in order:
        if criterion in placed:
            continue
        group = (criterion, *(
            c for c in order
            if c != criterion and c not in placed and c in same[criterion] and criterion in same[c]
        ))  # fmt: skip
        placed.update(group)
        groups.append(group)
    return groups


def criteria_title(group: Sequence[str]) -> str:
    """A heading for a group of :func:`criteria_groups`: its first criterion, and the others it
    stands for."""
    if len(group) == 1:
        return group[0]
    return f"{group[0]} (identical results for {', '.join(group[1:])})"


def varying_context(df: pd.DataFrame) -> tuple[str, ...]:
    """The context columns with more than one value in ``df``: the rest go in the title."""
    return tuple(c for c in CONTEXT if c in df and df[c].nunique() > 1)


def shared_context(df: pd.DataFrame) -> str:
    fixed = [c for c in CONTEXT if c in df and df[c].nunique() == 1]
    return " / ".join(str(df[c].iloc[0]) for c in fixed)


def interval_figure(
    labels: Sequence[str],
    estimates: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    title: str,
    xlabel: str,
    reference: float = 0.5,
    reference_label: str = "parity (0.5)",
    formats: Sequence[str] = ("png",),
    xlim: tuple[float, float] = (0.0, 1.0),
) -> dict[str, bytes]:
    """Image bytes per format (``png``, ``svg``): one line per label, top to bottom, the point
    estimate with its interval (drawn where both ends are finite) and a dashed reference."""
    n = len(labels)
    width = 5 + 0.06 * max((len(label) for label in labels), default=0)
    fig, ax = plt.subplots(figsize=(min(max(width, 7.0), 10.0), 1.3 + 0.24 * max(n, 1)))
    for i, (est, lo, hi) in enumerate(zip(estimates, lows, highs, strict=True)):
        y = n - 1 - i
        if finite(lo) and finite(hi):
            ax.plot([lo, hi], [y, y], color="tab:blue", lw=2)
        if finite(est):
            ax.plot([est], [y], "o", color="tab:blue")
    ax.axvline(reference, color="grey", ls="--", lw=1, label=reference_label)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(labels)[::-1], fontsize=8)
    ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = {}
    for fmt in formats:
        buf = io.BytesIO()
        # a tight box: long labels and the title are never clipped
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", pad_inches=0.15)
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return out


def interval_plot(*args, **kwargs) -> bytes:
    """PNG bytes of :func:`interval_figure`."""
    return interval_figure(*args, **kwargs, formats=("png",))["png"]


def table_interval_plot(
    labels: Sequence[str], rows: pd.DataFrame, estimate: str, **kwargs
) -> bytes:
    """:func:`interval_plot` of the column ``estimate`` of ``rows`` with its ``ci_low`` and
    ``ci_high`` columns (the tables of :mod:`cropaudit.stats` that carry one interval)."""
    return interval_plot(
        labels, list(rows[estimate]), list(rows["ci_low"]), list(rows["ci_high"]), **kwargs
    )


def forest_plot(
    estimates: pd.DataFrame, criterion: str, title: str | None = None
) -> dict[str, bytes]:
    """PNG and SVG bytes of one criterion's survival ratios, one line per comparison, with
    each row's reported interval (``title``: what the plot stands for, by default the
    criterion)."""
    df = estimates[estimates["criterion"] == criterion].reset_index(drop=True)
    context = varying_context(df)
    cis = [reported_interval(r) for _, r in df.iterrows()]
    level = df["level"].iloc[0] if len(df) else 0.95
    title = f"{title or criterion}: survival ratio with {level:.0%} subject-clustered CI"
    return interval_figure(
        [comparison_label(r, context) for _, r in df.iterrows()],
        list(df["ratio"]),
        [lo for lo, _ in cis],
        [hi for _, hi in cis],
        title=f"{title}\n{shared_context(df)}" if len(df) else title,
        xlabel=PARITY_XLABEL,
        formats=("png", "svg"),
    )


def croppers_plot(estimates: pd.DataFrame, criterion: str, models: Sequence[str]) -> bytes:
    """PNG of the croppers side by side for one criterion: one row per comparison of the
    ``pairs`` design, one mark per cropper (by model name) with its reported interval."""
    df = estimates[(estimates["criterion"] == criterion) & (estimates["design"] == PAIRS)]
    comparisons = list(dict.fromkeys(zip(df["group_a"], df["group_b"], strict=True)))
    n, m = len(comparisons), len(models)
    fig, ax = plt.subplots(figsize=(8.0, 1.5 + 0.32 * max(n, 1) * max(1.0, m / 3)))
    step = 0.7 / max(m, 1)
    for j, model in enumerate(models):
        colour = MODEL_COLOURS[j % len(MODEL_COLOURS)]
        rows = df[df["model_name"] == model].set_index(["group_a", "group_b"])
        for i, key in enumerate(comparisons):
            if key not in rows.index:
                continue
            r = rows.loc[key]
            r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
            y = n - 1 - i + 0.35 - step / 2 - j * step
            lo, hi = reported_interval(r)
            if finite(lo) and finite(hi):
                ax.plot([lo, hi], [y, y], color=colour, lw=2)
            if finite(r["ratio"]):
                ax.plot([r["ratio"]], [y], "o", color=colour, label=model if i == 0 else None)
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{a} vs {b}" for a, b in comparisons][::-1], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(PARITY_XLABEL)
    level = df["level"].iloc[0] if len(df) else 0.95
    ax.set_title(f"{criterion}: survival ratio per cropper, {level:.0%} CI", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / max(n, 1)), ncol=min(m, 3),
              fontsize=8, frameon=False)  # fmt: skip
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return buf.getvalue()
