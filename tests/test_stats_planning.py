"""Planning (``cropaudit plan``): the components reproduce the reported interval, recommended
designs reach the target in simulation (where treating composites as independent does not),
the plateau, and the command on run and statistics folders."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropaudit.cli import main
from cropaudit.pipelines.stats_pipeline import run_stats
from cropaudit.rundir.run_dir import write_run_dir
from cropaudit.stats import planning
from cropaudit.stats.bootstrap import SufficientStats
from cropaudit.stats.planning_study import (
    check_naive,
    check_plan,
    components_of,
    recommended_design,
    simulate_pilot,
    simulated,
)
from cropaudit.stats.simulation import (
    DESIGNS,
    PoissonWeights,
    SimulationDesign,
    simulate_experiment,
)
from cropaudit.stats.stratum import estimate_stratum
from cropaudit.stats.synthetic_tables import synthetic_survival


@pytest.mark.parametrize(
    "name", ["balanced_50x50", "unbalanced_10x60", "popular_few", "position_by_subject"]
)
def test_components_reproduce_the_reported_interval(name):
    """The pilot's variance is the stage's, the components split it three ways (they predict
    it back at the pilot's design), and the half-width goes through the same interval functions
    as the reported one (a change of method in the stage shows here)."""
    data = simulate_experiment(DESIGNS[name], np.random.default_rng(11), "t")
    stats = SufficientStats(2)
    stats.add_batch(**data, weights=PoissonWeights(2, np.random.default_rng(0)))
    est = estimate_stratum(stats)
    c = components_of(data)
    assert not c.problem
    assert c.var_a > 0 and c.var_b > 0 and c.var_composite > 0
    assert c.composites == est["decisive"] and c.ratio == pytest.approx(est["ratio"])
    reported = (est["ratio_high"] - est["ratio_low"]) / 2.0
    assert planning.pilot_half_width(c) == pytest.approx(reported, rel=1e-9)
    assert c.variance == pytest.approx(est["ratio_cluster_se"] ** 2, rel=1e-9)
    if name != "popular_few":  # there the Bernoulli bound on the composite level binds
        assert planning.pilot_variance(c) == pytest.approx(c.variance, rel=1e-9)


def test_components_recover_the_generating_split():
    """A large pilot's components match the simulated effects: without subject effects (or
    position effect) they are 0, 0 and p(1 - p); with equal subject sd on both sides the two
    subject components are equal."""
    design = SimulationDesign(subjects_a=400, subjects_b=400, pairings=8000, subject_sd=1.0)
    one_sided = dataclasses.replace(design, subject_sd=0.0, position_effect=0.0)
    both = components_of(simulate_experiment(design, np.random.default_rng(1), "x"))
    none = components_of(simulate_experiment(one_sided, np.random.default_rng(1), "x"))
    assert none.var_a < 0.002 and none.var_b < 0.002
    assert none.var_composite == pytest.approx(none.ratio * (1 - none.ratio), rel=0.05)
    assert both.var_a == pytest.approx(both.var_b, rel=0.35)
    assert both.var_a > 0.02


def _components(**kw) -> planning.Components:
    base = dict(ratio=0.6, var_a=0.03, var_b=0.03, var_composite=0.15, subjects_a=40,
                subjects_b=40, composites=800, sq_sum_a=40 * 20.0**2, sq_sum_b=40 * 20.0**2,
                effective_subjects=80.0, df=78.0)  # fmt: skip
    return planning.Components(**{**base, **kw})


def test_plateau_and_floor():
    c = _components()
    floor = planning.half_width(c, 40, 40, math.inf)
    widths = [planning.balanced_half_width(c, 40, m, 0.95) for m in (2, 10, 50, 500, 5000)]
    assert all(a > b for a, b in zip(widths, widths[1:], strict=False))
    assert widths[-1] > floor > 0
    m = planning.plateau_composites_per_subject(c, 40, 0.95)
    assert planning.balanced_half_width(c, 40, m, 0.95) <= 1.05 * floor
    assert planning.balanced_half_width(c, 40, m - 2, 0.95) > 1.05 * floor
    # With twice the composite noise the plateau comes later; without subject variance never.
    assert planning.plateau_composites_per_subject(_components(var_composite=0.3), 40, 0.95) > m
    none = _components(var_a=0.0, var_b=0.0)
    assert planning.plateau_composites_per_subject(none, 40, 0.95) == 100_000


def test_plan_reachable_and_unreachable():
    c = _components()
    floor = planning.half_width(c, 40, 40, math.inf)
    above = planning.plan_pair(c, floor * 1.2)
    assert above.status.startswith("reachable with the pilot's subjects")
    below = planning.plan_pair(c, floor * 0.8)
    assert below.status.startswith("unreachable with these subjects")
    assert below.subjects_per_group > 40  # more faces, not more composites
    for plan in (above, below):
        assert plan.predicted_half_width <= plan.target < plan.predicted_half_width * 1.1
        assert plan.composites_per_subject <= plan.plateau_composites_per_subject
        assert plan.total_composites == plan.subjects_per_group * plan.composites_per_subject


def test_pilots_too_small_or_one_sided_give_reasons():
    one_way = planning.pilot_components(
        [f"a{i % 10}" for i in range(16)], [f"b{i % 8}" for i in range(16)], np.ones(16, bool)
    )
    assert "went one way" in one_way.problem
    tiny = components_of(simulate_experiment(DESIGNS["tiny_16"], np.random.default_rng(0), "x"))
    assert "too small to plan from" in tiny.problem
    plan = planning.plan_pair(tiny, 0.05)
    assert plan.subjects_per_group is None and plan.status == tiny.problem


def test_recommended_designs_reach_the_target_where_independence_does_not():
    """The fast version of benchmarks/validate_planning.py: from a balanced and an unbalanced
    heavy-tailed pilot, plan for a half-width of 0.05 and simulate 30 experiments of the
    recommended design: the median reported half-width is within 10% of the target. Planning
    as if composites were independent (the plain Wilson interval) for a face set of 50 per
    group misses by far more, as the planner's floor for those faces says it must; so does the
    planner itself when fed components without subject variance."""
    target = 0.05
    pilots = {
        "balanced": SimulationDesign(subjects_per_group=150, composites_per_subject=20),
        "unbalanced_t3": SimulationDesign(
            subjects_a=80, subjects_b=320, pairings=3200, subject_tails="t3"
        ),
    }
    for name, pilot in pilots.items():
        row = check_plan(pilot, target, experiments=30, seed=5)
        assert 0.9 <= row["ratio_to_target"] <= 1.1, (name, row)
        c = simulate_pilot(pilot, 5)
        assert planning.half_width(c, 50, 50, math.inf) > target  # unreachable with 50 faces
        naive = check_naive(pilot, target, experiments=30, seed=5, subjects=50)
        assert naive["ratio_to_target"] > 1.3, (name, naive)
        # The same planner fed the wrong formula (no subject variance) keeps the pilot's faces
        # and too few composites: outside the band.
        wrong = dataclasses.replace(c, var_a=0.0, var_b=0.0, var_composite=c.ratio * (1 - c.ratio))
        plan = planning.plan_pair(wrong, target)
        design = recommended_design(pilot, plan.subjects_per_group, plan.composites_per_subject)
        assert simulated(design, target, 30, 0.95, seed=6)["ratio_to_target"] > 1.2, name


# -- the command ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pilot_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("plan")
    tables = [synthetic_survival(3000, groups=("A", "B", "C"), subjects_per_group=40, seed=s)
              for s in (1, 2)]  # fmt: skip
    run = write_run_dir(tables, base / "run")
    run_stats([str(run)], str(base / "stats"), replicates=20)
    return base


def test_plan_command_on_run_and_stats_folders(pilot_run, tmp_path, capsys):
    run, stats = pilot_run / "run", pilot_run / "stats"
    out = tmp_path / "plan.csv"
    assert main(["plan", str(run), "--half-width", "0.05", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "subj/group" in printed and "floor hw (pilot subj)" in printed
    table = pd.read_csv(out)
    # Pairs only (A-B, A-C, B-C) per criterion: no group_vs_rest rows.
    assert set(table["comparison"]) == {"pair"}
    assert len(table) == 3 * table["criterion"].nunique()
    assert (table["predicted_half_width"] <= 0.05).all()
    assert (table["subjects_per_group"] * table["composites_per_subject"]
            == table["total_composites"]).all()  # fmt: skip
    # The pilot's half-width is the reported one of the statistics stage.
    est = pd.read_parquet(stats / "estimates")
    est = est[est.comparison == "pair"].set_index(["criterion", "group_a", "group_b"])
    reported = (est["ratio_high"] - est["ratio_low"]) / 2
    got = table.set_index(["criterion", "group_a", "group_b"])["pilot_half_width"]
    assert np.allclose(got.sort_index(), reported.loc[got.sort_index().index], rtol=1e-5)

    # From the statistics folder: written beside its estimates, same plan; rerun refused
    # without --overwrite, identical with it.
    assert main(["plan", str(stats), "--half-width", "0.05"]) == 0
    written = stats / "plan.parquet"
    from_stats = pd.read_parquet(written)
    assert from_stats["config_hashes"].map(len).min() >= 1  # provenance travels
    # Provenance: what was read, byte for byte, and no table taken on trust.
    files = sorted((run / "survival").glob("*.parquet"))
    assert from_stats["survival_files"].iloc[0].tolist() == [str(f) for f in files]
    digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert all(list(v) == digests for v in from_stats["survival_sha256"])
    assert not from_stats["trust_modified"].any() and (from_stats["unverified_inputs"] == "").all()
    provenance = {"source", "config_hashes", "survival_seeds", "versions", "survival_files",
                  "survival_sha256", "trust_modified", "unverified_inputs"}  # fmt: skip
    cols = [c for c in table.columns if c not in provenance]
    pd.testing.assert_frame_equal(
        from_stats[cols].reset_index(drop=True),
        table[cols].astype(from_stats[cols].dtypes.to_dict()),
        check_dtype=False,
    )
    first = written.read_bytes()
    assert main(["plan", str(stats), "--half-width", "0.05"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["plan", str(stats), "--half-width", "0.05", "--overwrite"]) == 0
    assert written.read_bytes() == first


def test_plan_command_on_a_demo_folder_and_a_survival_folder(pilot_run, tmp_path):
    """A demo folder (run/ and stats/) and a run's survival/ folder give the run's plan."""
    outs = [tmp_path / "demo.parquet", tmp_path / "survival.parquet", tmp_path / "run.parquet"]
    pilots = [pilot_run, pilot_run / "run" / "survival", pilot_run / "run"]
    for pilot, out in zip(pilots, outs, strict=True):
        assert main(["plan", str(pilot), "--half-width", "0.04", "--out", str(out)]) == 0
    plans = [pd.read_parquet(out).drop(columns="source") for out in outs]
    assert len(plans[0]) == 9
    for other in plans[1:]:
        pd.testing.assert_frame_equal(plans[0], other)


def test_plan_of_a_modified_run_records_trust_modified(pilot_run, tmp_path, capsys):
    """A survival table changed after its run is refused, and planned with --trust-modified
    only with the flag and what differs written on every row."""
    run = tmp_path / "run"
    shutil.copytree(pilot_run / "run", run)
    part = sorted((run / "survival").glob("*.parquet"))[0]
    table = pq.read_table(part)
    pq.write_table(table.slice(0, table.num_rows - 10), part)  # ten rows gone
    out = tmp_path / "plan.parquet"
    assert main(["plan", str(run), "--half-width", "0.05", "--out", str(out)]) == 2
    assert "--trust-modified" in capsys.readouterr().err
    args = ["plan", str(run), "--half-width", "0.05", "--out", str(out), "--trust-modified"]
    assert main(args) == 0
    plan = pd.read_parquet(out)
    assert plan["trust_modified"].all()
    differences = json.loads(plan["unverified_inputs"].iloc[0])
    assert list(differences) == [str(run)] and differences[str(run)]
    assert plan["survival_sha256"].iloc[0][0] == hashlib.sha256(part.read_bytes()).hexdigest()


def test_assured_plans_need_more_subjects():
    """The assured plan plans from upper bounds of the subject components: more subjects the
    higher the assurance, and fewer effective subjects in the pilot widen the bounds."""
    c = _components(df_a=20.0, df_b=20.0)
    central = planning.plan_pair(c, 0.03)
    plans = [planning.plan_pair(planning.assured(c, a), 0.03) for a in (0.5, 0.8, 0.95)]
    sizes = [p.subjects_per_group for p in plans]
    assert sizes[0] <= central.subjects_per_group * 1.05 and sizes[0] < sizes[1] < sizes[2]
    few = planning.plan_pair(planning.assured(_components(df_a=4.0, df_b=4.0), 0.8), 0.03)
    assert few.subjects_per_group > plans[1].subjects_per_group
    assert planning.assured(c, 0.8).var_composite == c.var_composite  # no pilot variance given
    # The ratio moves to its one-sided bound towards 1/2 (SE 0.02 here), the components with it.
    sure = planning.assured(_components(df_a=20.0, df_b=20.0, variance=0.02**2), 0.8)
    assert sure.ratio == pytest.approx(0.6 - 0.8416 * 0.02, abs=1e-4)
    scale = sure.ratio * (1 - sure.ratio) / 0.24
    assert sure.var_composite == pytest.approx(0.15 * scale)


def test_statistics_page_has_the_planning_section(pilot_run):
    """The statistics page (cropaudit stats) carries the same plan as the run report."""
    from cropaudit.stats.planning import DEFAULT_HALF_WIDTH, plan_survival

    html = (pilot_run / "stats" / "report.html").read_text()
    section = html[html.index("<h2>Planning</h2>") :]
    table = pa.concat_tables(
        pq.read_table(f) for f in (pilot_run / "run" / "survival").glob("*.parquet")
    )
    plan = plan_survival(table, DEFAULT_HALF_WIDTH)
    assert f"half-width of {DEFAULT_HALF_WIDTH}" in section
    assert "cropaudit plan stats --half-width" in section  # relative: no home directory
    assert section.count("<tr>") == len(plan) + 1
    for n in plan["subjects_per_group"]:
        assert f"<td class=num>{n}</td>" in section


def test_report_section_plans_at_the_default_target(pilot_run):
    """The run report's Planning section: the pilot's pairs with their plan at the default
    half-width, in an HTML table."""
    from types import SimpleNamespace

    from cropaudit.report.plan_section import planning_section
    from cropaudit.rundir import read_table
    from cropaudit.stats.planning import DEFAULT_HALF_WIDTH, plan_survival

    table = read_table(str(pilot_run / "run" / "survival"))
    inputs = SimpleNamespace(estimates=None, survival_table=table, run_dir="RUN")
    html = planning_section(inputs)
    plan = plan_survival(table, DEFAULT_HALF_WIDTH)
    assert f"half-width of {DEFAULT_HALF_WIDTH}" in html and "cropaudit plan RUN" in html
    assert html.count("<tr>") == len(plan) + 1  # header + one row per pair
    for n in plan["subjects_per_group"]:
        assert f"<td class=num>{n}</td>" in html


@pytest.mark.parametrize(
    "args, message",
    [
        (["--half-width", "0.7"], "--half-width must be between 0 and 0.5"),
        (["--half-width", "0.05", "--out", "plan.txt"], "written as .parquet or .csv"),
        (["--half-width", "0.05", "--criterion", "nope"], "no pair comparison to plan"),
    ],
)
def test_plan_command_bad_input(pilot_run, tmp_path, capsys, args, message):
    args = [a if a != "plan.txt" else str(tmp_path / a) for a in args]
    assert main(["plan", str(pilot_run / "run"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_plan_command_refuses_other_folders(tmp_path, capsys):
    assert main(["plan", str(tmp_path), "--half-width", "0.05"]) == 2
    assert "neither a run folder" in capsys.readouterr().err
    assert main(["plan", str(tmp_path / "missing"), "--half-width", "0.05"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_statistics_page_names_the_command_above_its_row_limit(pilot_run, monkeypatch):
    """Above PLAN_ROWS the statistics page does not re-read the rows (the stage stays
    fast) and says which command plans them."""
    import cropaudit.report.plan_section as section

    monkeypatch.setattr(section, "PLAN_ROWS", 100)
    files = [str(f) for f in sorted((pilot_run / "run" / "survival").glob("*.parquet"))]
    html = section.stats_planning_section(files, pd.DataFrame({"level": [0.95]}), "STATS")
    assert "Not planned here" in html and "cropaudit plan STATS --half-width 0.02" in html
    assert "<table" not in html
