"""The findings of an estimates table in plain words: what a researcher reads first.

One line per cropper (model x variant) and comparison of the primary criterion: the survival
ratio, its reported interval, the effective n, the Holm-adjusted p of the test that interval
inverts, and a verdict with three states (:data:`VERDICTS`):

- ``disparity``: the interval excludes 1/2;
- ``parity``: the interval lies inside 1/2 +- w (``parity_width``): any disparity is smaller;
- ``inconclusive``: anything else, with what ``cropaudit plan`` says is needed (the plan's
  table for a target half-width of w, when one is given; otherwise the effective n a
  half-width of w takes).

Then one line per cropper for position bias (the first-slot rate) and one per control design
(does the same-group or same-image control sit at 1/2?). The primary criterion is the salient
point for a saliency model and the first aspect ratio's crop for a box cropper (one without a
point), unless the config names one; criteria whose winners are identical row for row to it
(the estimates' ``identical_criteria``) are named with it, since they are one finding.

Pure: estimates (and a plan) in, :class:`Finding` records out; the statistics stage writes them
to ``findings.json`` (:func:`findings_json`) and prints their ``text``; the pages show them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from scipy.special import ndtri

from cropaudit.schemas.criteria import POINT, criterion_name, crop_ratio
from cropaudit.schemas.estimates import KEY_FIELDS
from cropaudit.schemas.survival import CONTROLS

VERDICTS = ("disparity", "parity", "inconclusive")
#: Kinds of finding (:mod:`cropaudit.stats.gaze` findings add their own).
KINDS = ("comparison", "position", "control")
#: Default half-width of the parity band (``[analysis] parity_width``).
DEFAULT_PARITY_WIDTH = 0.05
#: Version of ``findings.json``.
FINDINGS_VERSION = "findings/v1"
#: The level of estimates that do not say theirs.
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Finding:
    """One line of the findings: what it is about, its numbers, its verdict and its words."""

    kind: str
    model_name: str
    variant: str
    design: str
    criterion: str
    criteria: tuple[str, ...]
    comparison: str
    group_a: str
    group_b: str
    estimate: float
    low: float
    high: float
    effective_n: float
    p_adjusted: float
    verdict: str
    needed: str | None
    text: str


def primary_criterion_of(
    criteria: Sequence[str], primary: str | None = None, aspect_ratios: Sequence[float] = ()
) -> str | None:
    """The primary criterion among a cropper's ``criteria``: ``primary`` when it has it; else
    ``point`` when it has a salient point; else the crop of the first of ``aspect_ratios`` it
    has (the config's order), else its crop of the smallest ratio. None without criteria."""
    have = set(criteria)
    if primary is not None and primary in have:
        return primary
    if POINT in have:
        return POINT
    for ratio in aspect_ratios:
        if criterion_name(ratio) in have:
            return criterion_name(ratio)
    crops = sorted((c for c in have if c != POINT), key=_ratio_or_name)
    return crops[0] if crops else None


def _ratio_or_name(criterion: str) -> tuple[float, str]:
    try:
        return (crop_ratio(criterion) or 0.0, criterion)
    except ValueError:  # a plain table's own criterion names
        return (math.inf, criterion)


def verdict(low: float, high: float, width: float) -> str:
    """``disparity`` when [low, high] excludes 1/2, ``parity`` when it lies inside 1/2 +- width,
    ``inconclusive`` otherwise (and when the interval is undefined)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    if high < 0.5 or low > 0.5:
        return "disparity"
    if 0.5 - width <= low and high <= 0.5 + width:
        return "parity"
    return "inconclusive"


def findings(
    estimates: pd.DataFrame,
    *,
    primary_criterion: str | None = None,
    parity_width: float = DEFAULT_PARITY_WIDTH,
    level: float | None = None,
    aspect_ratios: Sequence[float] = (),
    plan: pd.DataFrame | None = None,
) -> list[Finding]:
    """The findings of ``estimates`` (estimates-table rows): per cropper, its comparisons, its
    position bias and its controls, in the table's order. ``level``: the estimates' own by
    default; ``aspect_ratios``: the config's, for the default criterion of a box cropper;
    ``plan``: :func:`cropaudit.stats.planning.plan_table` rows at target ``parity_width``, for
    what an inconclusive comparison needs."""
    if estimates.empty:
        return []
    if level is None:
        levels = estimates["level"].dropna().unique() if "level" in estimates else []
        level = float(levels[0]) if len(levels) == 1 else DEFAULT_LEVEL
    context = _Context(parity_width, level, _plans(plan))
    out: list[Finding] = []
    for _, rows in estimates.groupby(["model_name", "variant"], sort=False):
        criterion = primary_criterion_of(rows["criterion"].unique(), primary_criterion,
                                         aspect_ratios)  # fmt: skip
        rows = rows[rows["criterion"] == criterion]
        main = rows[~rows["design"].isin(CONTROLS)]
        main = main.sort_values("comparison", key=lambda c: c != "pair", kind="stable")
        out += [context.comparison(r) for r in main.to_dict("records")]
        pairs = main[main["comparison"] == "pair"]  # each composite once
        for _, block in pairs.groupby("design", sort=False):
            out.append(context.position(block.to_dict("records")))
        for design in CONTROLS:
            block = rows[rows["design"] == design]
            if len(block):
                out.append(context.control(block.to_dict("records")))
    return out


def findings_json(items: list[Finding]) -> dict:
    """What ``findings.json`` holds: the version, the verdicts' names and every finding as a
    record (NaN as null)."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return list(value) if isinstance(value, tuple) else value

    records = [{k: clean(v) for k, v in dataclasses.asdict(f).items()} for f in items]
    return {"version": FINDINGS_VERSION, "verdicts": list(VERDICTS), "findings": records}


def _plans(plan: pd.DataFrame | None) -> dict[tuple, dict]:
    if plan is None or plan.empty:
        return {}
    return {tuple(r[f] for f in KEY_FIELDS): r for r in plan.to_dict("records")}


def _number(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "–"


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _criteria(row: dict) -> tuple[str, ...]:
    same = row.get("identical_criteria")
    listed = [str(c) for c in same] if same is not None and len(same) else []
    return tuple(dict.fromkeys([row["criterion"], *listed]))


def _label(row: dict, criteria: tuple[str, ...]) -> str:
    also = f" (= {', '.join(criteria[1:])})" if len(criteria) > 1 else ""
    return f"{row['model_name']}, {row['criterion']}{also}"


def _variant(row: dict) -> str:
    return "" if row["variant"] == "base" else f" ({row['variant']})"


@dataclass(frozen=True)
class _Context:
    width: float
    level: float
    plans: dict[tuple, dict]

    @property
    def alpha(self) -> float:
        return 1.0 - self.level

    def _finding(self, kind: str, row: dict, stat: str, test: str, **words) -> Finding:
        low, high = float(row[f"{stat}_low"]), float(row[f"{stat}_high"])
        criteria = _criteria(row)
        return Finding(
            kind=kind, model_name=str(row["model_name"]), variant=str(row["variant"]),
            design=str(row["design"]), criterion=str(row["criterion"]), criteria=criteria,
            comparison=str(row["comparison"]), group_a=str(row["group_a"]),
            group_b=str(row["group_b"]), estimate=float(row[stat]), low=low, high=high,
            effective_n=float(row[f"{stat}_effective_n"]), p_adjusted=float(row[f"{test}_holm"]),
            verdict=words["verdict"], needed=words.get("needed"), text=words["text"],
        )  # fmt: skip

    def _numbers(self, row: dict, stat: str, test: str) -> str:
        return (
            f"{_number(row[stat])} [{_number(row[f'{stat}_low'])}, {_number(row[f'{stat}_high'])}]"
            f", effective n {_number(row[f'{stat}_effective_n'], 1)}"
            f", adjusted p {_p(row[f'{test}_holm'])}"
        )

    def _not_adjusted(self, row: dict, test: str) -> str:
        """A note where the interval excludes 1/2 but the family's adjustment keeps the test
        above its level (several comparisons asked at once)."""
        p = float(row[f"{test}_holm"])
        return (
            " (not significant once adjusted for its family's comparisons)"
            if p >= self.alpha
            else ""
        )

    def needed(self, row: dict) -> str:
        """What an inconclusive comparison needs for a half-width of ``width``: the plan's
        subjects and composites when planned, else the effective n it takes."""
        plan = self.plans.get(tuple(row[f] for f in KEY_FIELDS))
        w = f"±{self.width:g}"
        if plan is not None and pd.notna(plan.get("subjects_per_group")):
            return (
                f"about {int(plan['subjects_per_group'])} faces per group and "
                f"{int(plan['composites_per_subject'])} composites per face "
                f"({int(plan['total_composites'])} composites) for {w}, says `cropaudit plan`"
            )
        q = float(ndtri(0.5 + self.level / 2.0))
        target = q * q * 0.25 / self.width**2
        now = _number(row.get("ratio_effective_n", math.nan), 1)
        rough = f"an effective n of about {target:,.0f} for {w} (now {now})"
        if plan is not None and plan.get("status"):
            return f"{rough}; `cropaudit plan` cannot plan from this pilot ({plan['status']})"
        return f"{rough}: more faces, not only more composites of these; see `cropaudit plan`"

    def comparison(self, row: dict) -> Finding:
        state = verdict(float(row["ratio_low"]), float(row["ratio_high"]), self.width)
        needed = self.needed(row) if state == "inconclusive" else None
        a, b = row["group_a"], row["group_b"]
        if state == "disparity":
            kept, other = (a, b) if float(row["ratio"]) > 0.5 else (b, a)
            words = f"a disparity: {kept} kept over {other}{self._not_adjusted(row, 'ratio_p')}"
        elif state == "parity":
            words = f"consistent with parity within ±{self.width:g}"
        else:
            words = f"too little data to say; needs {needed}"
        text = (
            f"{_label(row, _criteria(row))}{_variant(row)}, {row['design']}: {a} vs {b}: ratio "
            f"{self._numbers(row, 'ratio', 'ratio_p')} — {words}"
        )
        return self._finding("comparison", row, "ratio", "ratio_p", verdict=state,
                             needed=needed, text=text)  # fmt: skip

    def _summary(self, rows: list[dict], stat: str, test: str) -> tuple[dict, str, int]:
        """The row with the smallest p of ``test``, the block's verdict (``disparity`` when that
        row's interval excludes 1/2, ``parity`` when every interval is inside the band) and how
        many intervals exclude 1/2."""
        ranked = sorted(rows, key=lambda r: _sort_p(r[test]))
        states = [verdict(float(r[f"{stat}_low"]), float(r[f"{stat}_high"]), self.width)
                  for r in rows]  # fmt: skip
        top = verdict(float(ranked[0][f"{stat}_low"]), float(ranked[0][f"{stat}_high"]), self.width)
        state = top if top == "disparity" else (
            "parity" if all(s == "parity" for s in states) else "inconclusive"
        )  # fmt: skip
        return ranked[0], state, states.count("disparity")

    def position(self, rows: list[dict]) -> Finding:
        row, state, off = self._summary(rows, "first_slot_rate", "first_slot_p")
        words = {
            "disparity": "position bias: the cropper favours one slot"
            + self._not_adjusted(row, "first_slot_p"),
            "parity": f"no position bias beyond ±{self.width:g}",
            "inconclusive": "too little data to say",
        }[state]
        text = (
            f"{_label(row, _criteria(row))}{_variant(row)}, {row['design']}: position: first slot "
            f"wins {self._numbers(row, 'first_slot_rate', 'first_slot_p')} "
            f"({row['group_a']} vs {row['group_b']}, the strongest; {off} of {len(rows)} "
            f"comparisons exclude 0.5) — {words}"
        )
        return self._finding("position", row, "first_slot_rate", "first_slot_p",
                             verdict=state, text=text)  # fmt: skip

    def control(self, rows: list[dict]) -> Finding:
        row, state, off = self._summary(rows, "ratio", "ratio_p")
        name = str(row["design"]).replace("_", "-")
        words = {
            "disparity": f"the {name} control is off 0.5: check the layout and counterbalancing"
            " before reading the comparisons" + self._not_adjusted(row, "ratio_p"),
            "parity": f"the {name} control sits at 0.5 (within ±{self.width:g})",
            "inconclusive": f"the {name} control does not contradict 0.5, but too little data to"
            f" say it sits there",
        }[state]
        text = (
            f"{_label(row, _criteria(row))}{_variant(row)}, {name} control: ratio "
            f"{self._numbers(row, 'ratio', 'ratio_p')} ({row['group_a']} vs {row['group_b']}, "
            f"the farthest; {off} of {len(rows)} exclude 0.5) — {words}"
        )
        return self._finding("control", row, "ratio", "ratio_p", verdict=state, text=text)


def _sort_p(p: float) -> float:
    return float(p) if p is not None and math.isfinite(float(p)) else math.inf
