"""The findings of a single-image run in plain words, in the form of the pair findings.

One line per cropper (model x variant) and comparison of the primary criterion
(:func:`cropaudit.stats.findings.primary_criterion_of`): both groups' face shares with their
subject-clustered intervals, the difference in points with its interval and the Holm-adjusted p
of the test that interval inverts (:mod:`cropaudit.stats.gaze`), and a verdict
(:data:`cropaudit.stats.findings.VERDICTS`): a disparity when the interval excludes 0, parity
when it lies inside 0 +- w (``parity_width``, in shares: 0.05 is 5 points), too little data to
say otherwise, with the effective number of images per group a half-width of w takes. A run
of one group gets one ``face_rate`` line per cropper instead: its share, with nothing to
compare it with.

Pure: the face-rate and difference tables (with their ``criterion`` column, as the statistics
stage writes them) in, :class:`~cropaudit.stats.findings.Finding` records out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from scipy.special import ndtri

from cropaudit.schemas.criteria import POINT, crop_ratio
from cropaudit.schemas.single_survival import SINGLE
from cropaudit.stats.findings import DEFAULT_PARITY_WIDTH, Finding, primary_criterion_of

FACE_RATE, FACE_RATE_DIFFERENCE = "face_rate", "face_rate_difference"


def criterion_words(criterion: str) -> str:
    """What keeping the face means for ``criterion``, as a verb phrase."""
    if criterion == POINT:
        return "the salient point lands on the face"
    return f"the {crop_ratio(criterion):g}:1 crop keeps the face"


def difference_verdict(low: float, high: float, width: float) -> str:
    """``disparity`` when [low, high] excludes 0, ``parity`` inside 0 +- width, else
    ``inconclusive`` (also when undefined)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    if low > 0 or high < 0:
        return "disparity"
    return "parity" if -width <= low and high <= width else "inconclusive"


def _whole(x: float) -> str:
    return f"{100 * x:.0f}" if math.isfinite(x) else "–"


def _points(x: float) -> str:
    return f"{100 * x:+.0f}".replace("-", "−") if math.isfinite(x) else "–"


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _share(share: float, low: float, high: float) -> str:
    return f"{_whole(share)}% [{_whole(low)}, {_whole(high)}]"


def needed(row: dict, width: float, level: float) -> str:
    """The effective images per group a half-width of ``width`` takes for the difference."""
    q = float(ndtri(0.5 + level / 2.0))
    spread = sum(row[s] * (1 - row[s]) for s in ("share_a", "share_b"))
    target = q * q * max(spread, 0.02) / width**2
    now = ", ".join(f"{row[f'effective_n_{s}']:.0f}" for s in ("a", "b"))
    return (
        f"an effective n of about {target:,.0f} images per group for ±{100 * width:g} points "
        f"(now {now}): more people, not only more images of these"
    )


def gaze_findings(
    rates: pd.DataFrame,
    differences: pd.DataFrame,
    *,
    primary_criterion: str | None = None,
    parity_width: float = DEFAULT_PARITY_WIDTH,
    aspect_ratios: Sequence[float] = (),
) -> list[Finding]:
    """The findings of a statistics folder's ``face_rates`` and ``face_rate_differences``
    (module docstring), per cropper in table order, pairs before group-vs-rest."""
    out: list[Finding] = []
    if rates is None or rates.empty:
        return out
    for (model, variant), block in rates.groupby(["model_name", "variant"], sort=False):
        criterion = primary_criterion_of(block["criterion"].unique(), primary_criterion,
                                         aspect_ratios)  # fmt: skip
        ours = block[block["criterion"] == criterion]
        diffs = differences if differences is not None else pd.DataFrame()
        if len(diffs):
            diffs = diffs[(diffs["model_name"] == model) & (diffs["variant"] == variant)
                          & (diffs["criterion"] == criterion)]  # fmt: skip
        if len(diffs):
            diffs = diffs.sort_values("comparison", key=lambda c: c != "pair", kind="stable")
            out += [_difference(r, criterion, parity_width) for r in diffs.to_dict("records")]
        else:
            out += [_rate(r, criterion) for r in ours.to_dict("records")]
    return out


def _label(model: str, variant: str, criterion: str) -> str:
    return f"{model}{'' if variant == 'base' else f' ({variant})'}, single images, {criterion}"


def _difference(row: dict, criterion: str, width: float) -> Finding:
    low, high = float(row["difference_low"]), float(row["difference_high"])
    state = difference_verdict(low, high, width)
    level = float(row.get("level", 0.95))
    need = needed(row, width, level) if state == "inconclusive" else None
    a, b = str(row["group_a"]), str(row["group_b"])
    b_words = "the rest" if row["comparison"] == "group_vs_rest" else f"{b}'s"
    p_adj = float(row["p_holm"])
    if state == "disparity":
        rest = row["comparison"] == "group_vs_rest"
        more = f"{a}'s" if row["difference"] > 0 else ("the other groups'" if rest else f"{b}'s")
        words = f"a disparity: the face is kept more often in {more} images"
        if p_adj >= 1 - level:
            words += " (not significant once adjusted for its family's comparisons)"
    elif state == "parity":
        words = f"consistent with no difference beyond ±{100 * width:g} points"
    else:
        words = f"too little data to say; needs {need}"
    text = (
        f"{_label(row['model_name'], row['variant'], criterion)}: {a}'s images: "
        f"{criterion_words(criterion)} in {_share(row['share_a'], row['low_a'], row['high_a'])}"
        f" vs {b_words} {_share(row['share_b'], row['low_b'], row['high_b'])}; difference "
        f"{_points(row['difference'])} points [{_points(low)}, {_points(high)}], adjusted p "
        f"{_p(p_adj)} — {words}"
    )
    return Finding(
        kind=FACE_RATE_DIFFERENCE, model_name=str(row["model_name"]),
        variant=str(row["variant"]), design=SINGLE, criterion=criterion, criteria=(criterion,),
        comparison=str(row["comparison"]), group_a=a, group_b=b,
        estimate=float(row["difference"]), low=low, high=high,
        effective_n=float(min(row["effective_n_a"], row["effective_n_b"])), p_adjusted=p_adj,
        verdict=state, needed=need, text=text,
    )  # fmt: skip


def _rate(row: dict, criterion: str) -> Finding:
    need = "a second group to compare with"
    text = (
        f"{_label(row['model_name'], row['variant'], criterion)}: {row['group']}'s images: "
        f"{criterion_words(criterion)} in "
        f"{_share(row['face_share'], row['ci_low'], row['ci_high'])} ({row['n']} images of "
        f"{row['subjects']} people, effective n {row['effective_n']:.1f}) — nothing to compare "
        "it with"
    )
    return Finding(
        kind=FACE_RATE, model_name=str(row["model_name"]), variant=str(row["variant"]),
        design=SINGLE, criterion=criterion, criteria=(criterion,), comparison="rate",
        group_a=str(row["group"]), group_b="", estimate=float(row["face_share"]),
        low=float(row["ci_low"]), high=float(row["ci_high"]),
        effective_n=float(row["effective_n"]), p_adjusted=math.nan, verdict="inconclusive",
        needed=need, text=text,
    )  # fmt: skip
