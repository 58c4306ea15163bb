"""The findings: one line per cropper and comparison of the primary criterion, its verdict in
three states, position bias and the controls, in data (``findings.json``) and in words."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from cropaudit import config as config_mod
from cropaudit.errors import ConfigError
from cropaudit.schemas.survival import SAME_GROUP, SAME_IMAGE
from cropaudit.stats.findings import (
    VERDICTS,
    findings,
    findings_json,
    primary_criterion_of,
    verdict,
)
from cropaudit.stats.planning import plan_survival
from cropaudit.stats.run_estimates import run_estimates
from cropaudit.stats.synthetic_tables import synthetic_survival


def test_verdict_has_three_states():
    assert verdict(0.55, 0.7, 0.05) == verdict(0.2, 0.45, 0.05) == "disparity"
    assert verdict(0.47, 0.53, 0.05) == "parity"
    assert verdict(0.44, 0.53, 0.05) == verdict(0.0, 0.7, 0.05) == "inconclusive"
    assert verdict(float("nan"), float("nan"), 0.05) == "inconclusive"
    assert verdict(0.44, 0.53, 0.1) == "parity"  # the width decides


def test_primary_criterion_defaults():
    crops = ["crop_2.00", "crop_0.56", "crop_1.00"]
    assert primary_criterion_of(["point", *crops]) == "point"
    assert primary_criterion_of(crops, aspect_ratios=(1.0, 0.56)) == "crop_1.00"
    assert primary_criterion_of(crops) == "crop_0.56"  # without the config: the smallest ratio
    assert primary_criterion_of(["point", *crops], "crop_2.00") == "crop_2.00"
    # A cropper without the configured criterion (a box cropper has no point) takes its default.
    assert primary_criterion_of(crops, "point", (2.0,)) == "crop_2.00"


def _box_only(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("point_winner")
    return table.set_column(i, table.schema.field(i), pa.nulls(table.num_rows, pa.string()))


def _table() -> pa.Table:
    return pa.concat_tables(
        [
            synthetic_survival(2400, groups=("A", "B"), seed=1, baseline_logit=1.0),
            synthetic_survival(400, groups=("A", "B"), seed=2, design=SAME_GROUP),
            synthetic_survival(400, groups=("A", "B"), seed=3, design=SAME_IMAGE),
            _box_only(synthetic_survival(300, groups=("A", "B"), seed=4, model_name="boxes")),
        ]
    )


@pytest.fixture(scope="module")
def estimates():
    return run_estimates(_table(), replicates=20)


def test_one_line_per_cropper_comparison_position_and_control(estimates):
    items = findings(estimates)
    kinds = [(f.model_name, f.kind, f.design) for f in items]
    assert kinds == [
        ("boxes", "comparison", "pairs"),
        ("boxes", "position", "pairs"),
        ("fastgaze", "comparison", "pairs"),
        ("fastgaze", "position", "pairs"),
        ("fastgaze", "control", SAME_GROUP),
        ("fastgaze", "control", SAME_IMAGE),
    ]
    by = {(f.model_name, f.kind, f.design): f for f in items}
    # Saliency model: the point; box cropper: the first aspect ratio of the table (0.56).
    assert by["fastgaze", "comparison", "pairs"].criterion == "point"
    assert by["boxes", "comparison", "pairs"].criterion == "crop_0.56"
    for f in items:
        assert f.verdict in VERDICTS and f.text and f.criteria[0] == f.criterion
        row = estimates[(estimates.model_name == f.model_name) & (estimates.design == f.design)
                        & (estimates.criterion == f.criterion)].iloc[0]  # fmt: skip
        stat = "first_slot_rate" if f.kind == "position" else "ratio"
        test = "first_slot_p" if f.kind == "position" else "ratio_p"
        assert (f.estimate, f.low, f.high) == (row[stat], row[f"{stat}_low"], row[f"{stat}_high"])
        assert f.p_adjusted == row[f"{test}_holm"]
        if f.kind == "comparison":
            assert f.verdict == verdict(f.low, f.high, 0.05)
            assert (f.needed is not None) == (f.verdict == "inconclusive")
            assert f"{f.estimate:.2f} [{f.low:.2f}, {f.high:.2f}]" in f.text
    # A ratio near expit(1) from 2,400 composites: a disparity, favouring A, said in words.
    main = by["fastgaze", "comparison", "pairs"]
    assert main.verdict == "disparity" and main.low > 0.5 and "A kept over B" in main.text


def test_width_and_primary_criterion_from_the_caller(estimates):
    wide = findings(estimates, parity_width=0.45, primary_criterion="crop_1.00")
    same = [f for f in wide if f.kind == "control"]
    assert {f.criterion for f in same} == {"crop_1.00"}
    assert all(f.verdict in ("parity", "disparity") for f in same)


def test_inconclusive_lines_say_what_the_plan_needs():
    table = synthetic_survival(80, seed=9, subjects_per_group=12, baseline_logit=0.0)
    est = run_estimates(table, replicates=20)
    plan = plan_survival(table, 0.05)
    items = [f for f in findings(est, plan=plan) if f.kind == "comparison"]
    assert items and all(f.verdict == "inconclusive" for f in items)
    planned = plan.set_index("criterion").loc["point"]
    assert f"about {planned['subjects_per_group']} faces per group" in items[0].needed
    assert items[0].needed in items[0].text
    without = [f for f in findings(est) if f.kind == "comparison"][0]
    assert "effective n of about 384" in without.needed  # 1.96^2 / (4 0.05^2)


def test_identical_criteria_are_one_line_naming_all(estimates):
    table = synthetic_survival(400, aspect_ratios=(0.56, 1.0), seed=5)
    crops = table["crops"].to_pylist()
    for row, point in zip(crops, table["point_winner"].to_pylist(), strict=True):
        row[0]["winner"] = point
    i = table.schema.get_field_index("crops")
    table = table.set_column(i, table.schema.field(i), pa.array(crops, table.schema.field(i).type))
    items = findings(run_estimates(table, replicates=10))
    assert [f.criteria for f in items if f.kind == "comparison"] == [("point", "crop_0.56")]
    assert "point (= crop_0.56)" in items[0].text


def test_findings_json_is_strict_json(estimates):
    data = findings_json(findings(estimates))
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["version"] == "findings/v1" and back["verdicts"] == list(VERDICTS)
    assert len(back["findings"]) == 6 and isinstance(back["findings"][0]["criteria"], list)
    assert findings(estimates.iloc[0:0]) == []


def test_analysis_config_defaults_checks_and_hash():
    base = config_mod.ExperimentConfig().validate()
    assert base.analysis.primary_criterion == "" and base.analysis.parity_width == 0.05
    changed = base.replace(analysis={"primary_criterion": "crop_1.00", "parity_width": 0.1})
    assert changed.analysis.primary_criterion == "crop_1.00"
    # How the results are read is not what the run computes: the hash stays.
    assert changed.config_hash == base.config_hash
    assert "analysis" not in base.to_dict() and "[analysis]" in changed.to_toml()
    assert config_mod.loads(changed.to_toml()).analysis == changed.analysis
    with pytest.raises(ConfigError, match="primary_criterion"):
        base.replace(analysis={"primary_criterion": "crop_3.00"})
    with pytest.raises(ConfigError, match="primary_criterion"):
        base.replace(analysis={"primary_criterion": "corner"})
    with pytest.raises(ConfigError, match="parity_width"):
        base.replace(analysis={"parity_width": 0.5})
    with pytest.raises(ConfigError, match="unknown key"):
        base.replace(analysis={"primary": "point"})


@pytest.mark.slow
def test_demo_findings_and_tests_agree_with_the_intervals(tmp_path, capsys):
    """Acceptance of issue 22 on the demo's real table: for every estimates row and statistic,
    p < 0.05 iff 1/2 is outside the reported 95% interval; p_family keeps the controls apart;
    the identical criteria are one line; ``demo`` ends with the findings."""
    from cropaudit.cli import main
    from cropaudit.rundir import StatsDir

    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-progress"]) == 0
    stats = tmp_path / "demo" / "stats"
    est = StatsDir(str(stats)).estimates().to_pandas()
    assert len(est) and (est["level"] == 0.95).all()
    for stat, test in (("ratio", "ratio_p"), ("order_adjusted_ratio", "order_adjusted_p"),
                       ("first_slot_rate", "first_slot_p")):  # fmt: skip
        outside = (est[f"{stat}_low"] > 0.5) | (est[f"{stat}_high"] < 0.5)
        assert ((est[test] < 0.05) == outside).all(), stat
        assert (est[f"{test}_holm"] >= est[test] - 1e-12).all()
    controls = est[est["design"] != "pairs"]
    assert len(controls) and not set(controls["p_family"]) & set(
        est[est["design"] == "pairs"]["p_family"]
    )
    saved = json.loads((stats / "findings.json").read_text())["findings"]
    out = capsys.readouterr().out.rstrip("\n").splitlines()
    assert out[-len(saved) :] == [f"  {f['text']}" for f in saved]
    # The demo's criteria pick the same face in every composite: one line per comparison.
    comparisons = [f for f in saved if f["kind"] == "comparison"]
    assert len(comparisons) == len(est[(est.design == "pairs") & (est.criterion == "point")])
    assert {tuple(f["criteria"]) for f in comparisons} == {
        ("point", "crop_0.56", "crop_1.00", "crop_1.14", "crop_2.00")
    }
