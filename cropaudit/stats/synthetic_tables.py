"""Synthetic survival tables that conform to ``SURVIVAL_SCHEMA``, for tests and benchmarks.

Columns are built with numpy and pyarrow directly (no Python dict per row), so a
1,000,000-row table takes seconds. Winners follow a simple logistic model with subject effects,
so the statistics have something to find; nothing here claims to resemble a real cropper.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import expit

from cropaudit.schemas.survival import BOX, CROP, PAIRS, POSITIONS, SURVIVAL_SCHEMA, WINNERS
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.tablecheck import describe

WINNER_NAMES = np.array(WINNERS, dtype=object)


def _winners(rng: np.random.Generator, p_a: np.ndarray, tie: float, bg: float) -> np.ndarray:
    u = rng.random(len(p_a))
    codes = np.where(rng.random(len(p_a)) < p_a, 0, 1)
    codes[u < tie + bg] = 2
    codes[u < bg] = 3
    return WINNER_NAMES[codes]


def _box(n: int, x: int, y: int) -> pa.StructArray:
    return pa.StructArray.from_arrays(
        [pa.array(np.full(n, v, dtype=np.int32)) for v in (x, y, 64, 64)],
        fields=list(BOX),
    )


def synthetic_survival(
    n_rows: int,
    groups: Sequence[str] = ("A", "B"),
    subjects_per_group: int = 50,
    aspect_ratios: Sequence[float] = (0.56, 1.0),
    seed: int = 0,
    model_name: str = "fastgaze",
    layout: str = "vertical_gap",
    preprocessing: str = "resize",
    design: str = PAIRS,
    baseline_logit: float = 0.2,
    subject_sd: float = 0.8,
    position_effect: float = 0.3,
    tie_rate: float = 0.02,
    background_rate: float = 0.05,
) -> pa.Table:
    """``n_rows`` composites cycling through every pair of ``groups`` (a_first/b_first
    alternating), faces drawn at random from ``subjects_per_group`` subjects per group."""
    rng = np.random.default_rng(seed)
    pairs = list(itertools.combinations(groups, 2)) if design == PAIRS else []
    if not pairs:
        pairs = [(g, g) for g in groups]
    idx = np.arange(n_rows)
    pair_no = idx % len(pairs)
    ga = np.array([p[0] for p in pairs], dtype=object)[pair_no]
    gb = np.array([p[1] for p in pairs], dtype=object)[pair_no]
    position = np.where((idx // len(pairs)) % 2 == 0, *POSITIONS).astype(object)
    sa = rng.integers(0, subjects_per_group, n_rows)
    sb = rng.integers(0, subjects_per_group, n_rows)
    a_subject = np.char.add(np.char.add(ga.astype(str), "-s"), sa.astype(str)).astype(object)
    b_subject = np.char.add(np.char.add(gb.astype(str), "-s"), sb.astype(str)).astype(object)
    effects = {g: rng.normal(0.0, subject_sd, subjects_per_group) for g in dict.fromkeys(groups)}
    ua = np.zeros(n_rows)
    ub = np.zeros(n_rows)
    for g, eff in effects.items():
        ua[ga == g] = eff[sa[ga == g]]
        ub[gb == g] = eff[sb[gb == g]]
    sign = np.where(position == POSITIONS[0], 1.0, -1.0)
    p_a = expit(baseline_logit + ua - ub + position_effect * sign)

    n_crops = len(aspect_ratios)
    crop_winners = np.stack(
        [_winners(rng, p_a, tie_rate, background_rate) for _ in aspect_ratios], axis=1
    ).reshape(-1)
    m = n_rows * n_crops
    i32 = lambda v: pa.array(np.full(m, v, dtype=np.int32))  # noqa: E731
    crops_values = pa.StructArray.from_arrays(
        [
            pa.array(np.tile(np.asarray(aspect_ratios, dtype=np.float64), n_rows)),
            i32(0),
            i32(0),
            i32(100),
            i32(100),
            pa.array(np.full(m, 100, dtype=np.int64)),
            pa.array(np.full(m, 100, dtype=np.int64)),
            pa.array(crop_winners, type=pa.string()),
        ],
        fields=list(CROP),
    )
    crops = pa.ListArray.from_arrays(
        pa.array(np.arange(0, m + 1, n_crops, dtype=np.int32)), crops_values
    )

    def const(value, typ) -> pa.Array:
        return pa.array(np.full(n_rows, value), type=typ)

    composite_ids = pa.array(np.char.add("c", idx.astype(str)).astype(object), pa.string())
    cols = {
        "composite_id": composite_ids,
        "sample_id": composite_ids,
        "variant": const(BASE_VARIANT, pa.string()),
        "design": const(design, pa.string()),
        "pair_id": pa.array(ga + "|" + gb, pa.string()),
        "group_a": pa.array(ga, pa.string()),
        "group_b": pa.array(gb, pa.string()),
        "sample_index": pa.array((idx // len(pairs)).astype(np.int32)),
        "position": pa.array(position, pa.string()),
    }
    for side, subj, grp, x in (("a", a_subject, ga, 0), ("b", b_subject, gb, 200)):
        cols[f"{side}_image_id"] = pa.array(subj + "-img", pa.string())
        cols[f"{side}_subject_id"] = pa.array(subj, pa.string())
        cols[f"{side}_group"] = pa.array(grp, pa.string())
        cols[f"{side}_attributes"] = pa.nulls(n_rows, pa.map_(pa.string(), pa.string()))
        cols[f"{side}_box"] = _box(n_rows, x, 0)
        cols[f"{side}_max"] = pa.array(rng.random(n_rows, dtype=np.float32))
        cols[f"{side}_mean"] = pa.array(rng.random(n_rows, dtype=np.float32))
    cols.update(
        {
            "layout": const(layout, pa.string()),
            "layout_params": const('{"gap": 0}', pa.string()),
            "width": const(256, pa.int32()),
            "height": const(512, pa.int32()),
            "model_name": const(model_name, pa.string()),
            "model_hash": const("sha256:0000", pa.string()),
            "model_source": const("builtin", pa.string()),
            "preprocessing": const(preprocessing, pa.string()),
            "grid_rows": const(16, pa.int32()),
            "grid_cols": const(8, pa.int32()),
            "salient_x": const(10, pa.int32()),
            "salient_y": const(10, pa.int32()),
            "salient_score": const(1.0, pa.float32()),
            "point_winner": pa.array(_winners(rng, p_a, 0.0, background_rate), pa.string()),
            "margin": pa.array(rng.random(n_rows, dtype=np.float32)),
            "image_box": pa.nulls(n_rows, SURVIVAL_SCHEMA.field("image_box").type),
            "crops": crops,
            "seed": const(seed, pa.int64()),
            "config_hash": const("cfg0", pa.string()),
            "versions": const('{"cropaudit": "0.1.0"}', pa.string()),
        }
    )
    return pa.Table.from_arrays([cols[f.name] for f in SURVIVAL_SCHEMA], schema=SURVIVAL_SCHEMA)


def write_run_dir(
    tables: pa.Table | Sequence[pa.Table], run_dir: str | Path, success: bool = True
) -> Path:
    """A finished-looking run directory: ``survival/part-N.parquet`` per table, ``_SUCCESS``."""
    run = Path(run_dir)
    (run / "survival").mkdir(parents=True, exist_ok=True)
    (run / "dead_letter").mkdir(exist_ok=True)
    if isinstance(tables, pa.Table):
        tables = [tables]
    for i, table in enumerate(tables):
        pq.write_table(table, run / "survival" / f"part-{i:05d}.parquet", compression="zstd")
    summary = {"survival_table": describe(str(run / "survival"))}
    (run / "run_summary.json").write_text(json.dumps(summary))
    if success:
        (run / "_SUCCESS").write_text("")
    return run
