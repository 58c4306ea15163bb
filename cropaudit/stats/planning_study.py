"""Simulation check of planning (:mod:`cropaudit.stats.planning`): does the design a pilot
recommends reach the target half-width of the reported interval?

For a generative design of :mod:`cropaudit.stats.simulation` (the *pilot*, which may be
unbalanced, heavy-tailed, popularity-sampled ...): simulate one pilot experiment, take its
variance components, plan for ``target``, then simulate the recommended design (the same
population of faces and cropper: every effect and rate of the pilot design, ``subjects`` per
group, ``composites`` per face on average, faces drawn with replacement per counterbalanced
sample as the pipeline draws them) ``experiments`` times and analyse each with the statistics
stage's own :func:`estimate_stratum`. The check is the median of the reported half-widths
against the target.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cropaudit.stats import planning
from cropaudit.stats.bootstrap import SufficientStats
from cropaudit.stats.simulation import PoissonWeights, SimulationDesign, simulate_experiment
from cropaudit.stats.stratum import estimate_stratum

#: Bootstrap replicates per simulated experiment: the reported interval does not use them.
_REPLICATES = 2


def components_of(data: dict) -> planning.Components:
    """Components of one simulated experiment (columns of :func:`simulate_experiment`)."""
    outcome = np.asarray(data["outcome"])
    decisive = outcome < 2
    return planning.pilot_components(
        data["a_subject"][decisive], data["b_subject"][decisive], outcome[decisive] == 0,
        shown=len(outcome),
    )  # fmt: skip


def recommended_design(pilot: SimulationDesign, subjects: int, composites: int) -> SimulationDesign:
    """The pilot's population with ``subjects`` per group, each face in ``composites``
    composites on average, drawn with replacement as the pipeline draws faces (what a plan
    prescribes)."""
    return dataclasses.replace(
        pilot, subjects_per_group=subjects, composites_per_subject=composites, subjects_a=None,
        subjects_b=None, pairings=None, sampling="random",
    )  # fmt: skip


def reported_half_widths(
    design: SimulationDesign, experiments: int, level: float, seed: int
) -> np.ndarray:
    """Half-width of the reported ratio interval of ``experiments`` simulated experiments."""
    rng = np.random.default_rng(seed)
    weights = PoissonWeights(_REPLICATES, np.random.default_rng([seed, 1]))
    out = np.empty(experiments)
    for e in range(experiments):
        stats = SufficientStats(_REPLICATES)
        stats.add_batch(**simulate_experiment(design, rng, tag=f"p{seed}e{e}"), weights=weights)
        est = estimate_stratum(stats, level)
        out[e] = (est["ratio_high"] - est["ratio_low"]) / 2.0
    return out


def scaled(design: SimulationDesign, factor: int) -> SimulationDesign:
    """``design`` with ``factor`` times the subjects and pairings (same composites per face):
    a large pilot, whose components are close to the population's."""
    return dataclasses.replace(
        design, subjects_per_group=design.subjects_per_group * factor,
        subjects_a=design.n_a * factor, subjects_b=design.n_b * factor,
        pairings=design.n_pairings * factor,
    )  # fmt: skip


def simulate_pilot(pilot: SimulationDesign, seed: int) -> planning.Components:
    """Components of one simulated pilot experiment (seeded)."""
    return components_of(simulate_experiment(pilot, np.random.default_rng(seed), "pilot"))


def simulated(design: SimulationDesign, target: float, experiments: int, level: float,
              seed: int) -> dict:  # fmt: skip
    """The median reported half-width of ``experiments`` runs of ``design`` and its ratio to
    ``target``."""
    median = float(np.median(reported_half_widths(design, experiments, level, seed)))
    return {"median_half_width": median, "ratio_to_target": median / target}


def check_plan(
    pilot: SimulationDesign, target: float, experiments: int, level: float = 0.95, seed: int = 0,
    assurance: float | None = None,
) -> dict:  # fmt: skip
    """Plan from one simulated pilot and simulate the plan: the pilot's components, the plan,
    and the median reported half-width of the recommended design with its ratio to the
    target. ``assurance``: plan from the components' upper bounds (:func:`planning.assured`)."""
    c = simulate_pilot(pilot, seed)
    plan = planning.plan_pair(planning.assured(c, assurance) if assurance else c, target, level)
    row = {
        "pilot_ratio": c.ratio,
        "var_a": c.var_a,
        "var_b": c.var_b,
        "var_composite": c.var_composite,
        "pilot_half_width": plan.pilot_half_width,
        "subjects_per_group": plan.subjects_per_group,
        "composites_per_subject": plan.composites_per_subject,
        "plateau": plan.plateau_composites_per_subject,
        "predicted": plan.predicted_half_width,
        "status": plan.status,
    }
    if plan.subjects_per_group is None:
        return {**row, "median_half_width": np.nan, "ratio_to_target": np.nan}
    design = recommended_design(pilot, plan.subjects_per_group, plan.composites_per_subject)
    return {**row, **simulated(design, target, experiments, level, seed + 1)}


def check_naive(
    pilot: SimulationDesign, target: float, experiments: int, level: float = 0.95, seed: int = 0,
    subjects: int | None = None,
) -> dict:  # fmt: skip
    """The wrong plan, for contrast: ``subjects`` per group (default: the pilot's, the mean of
    its sides) and as many composites as ``target`` needs if composites were independent (no
    subject variance: the plain Wilson interval), simulated like :func:`check_plan`."""
    c = simulate_pilot(pilot, seed)
    subjects = subjects or max(2, round((c.subjects_a + c.subjects_b) / 2))
    naive = dataclasses.replace(c, var_a=0.0, var_b=0.0, var_composite=c.ratio * (1 - c.ratio))
    m = None if c.problem else planning.composites_for(naive, subjects, target, level)
    if m is None:
        return {"composites_per_subject": None, "ratio_to_target": np.nan}
    design = recommended_design(pilot, subjects, m)
    return {"composites_per_subject": m, **simulated(design, target, experiments, level, seed + 1)}
