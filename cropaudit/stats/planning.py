"""Planning an audit: how many subjects per group and composites per subject reach a target
half-width of the reported survival-ratio interval, from a pilot's variance components.

Components. Write a decisive composite's outcome (1: face a survived) as
y = theta + alpha_a + beta_b + e, with an a-subject effect (variance ``var_a``), a b-subject effect
(``var_b``) and a composite-level rest (``var_composite``), all on the probability scale. For
n_s composites per subject, cells of k_c composites (a pairing shown a first and b first) and N
composites in all, the residual sums r = y - theta over a-subjects, b-subjects and cells have

    E sum_a (sum r)^2 = var_a S_a + var_b K + var_composite N,   (S_a = sum over a of n_s^2)
    E sum_b (sum r)^2 = var_a K + var_b S_b + var_composite N,   (K = sum over cells of k_c^2)
    E sum_c (sum r)^2 = (var_a + var_b) K + var_composite N,

so the three sums give the three components, and Var(ratio) = (var_a S_a + var_b S_b +
var_composite N) / N^2: var_a / n_a + var_b / n_b + var_composite / N when every subject of a side
has as many composites. The pipeline draws each sample's faces with replacement, so a planned
design's S_a is the expectation under those draws (:func:`drawn_square_sum`).

These are the same three sums as the two-way cluster-robust variance of the statistics stage
(:func:`cropaudit.stats.effective.cluster_variance`: subjects minus cells), split by side
(:func:`cropaudit.stats.effective.components`) and divided by the same small-sample factor
(:func:`cropaudit.stats.effective.small_sample_factor`, which allows for the pilot's unequal
cluster sizes: where a few faces carry the data, centring shrinks their sums, and the factor
1 - h of equal clusters left the components, and so the plans, too small), so at the pilot's
own design the
prediction is exactly the variance behind the pilot's reported interval (unless a component
was clipped at 0, or the composite level at p(1 - p), the most a Bernoulli outcome can vary).
That is why planning uses this decomposition and not the crossed logistic model's components
(:mod:`cropaudit.stats.mixed`): those live on the logit scale, need a nonlinear map to the
ratio's variance, and are fitted only for small strata; the reported interval is a function of
the cluster-robust variance alone. Counterbalancing cancels the position effect in every subject
and cell sum, so it is in no component (a planned design is counterbalanced too).

Half-width. A design's predicted variance goes through the reported interval's own functions
(:func:`reported_half_width`: effective n, score interval with the subjects' share of the
variance, t quantile on the effective number of subjects, as
:func:`cropaudit.stats.stratum.estimate_stratum` composes them); the tests check that the
pilot's half-width here is the stage's reported one, so the two cannot drift apart unnoticed.

Plateau. With the subjects fixed, more composites only shrink var_composite / N: the half-width
falls towards the floor set by var_a / n_a + var_b / n_b. ``plateau_composites_per_subject`` is
the fewest composites per subject whose half-width is within ``GAIN`` (5%) of that floor: more
composites of the same faces buy less than 5%. It does not depend on the number of subjects, so
the plan takes the fewest subjects per group that reach the target at the plateau, then the
fewest composites per subject (even: pairings are shown twice) that still reach it. Plans count
composites shown; the variance counts decisive ones (the pilot's share of them).

Limits. The components are estimates: their relative error is about sqrt(2 / G*) for G*
effective subjects, so a plan from a pilot with few effective subjects is as uncertain
(``benchmarks/validate_planning.py`` shows it), and the central plan reaches its target about
half the time. :func:`assured` plans from one-sided upper confidence bounds of the subject
components instead, each on its Satterthwaite degrees of freedom (few where few faces carry the
pilot or composite noise swamps the subject terms), and from the ratio's one-sided bound towards
1/2 (every component scales with p(1 - p)), to reach it with a stated probability. A pilot
whose faces are mostly in a single pairing cannot tell subject from composite variance and gets
no plan (``MIN_REPEATED``), nor does one where every decisive composite went one way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from cropaudit.errors import UserError
from cropaudit.schemas.estimates import KEY_FIELDS
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.stats import effective

#: Pages and findings plan from survival tables up to this many rows: planning re-reads the
#: rows (8 s for 200,000 rows on the loaded 2-core machine), which the stage does not keep.
PLAN_ROWS = 250_000

#: A plateau is where more composites per subject shrink the half-width by less than this share.
GAIN = 0.05
#: Faces per side that must appear in two or more pairings: only they tell a subject's effect
#: from its composites' noise (below this, a pilot is too small to plan from).
MIN_REPEATED = 5
#: Search limits of the plan (subjects per group; composites per subject).
MAX_SUBJECTS = 1_000_000
MAX_COMPOSITES_PER_SUBJECT = 100_000


@dataclass(frozen=True)
class Components:
    """A pilot's variance components of the survival ratio (probability scale; module
    docstring) and its size: subjects per side and decisive composites."""

    ratio: float
    var_a: float
    var_b: float
    var_composite: float
    subjects_a: int
    subjects_b: int
    composites: int
    #: Sums of squared decisive composites per subject, side a and side b (S_a, S_b).
    sq_sum_a: float
    sq_sum_b: float
    #: The pilot's effective number of subjects G* (:func:`effective.effective_subjects`).
    effective_subjects: float
    #: The pilot's t degrees of freedom (:func:`effective.cluster_df`), as the stage has them.
    df: float
    #: The pilot's cluster-robust variance of the ratio, as the stage computes it.
    variance: float = math.nan
    #: Share of composites shown that were decisive (ties and background are not in the ratio):
    #: plans count composites shown, the variance counts decisive ones.
    decisive_share: float = 1.0
    #: Why no plan can be made from it ("" when one can).
    problem: str = ""
    #: Degrees of freedom of ``var_a`` and ``var_b`` (their sampling error; :func:`assured`).
    df_a: float = math.nan
    df_b: float = math.nan
    #: The subjects' share of the pilot's variance, as the stage has it
    #: (:func:`effective.subject_share`).
    subject_share: float = 0.0

    @property
    def var_subjects(self) -> float:
        return self.var_a + self.var_b


def pilot_components(
    a_subject: np.ndarray, b_subject: np.ndarray, a_won: np.ndarray, shown: int | None = None
) -> Components:
    """Components of the decisive composites of one pair (subject ids of face a and face b,
    whether a survived) out of ``shown`` composites (default: all decisive). A subject seen on
    both sides counts on the side where it has more composites; composites of one subject
    against itself add to that subject but form no cell, as in the stage. A pilot without
    variance or too small to split it gets ``problem`` and NaN components."""
    a_won = np.asarray(a_won, dtype=bool)
    n = len(a_won)
    if n == 0:
        return _empty("no decisive composite")
    ids, codes = np.unique(
        np.concatenate(
            [np.asarray(a_subject, dtype=object), np.asarray(b_subject, dtype=object)]
        ).astype(str),
        return_inverse=True,
    )
    ca, cb = codes[:n], codes[n:]
    same = ca == cb
    ratio = float(a_won.mean())
    r = a_won - ratio
    count = np.bincount(ca, minlength=len(ids)) + np.bincount(cb[~same], minlength=len(ids))
    total = np.bincount(ca, r, len(ids)) + np.bincount(cb[~same], r[~same], len(ids))
    on_a = np.bincount(ca, minlength=len(ids)) >= np.bincount(cb, minlength=len(ids))
    used = count > 0
    side_a, side_b = used & on_a, used & ~on_a
    lo, hi = np.minimum(ca, cb)[~same], np.maximum(ca, cb)[~same]
    keys, cell, k = np.unique(lo * len(ids) + hi, return_inverse=True, return_counts=True)
    cell_sum = np.bincount(cell, r[~same])
    q_a, q_b = float((total[side_a] ** 2).sum()), float((total[side_b] ** 2).sum())
    q_c, big_k = float((cell_sum**2).sum()), float((k.astype(float) ** 2).sum())
    s_a, s_b = float((count[side_a] ** 2.0).sum()), float((count[side_b] ** 2.0).sum())
    # The stage's small-sample factor (effective.small_sample_factor: centring on a mean the
    # big subjects dominate), and the cells floor's own.
    clusters = effective.ClusterSizes.of(count, side_a, keys // len(ids), keys % len(ids), k)
    scale = effective.small_sample_factor(q_a, q_b, q_c, clusters, float(n))
    scale_cells = 1.0 - min(big_k / float(n) ** 2, 0.5)  # the cells floor's own factor
    sizes = dict(
        ratio=ratio, subjects_a=int(side_a.sum()), subjects_b=int(side_b.sum()), composites=n,
        sq_sum_a=s_a, sq_sum_b=s_b, effective_subjects=effective.effective_subjects(count[used]),
        df=effective.cluster_df(count[side_a], count[side_b]),
        variance=max((q_a + q_b - q_c) / scale, q_c / scale_cells, 0.0) / float(n) ** 2,
        decisive_share=n / shown if shown else 1.0,
    )  # fmt: skip
    if ratio in (0.0, 1.0):
        problem = "every decisive composite went one way: the pilot shows no variance to plan from"
        return Components(var_a=math.nan, var_b=math.nan, var_composite=math.nan, problem=problem,
                          **sizes)  # fmt: skip
    cells_per_subject = np.bincount(np.r_[keys // len(ids), keys % len(ids)], minlength=len(ids))
    repeated = [int((cells_per_subject[side] > 1).sum()) for side in (side_a, side_b)]
    if min(repeated) < MIN_REPEATED:
        problem = (
            f"too small to plan from: {min(repeated)} faces of a side in two or more pairings "
            f"(needs {MIN_REPEATED}) to tell subject from composite variance"
        )
        return Components(var_a=math.nan, var_b=math.nan, var_composite=math.nan, problem=problem,
                          **sizes)  # fmt: skip
    raw = effective.components(q_a, q_b, q_c, clusters, n)
    share = effective.share_of(raw[0] * s_a, raw[1] * s_b, raw[2] * float(n))
    var_a, var_b, var_c = (v / scale for v in raw)
    # A composite's outcome is Bernoulli: its variance is at most p(1 - p). The bound binds
    # only where cells are large (a few popular faces paired again and again), so that cell
    # sums say little about the composite level and noise in the subject terms lands there.
    var_c = min(var_c, ratio * (1.0 - ratio))
    # Degrees of freedom of each subject component (Satterthwaite): var (S - K) is estimated by
    # q_side - q_c, sums over the side's subjects and over cells whose terms have variance
    # about 2 w^2, w their expected squares (var n_s^2 + var_c n_s; (var_a + var_b) k_c^2 +
    # var_c k_c): few faces, or composite noise that swamps the subject terms, leave few.
    cell_w = (var_a + var_b) * k.astype(float) ** 2 + var_c * k
    dfs = [
        _component_df(count[side].astype(float), v, var_c, cell_w, big_k)
        for side, v in ((side_a, var_a), (side_b, var_b))
    ]
    return Components(var_a=var_a, var_b=var_b, var_composite=var_c, **sizes, df_a=dfs[0],
                      df_b=dfs[1], subject_share=share)  # fmt: skip


def _component_df(totals: np.ndarray, var: float, var_c: float, cell_w: np.ndarray,
                  big_k: float) -> float:  # fmt: skip
    w = var * totals**2 + var_c * totals
    spread = float((w**2).sum() + (cell_w**2).sum())
    return (var * (float((totals**2).sum()) - big_k)) ** 2 / spread if spread > 0 else math.nan


def assured(c: Components, assurance: float) -> Components:
    """``c`` with each subject component at its one-sided ``assurance`` upper confidence bound,
    var df / chi2_{1 - assurance}(df) (df: :attr:`Components.df_a`, ``df_b``): a plan from it
    reaches its target with about that probability over the pilot's sampling error (checked
    by ``benchmarks/validate_planning.py``). The composite level, estimated from every
    composite, is not bounded; every component is rescaled to the ratio's own one-sided bound
    towards 1/2 (p(1 - p) for the composite level, its square for the subject terms)."""
    from scipy.stats import chi2, norm

    def bound(var: float, df: float) -> float:
        if not (var > 0 and df > 0):
            return var
        quantile = float(chi2.ppf(1.0 - assurance, df))
        return var * df / quantile if quantile > 0 else math.inf  # no bound: no assured plan

    # The ratio itself: every component scales with p(1 - p) (the subject terms, effects on
    # the logit scale, with its square), so the ratio moves towards 1/2 by its one-sided
    # bound (the pilot's variance), where a design needs the most.
    p = c.ratio
    shift = float(norm.ppf(assurance)) * math.sqrt(c.variance) if c.variance > 0 else 0.0
    moved = p + math.copysign(min(shift, abs(0.5 - p)), 0.5 - p)
    scale = moved * (1.0 - moved) / (p * (1.0 - p)) if 0.0 < p < 1.0 else 1.0
    return replace(
        c, ratio=moved, var_a=bound(c.var_a, c.df_a) * scale**2,
        var_b=bound(c.var_b, c.df_b) * scale**2, var_composite=c.var_composite * scale,
    )  # fmt: skip


def _empty(problem: str) -> Components:
    nan = math.nan
    return Components(nan, nan, nan, nan, 0, 0, 0, 0.0, 0.0, nan, nan, nan, 0.0, problem)


def reported_half_width(
    p: float, var: float, n: float, subject_sq_sum: float, df: float, level: float,
    share: float = 0.0,
) -> float:  # fmt: skip
    """Half-width of the reported interval of a proportion ``p`` with cluster-robust variance
    ``var`` over ``n`` decisive composites (``subject_sq_sum``: sum of squared composites per
    subject; ``df``: the t quantile's degrees of freedom, :func:`effective.cluster_df`;
    ``share``: the subjects' share of ``var``, :func:`effective.subject_share`), composed from
    :mod:`cropaudit.stats.effective` exactly as the estimates are."""
    n_eff = effective.effective_n(p, var, n, subject_sq_sum)
    lo, hi = effective.score_interval(p, n_eff, level, df, n, share)
    return (hi - lo) / 2.0


def pilot_variance(c: Components) -> float:
    """The variance the components predict at the pilot's own design: the pilot's
    cluster-robust variance, unless a component was bounded (module docstring)."""
    n = float(c.composites)
    return (c.var_a * c.sq_sum_a + c.var_b * c.sq_sum_b + c.var_composite * n) / n**2


def pilot_half_width(c: Components, level: float = 0.95) -> float:
    """The pilot's own reported half-width (its cluster-robust variance through the interval
    functions)."""
    return reported_half_width(c.ratio, c.variance, c.composites, c.sq_sum_a + c.sq_sum_b,
                               c.df, level, c.subject_share)  # fmt: skip


def half_width(
    c: Components, subjects_a: int, subjects_b: int, composites: float, level: float = 0.95
) -> float:
    """Predicted half-width of the reported ratio interval for ``subjects_a`` x ``subjects_b``
    subjects and ``composites`` decisive composites drawn as the pipeline draws them
    (:func:`drawn_square_sum`; ``math.inf``: the floor those subjects allow)."""
    var = c.var_a / subjects_a + c.var_b / subjects_b
    if math.isinf(composites):
        if var <= 0:
            return 0.0
        composites = 1e18
    n = float(composites)
    sq_a, sq_b = drawn_square_sum(n, subjects_a), drawn_square_sum(n, subjects_b)
    parts = (c.var_a * sq_a, c.var_b * sq_b, c.var_composite * n)
    df = effective.satterthwaite_df([(n, sq_a), (n, sq_b)])  # effective.cluster_df, expected
    share = effective.share_of(*parts)
    return reported_half_width(c.ratio, sum(parts) / n**2, n, sq_a + sq_b, df, level, share)


def drawn_square_sum(composites: float, subjects: int) -> float:
    """Expected sum over one side's subjects of n_s^2 when ``composites`` come in
    samples of two (both orders) whose face is drawn uniformly with replacement, as
    :mod:`cropaudit.transforms.design` draws them: n_s = 2 X_s, X_s ~ Poisson(samples /
    subjects). The draws' unequal counts add 2 N (1 - 1/n) to N^2 / n, the value for equal
    counts: a subject term var / N beside var / n."""
    lam = composites / 2.0 / subjects
    return 4.0 * subjects * (lam * lam + lam * (1.0 - 1.0 / subjects))


def balanced_half_width(c: Components, subjects: int, per_subject: float, level: float) -> float:
    """Half-width for ``subjects`` per group, each face shown in ``per_subject`` composites (of
    which the pilot's share are decisive)."""
    return half_width(c, subjects, subjects, subjects * per_subject * c.decisive_share, level)


def _first(lo: int, hi: int, ok) -> int | None:
    """Smallest integer in [lo, hi] where the monotone predicate ``ok`` holds (None: none)."""
    if not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if not ok(mid) else (lo, mid)
    return lo


def plateau_composites_per_subject(c: Components, subjects: int, level: float) -> int:
    """Fewest composites per subject (even) whose half-width is within ``GAIN`` of the floor
    for ``subjects`` per group (``MAX_COMPOSITES_PER_SUBJECT`` when composites never stop
    helping, i.e. no subject variance)."""
    floor = balanced_half_width(c, subjects, math.inf, level)
    limit = MAX_COMPOSITES_PER_SUBJECT // 2
    found = _first(
        1, limit, lambda k: balanced_half_width(c, subjects, 2 * k, level) <= (1 + GAIN) * floor
    )
    return 2 * (found or limit)


@dataclass(frozen=True)
class Plan:
    """One pair's plan for ``target`` (see :func:`plan_pair`); NaN / None where not defined."""

    target: float
    pilot_half_width: float
    subjects_per_group: int | None
    composites_per_subject: int | None
    total_composites: int | None
    predicted_half_width: float
    plateau_composites_per_subject: int | None
    floor_half_width: float
    status: str


def plan_pair(c: Components, target: float, level: float = 0.95) -> Plan:
    """The plan of one pair: the pilot's predicted (= reported) half-width; the fewest subjects
    per group reaching ``target`` at the plateau and the fewest composites per subject that
    then reach it; the floor (infinitely many composites) for the pilot's own subjects, and
    whether ``target`` is reachable with them (with how many composites)."""
    nan = math.nan
    pilot = pilot_half_width(c, level) if c.composites else nan
    if c.problem:
        return Plan(target, pilot, None, None, None, nan, None, nan, c.problem)
    floor = half_width(c, c.subjects_a, c.subjects_b, math.inf, level)
    pilot_n = max(2, round((c.subjects_a + c.subjects_b) / 2))
    m_star = plateau_composites_per_subject(c, pilot_n, level)
    # No subject variance seen: composites never plateau, and the pilot says nothing about
    # fewer faces than it had, so the plan keeps its subjects.
    fewest = pilot_n if c.var_subjects <= 0 else 2
    n = _first(fewest, MAX_SUBJECTS, lambda s: balanced_half_width(c, s, m_star, level) <= target)
    if n is None:
        status = f"unreachable: more than {MAX_SUBJECTS} subjects per group"
        return Plan(target, pilot, None, None, None, nan, m_star, floor, status)
    m = composites_for(c, n, target, level, m_star) or m_star
    if floor <= target:
        limit = MAX_COMPOSITES_PER_SUBJECT * max(c.subjects_a, c.subjects_b)
        shown = _first(
            2, limit, lambda k: half_width(c, c.subjects_a, c.subjects_b, k * c.decisive_share,
                                           level) <= target
        )  # fmt: skip
        status = f"reachable with the pilot's subjects: {shown} composites in all"
    else:
        status = f"unreachable with these subjects: composites stop at {floor:.4f}"
    predicted = balanced_half_width(c, n, m, level)
    return Plan(target, pilot, n, m, n * m, predicted, m_star, floor, status)


def composites_for(
    c: Components, subjects: int, target: float, level: float,
    limit: int = MAX_COMPOSITES_PER_SUBJECT,
) -> int | None:  # fmt: skip
    """Fewest composites per subject (even, at most ``limit``) that bring ``subjects`` per group
    to ``target``; None when even ``limit`` does not."""
    k = _first(1, limit // 2, lambda k: balanced_half_width(c, subjects, 2 * k, level) <= target)
    return None if k is None else 2 * k


#: Default probability that an assured plan reaches its target (:func:`assured`).
ASSURANCE = 0.8


def plan_table(
    pairs: pd.DataFrame, target: float, level: float = 0.95, assurance: float = ASSURANCE
) -> pd.DataFrame:
    """One plan row per row of ``pairs`` (key columns plus a ``components`` column of
    :class:`Components`): the keys, the pilot's size and components, then the plan from the
    components as estimated (reaches the target about half the time) and the ``assured`` plan
    from their upper bounds (reaches it with probability ``assurance``)."""
    rows = []
    for rec in pairs.to_dict("records"):
        c: Components = rec.pop("components")
        p = plan_pair(c, target, level)
        sure = plan_pair(assured(c, assurance), target, level) if not c.problem else p
        rows.append(
            {
                **rec,
                "pilot_subjects_a": c.subjects_a,
                "pilot_subjects_b": c.subjects_b,
                "pilot_composites": c.composites,
                "pilot_effective_subjects": c.effective_subjects,
                "ratio": c.ratio,
                "var_a": c.var_a,
                "var_b": c.var_b,
                "var_composite": c.var_composite,
                "level": level,
                "target_half_width": target,
                "pilot_half_width": p.pilot_half_width,
                "subjects_per_group": p.subjects_per_group,
                "composites_per_subject": p.composites_per_subject,
                "total_composites": p.total_composites,
                "predicted_half_width": p.predicted_half_width,
                "plateau_composites_per_subject": p.plateau_composites_per_subject,
                "floor_half_width": p.floor_half_width,
                "status": p.status,
                "assurance": assurance,
                "assured_subjects_per_group": sure.subjects_per_group,
                "assured_composites_per_subject": sure.composites_per_subject,
                "assured_total_composites": sure.total_composites,
            }
        )
    out = pd.DataFrame(rows)
    ints = ("subjects_per_group", "composites_per_subject", "total_composites",
            "plateau_composites_per_subject", "assured_subjects_per_group",
            "assured_composites_per_subject", "assured_total_composites")  # fmt: skip
    return out.astype({c: "Int64" for c in ints if c in out})


#: Target half-width of the report's planning section (and of ``cropaudit plan``'s default).
DEFAULT_HALF_WIDTH = 0.02


def survival_components(table: pa.Table, criteria: Sequence[str] | None = None) -> pd.DataFrame:
    """Per pair stratum of a survival table: the key fields and its :class:`Components`
    (column ``components``), plus the provenance lists (single-image rows have no pair)."""
    from cropaudit.stats.run_estimates import PROVENANCE, SIDES, criterion_rows

    wanted = {*KEY_FIELDS, *SIDES, *PROVENANCE, "point_winner", "crops"}
    df = table.select([c for c in table.column_names if c in wanted]).to_pandas()
    if "variant" not in df:  # survival/v1, before sweeps
        df["variant"] = BASE_VARIANT
    rows = criterion_rows(df[df["design"] != "single"]).assign(comparison="pair")
    if criteria:
        rows = rows[rows["criterion"].isin(list(criteria))]
    out = []
    for key, batch in rows.groupby(list(KEY_FIELDS), sort=True, dropna=False):
        decisive = batch["outcome"].isin(["a", "b"]).to_numpy()
        a = batch["a_subject_id"].to_numpy(dtype=object)[decisive]
        b = batch["b_subject_id"].to_numpy(dtype=object)[decisive]
        won = (batch["outcome"] == "a").to_numpy()[decisive]
        comp = pilot_components(a, b, won, shown=len(batch))
        prov = {listed: sorted({str(v) for v in batch[c]}) for c, listed in PROVENANCE.items()}
        out.append({**dict(zip(KEY_FIELDS, key, strict=True)), "components": comp, **prov})
    return pd.DataFrame(out, columns=None if out else [*KEY_FIELDS, "components"])


def plan_survival(
    table: pa.Table,
    half_width: float,
    level: float = 0.95,
    criteria: Sequence[str] | None = None,
    assurance: float = ASSURANCE,
) -> pd.DataFrame:
    """The planning table of a survival table, sorted by key (reruns give identical tables)."""
    if not (0.0 < half_width < 0.5):
        raise UserError("--half-width must be between 0 and 0.5 (the ratio lies in [0, 1])")
    if not 0.0 < level < 1.0:
        raise UserError("--level must be between 0 and 1")
    if not 0.5 <= assurance < 1.0:
        raise UserError("--assurance must be at least 0.5 and below 1")
    pairs = survival_components(table, criteria)
    if pairs.empty:
        what = f" for criteria {', '.join(criteria)}" if criteria else ""
        raise UserError(f"the survival table has no pair comparison to plan{what}")
    return plan_table(pairs, half_width, level, assurance).sort_values(
        list(KEY_FIELDS), ignore_index=True
    )
