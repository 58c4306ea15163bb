"""The experiments catalogue and the sensitivity sweep: every config validates, the WACV pairs
match the paper's table, sweep variants share their samples, and the sweep runs end to end."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from cropaudit import config as config_mod
from cropaudit.cli import main
from cropaudit.model.catalogue import BUILTIN
from cropaudit.schemas.records import Face
from cropaudit.schemas.survival import SURVIVAL_SCHEMA
from cropaudit.stats.sensitivity import (
    AXIS_FLIP_COLUMNS,
    FLIP_COLUMNS,
    VARIANT_COLUMNS,
    flip_rates,
    flip_rates_by_axis,
    variant_estimates,
)
from cropaudit.transforms.design import (
    DesignCell,
    expected_composites,
    index_groups,
    sample_composites,
    with_variants,
)
from tests.conftest import REPO, shared_file

EXPERIMENTS = REPO / "experiments"
CONFIGS = sorted(EXPERIMENTS.glob("*.toml"))
SWEEP = EXPERIMENTS / "sensitivity_sweep.toml"


def test_catalogue_has_the_configs_of_issue_7():
    names = {p.name for p in CONFIGS}
    expected = {
        "wacv2022_cfd_vertical.toml",
        "obama_mcconnell.toml",
        "sensitivity_sweep.toml",
        "distractors.toml",
        *(
            f"twitter_wikidata_{g}_{s}.toml"
            for g in ("race", "gender", "race_gender")
            for s in ("unscaled", "h256")
        ),
    }
    assert expected <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_experiment_config_validates_and_documents_its_dataset(path):
    cfg = config_mod.load(str(path))
    assert cfg.version == config_mod.CONFIG_VERSION and cfg.name and cfg.dataset
    header = path.read_text().split("\nversion =")[0]
    assert "Dataset:" in header or path.name == "demo.toml"
    # the demos draw their own images; obama_mcconnell's is built by hand
    if path.name not in ("demo.toml", "demo_single.toml", "obama_mcconnell.toml"):
        assert "cropaudit manifest import" in header
    assert len({v.name for v in cfg.variants()}) == cfg.sweep_size()


#: How a description may name a catalogue model besides its catalogue name (any case).
MODEL_ALIASES = {
    "spectral-residual": "opencv-spectral-residual",
    "fine-grained": "opencv-fine-grained",
}


def models_named(text: str) -> set[str]:
    """Catalogue models a description names, longest name first (``opencv-fine-grained`` is
    not also ``fine-grained``)."""
    names = {**{n: n for n in BUILTIN}, **MODEL_ALIASES}
    found, text = set(), text.lower()
    for name in sorted(names, key=len, reverse=True):
        pattern = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
        if re.search(pattern, text):
            found.add(names[name])
            text = re.sub(pattern, " ", text)
    return found


def test_models_named_reads_names_and_aliases():
    assert models_named("FastGaze and opencv-fine-grained, not a spectral-residual") == {
        "fastgaze",
        "opencv-fine-grained",
        "opencv-spectral-residual",
    }
    assert models_named("a baseline-free fastgazer") == set()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_description_names_the_models_the_config_runs(path):
    cfg = config_mod.load(str(path))
    assert models_named(cfg.description) == {cfg.model.spec, *cfg.model.compare}, cfg.description


def test_validate_command_accepts_every_experiment_config(capsys):
    assert main(["validate", *map(str, CONFIGS)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == len(CONFIGS) and "21 sweep variants" in out


def test_twitter_configs_layouts_and_groupings():
    for grouping, attributes in (("race", 1), ("gender", 1), ("race_gender", 2)):
        for scaling, height in (("unscaled", 0), ("h256", 256)):
            cfg = config_mod.load(str(EXPERIMENTS / f"twitter_wikidata_{grouping}_{scaling}.toml"))
            assert cfg.layout.kind == "horizontal" and cfg.layout.height == height
            assert len(cfg.groups.attributes) == attributes


def test_wacv_pairs_and_order_match_the_papers_composites():
    table = shared_file("data/reference/df_cfd_3k.csv")
    seen = Counter()
    with table.open() as f:
        for row in csv.DictReader(f):
            top, bottom = row["file_top"][4:6], row["file_bottom"][4:6]  # CFD-<race><gender>-...
            seen[(f"{top[0]}/{top[1]}", f"{bottom[0]}/{bottom[1]}")] += 1
    cfg = config_mod.load(str(EXPERIMENTS / "wacv2022_cfd_vertical.toml"))
    assert set(cfg.design.pairs) == set(seen)  # [group_a = top, group_b = bottom]
    assert cfg.design.order == "fixed"
    cells = [DesignCell("pairs", a, b, cfg.design.composites_per_pair) for a, b in cfg.design.pairs]
    assert expected_composites(cells, cfg.design.order) == sum(seen.values()) == 3000
    assert (cfg.layout.width, cfg.layout.face_height, cfg.layout.gap_height) == (583, 887, 1226)


def test_sweep_config_is_one_axis_at_a_time_around_the_base():
    cfg = config_mod.load(str(SWEEP))
    variants = cfg.variants()
    assert variants[0].name == "base" and variants[0].axes == {}
    assert all(len(v.axes) == 1 for v in variants[1:])
    assert {next(iter(v.axes)) for v in variants[1:]} == set(config_mod.SWEEP_AXES)
    pads = [v.config.layout.pad for v in variants if "pad" in v.axes]
    assert pads == [1, 2, 4, 8, 12, 16, 31]  # the base value 0 is the base variant
    assert all(not v.config.sweep.active for v in variants)


# -- design: the same samples under every variant --------------------------------------------


def _faces():
    return [
        Face(f"{g}{s}{p}", f"/x/{g}{s}{p}.png", f"{g}{s}", (("g", g),))
        for g in "AB"
        for s in range(3)
        for p in range(2)
    ]


def test_variants_share_faces_and_positions_and_ids_stay_unique():
    index = index_groups(_faces(), ["g"])
    cell = DesignCell("pairs", "A", "B", 3)
    names = ["base", "pad=8", "resize=area"]
    rows = [
        v
        for i in range(3)
        for c in sample_composites(cell, i, index, 5, "counterbalanced")
        for v in with_variants(c, names)
    ]
    assert len({r.composite_id for r in rows}) == len(rows) == 3 * 2 * 3
    by_sample: dict[str, list] = {}
    for r in rows:
        by_sample.setdefault(r.sample_id, []).append(r)
    assert len(by_sample) == 6
    for sample_id, copies in by_sample.items():
        assert [c.variant for c in copies] == names
        assert len({(c.face_a, c.face_b, c.position) for c in copies}) == 1
        assert copies[0].composite_id == sample_id
        assert copies[1].composite_id == f"{sample_id}@pad=8"


def test_fixed_order_puts_group_a_first():
    index = index_groups(_faces(), ["g"])
    cell = DesignCell("pairs", "A", "B", 4)
    got = [sample_composites(cell, i, index, 1, "fixed") for i in range(4)]
    assert all(len(c) == 1 and c[0].position == "a_first" for c in got)
    assert expected_composites([cell], "fixed", variants=3) == 12


# -- sensitivity statistics on hand-made tables ------------------------------------------------


def _table(samples: dict[str, tuple[str, str, dict[str, str]]]) -> pa.Table:
    """sample_id -> (group_a, group_b, variant -> "point_winner crop_1.00_winner"), in order
    -> survival-like rows."""
    rows = [
        (variant, sample, group_a, group_b, *winners.split())
        for sample, (group_a, group_b, variants) in samples.items()
        for variant, winners in variants.items()
    ]
    return pa.table(
        {
            "composite_id": [s if v == "base" else f"{s}@{v}" for v, s, *_ in rows],
            "sample_id": [r[1] for r in rows],
            "variant": [r[0] for r in rows],
            "design": ["pairs"] * len(rows),
            "group_a": [r[2] for r in rows],
            "group_b": [r[3] for r in rows],
            "point_winner": [r[4] for r in rows],
            "crops": [
                [
                    {"aspect_ratio": 0.56, "winner": "tie"},
                    {"aspect_ratio": 1.0, "winner": r[5]},
                ]
                for r in rows
            ],
        }
    )


HAND = _table(
    {
        # sample s1 (A vs B): a everywhere -> no flip
        "s1": ("A", "B", {"base": "a a", "pad=8": "a a", "resize=area": "a b"}),
        # sample s2: flips under padding only
        "s2": ("A", "B", {"base": "a a", "pad=8": "b a", "resize=area": "a a"}),
        # sample s3: background under resize counts as a change of winner
        "s3": ("A", "B", {"base": "b b", "pad=8": "b b", "resize=area": "background b"}),
        # sample s4: only one variant survived -> not counted
        "s4": ("A", "B", {"base": "a a"}),
        # another pair, never flips
        "t1": ("A", "C", {"base": "tie a", "pad=8": "tie a"}),
    }
)


def test_variant_estimates_one_row_per_variant_and_pair():
    est = variant_estimates(HAND)
    assert list(est.columns) == VARIANT_COLUMNS
    ab = est[est.group_b == "B"].set_index("variant")
    assert list(ab.index) == ["base", "resize=area", "pad=8"]  # base first, then sweep order
    assert ab.loc["base", ["n", "wins_a", "wins_b"]].tolist() == [4, 3, 1]
    assert ab.loc["base", "survival_ratio"] == pytest.approx(0.75)
    assert ab.loc["resize=area", ["n", "wins_a", "wins_b"]].tolist() == [3, 2, 0]
    assert ab.loc["pad=8", "survival_ratio"] == pytest.approx(1 / 3)
    lo, hi = ab.loc["base", ["ci_low", "ci_high"]]
    assert 0 < lo < 0.75 < hi < 1
    ac = est[est.group_b == "C"].iloc[0]
    assert ac.n == 1 and ac.wins_a == ac.wins_b == 0 and math.isnan(ac.survival_ratio)


def test_variant_estimates_by_crop_criterion():
    est = variant_estimates(HAND, criterion="crop_1.00").set_index(["variant", "group_b"])
    assert est.loc[("resize=area", "B"), ["wins_a", "wins_b"]].tolist() == [1, 2]
    assert variant_estimates(HAND, criterion="crop_1").equals(
        variant_estimates(HAND, criterion="crop_1.00")
    )
    with pytest.raises(ValueError, match="criterion"):
        variant_estimates(HAND, criterion="area")


def test_flip_rates_per_pair_and_per_axis():
    flips = flip_rates(HAND).set_index("group_b")
    assert list(flip_rates(HAND).columns) == FLIP_COLUMNS
    assert flips.loc["B", ["samples", "flipped"]].tolist() == [3, 2]
    assert flips.loc["B", "flip_rate"] == pytest.approx(2 / 3)
    assert flips.loc["C", ["samples", "flipped", "flip_rate"]].tolist() == [1, 0, 0.0]
    by_axis = flip_rates_by_axis(HAND)
    assert list(by_axis.columns) == AXIS_FLIP_COLUMNS
    got = {(r.axis, r.group_b): (r.samples, r.flipped) for r in by_axis.itertuples()}
    assert got == {
        ("resize", "B"): (3, 1),
        ("resize", "C"): (0, 0),  # A vs C never rendered with resize=area: no samples
        ("pad", "B"): (3, 1),
        ("pad", "C"): (1, 0),
    }
    assert math.isnan(
        by_axis[(by_axis.axis == "resize") & (by_axis.group_b == "C")].flip_rate.iloc[0]
    )
    crop = flip_rates(HAND, criterion="crop_1.00").set_index("group_b")
    assert crop.loc["B", ["samples", "flipped"]].tolist() == [3, 1]


def test_sensitivity_reads_tables_without_variant_columns():
    legacy = HAND.drop_columns(["variant", "sample_id"]).slice(0, 1)
    est = variant_estimates(legacy)
    assert est.variant.tolist() == ["base"] and est.n.tolist() == [1]
    assert flip_rates(legacy).samples.tolist() == [0]
    assert variant_estimates(HAND.to_pandas()).equals(variant_estimates(HAND))


# -- end to end --------------------------------------------------------------------------------


@pytest.mark.slow
def test_sensitivity_sweep_runs_end_to_end_on_synthetic_faces(tmp_path):
    from cropaudit.pipelines.audit_pipeline import run_audit
    from cropaudit.pipelines.stats_pipeline import run_stats
    from cropaudit.rundir import StatsDir, read_table
    from cropaudit.synthetic import write_face_set

    faces = write_face_set(tmp_path / "faces", seed=3, subjects_per_group=2)
    cfg = config_mod.load(str(SWEEP)).replace(
        manifest={"path": str(faces)},
        groups={"attributes": ["tone", "hair"]},
        design={"pairs": [["dark/long", "light/short"]], "composites_per_pair": 1},
        model={"spec": "baseline"},
    )
    variants = [v.name for v in cfg.variants()]
    summary = run_audit(cfg, str(tmp_path / "run"), quiet=True)
    assert summary["composites_expected"] == summary["survival_rows"] == 2 * len(variants)
    assert summary["variants"] == variants

    survival = read_table(str(tmp_path / "run" / "survival"))
    assert survival.schema.remove_metadata() == SURVIVAL_SCHEMA.remove_metadata()
    df = survival.to_pandas()
    assert df.composite_id.is_unique
    assert sorted(df.variant.unique()) == sorted(variants)
    for _, rows in df.groupby("sample_id"):  # every sample under every variant, same faces
        assert sorted(rows.variant) == sorted(variants)
        assert rows[["a_image_id", "b_image_id", "position"]].drop_duplicates().shape[0] == 1
    first = df.set_index("variant")
    base = first.loc["base"].iloc[0]
    assert (base.width, base.height) == (583, 3000)
    assert first.loc["pad=31"].iloc[0][["width", "height"]].tolist() == [614, 3031]
    assert '"pad": 31' in first.loc["pad=31"].iloc[0].layout_params
    assert first.loc["gap=0"].iloc[0].height == 2 * 887
    assert "jpeg=q50" in first.loc["jpeg_quality=50"].iloc[0].preprocessing
    assert "resize=area" in first.loc["resize=area"].iloc[0].preprocessing
    assert len(set(df.model_hash)) == 1  # one model; only the pre-processing differs

    run_stats([str(tmp_path / "run")], str(tmp_path / "stats"), replicates=20, render=False)
    est = StatsDir(str(tmp_path / "stats")).estimates().to_pandas()
    for criterion in ("point", "crop_0.56"):
        rows = est[
            (est.design == "pairs") & (est.criterion == criterion) & (est.comparison == "pair")
        ]
        assert sorted(rows.variant) == sorted(variants)  # exactly one estimate per variant
        assert (rows.n == 2).all()

    ratios = variant_estimates(survival)
    assert sorted(ratios.variant) == sorted(variants) and (ratios.n == 2).all()
    flips = flip_rates(survival)
    assert flips.samples.tolist() == [2] and flips.flipped.iloc[0] in (0, 1, 2)
    assert flips.flip_rate.iloc[0] == flips.flipped.iloc[0] / 2
    assert set(flip_rates_by_axis(survival).axis) == set(config_mod.SWEEP_AXES)

    from cropaudit.report import build_report

    page = build_report(
        str(tmp_path / "run"),
        str(tmp_path / "report.html"),
        stats_dir=str(tmp_path / "stats"),
        gallery=0,
        quiet=True,
    )
    html = Path(page).read_text(encoding="utf-8")
    section = html.split("One estimate per variant", 1)[1].split("</table>", 1)[0]
    listed = [v for v in variants if f"<td>{v}</td>" in section]
    assert listed == variants and section.count("<tr>") == len(variants) + 1  # + header
