"""Validation of planning by simulation: do recommended designs reach the target half-width?

For each pilot design of cropaudit.stats.simulation (balanced, unbalanced 10 x 60, random
draws, a few popular subjects, subject-specific position effects, heavy-tailed subjects, several
images per subject, a true ratio near 0.85, 10 x 10; the tiny 16-composite designs cannot be
planned from: every face is in one pairing) and each of ``--pilots`` pilot draws, plan for
``--half-width`` from the pilot's variance components (cropaudit.stats.planning), simulate the
recommended design ``--experiments`` times with the same population and analyse each with the
statistics stage's estimator (cropaudit.stats.planning_study). The check is the median reported
half-width over the experiments as a ratio to the target. Prints per pilot the plan and its
ratio, then per design:

* ``8x pilot``: the central plan from one large pilot (``--large`` times the subjects and
  composites: components close to the population's, so this checks the formula); band 0.9-1.1.
* ``pilots``: median and range of the central plan's ratio over the pilot-sized pilots (the
  formula plus the pilot's own sampling noise).
* ``assured``: the plan from the subject components' one-sided ``--assurance`` upper bounds
  (cropaudit.stats.planning.assured): what it promises (the target reached with that
  probability) against the share of pilot-sized pilots whose plan reached it (ratio <= 1.0),
  and the median ratio.
* ``naive``: the same pilot planned as if composites were independent (no subject variance, the
  pilot's subjects): how far that misses.

    .venv/bin/python benchmarks/validate_planning.py [--half-width 0.04] [--pilots 5]
        [--experiments 50] [--assurance 0.8] [--design NAME ...]
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from bench_args import bench_parser

from cropaudit.stats.planning_study import check_naive, check_plan, scaled
from cropaudit.stats.simulation import DESIGNS, truths

BAND = (0.9, 1.1)


def main() -> None:
    parser = bench_parser(
        __doc__, half_width=0.04, pilots=6, experiments=50, assurance=0.8, level=0.95, seed=2024
    )
    parser.add_argument("--large", type=int, default=8, help="size factor of the large pilot")
    parser.add_argument("--design", action="append", choices=sorted(DESIGNS), default=None)
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    start = time.perf_counter()
    verdicts = []
    for name in args.design or DESIGNS:
        design, i = DESIGNS[name], list(DESIGNS).index(name)  # seeds: the same per design
        t = time.perf_counter()
        rows = []
        for k in range(args.pilots):
            seed = args.seed + 1000 * i + 10 * k
            row = check_plan(design, args.half_width, args.experiments, args.level, seed=seed)
            sure = check_plan(design, args.half_width, args.experiments, args.level, seed=seed,
                              assurance=args.assurance)  # fmt: skip
            naive = check_naive(design, args.half_width, args.experiments, args.level, seed=seed)
            rows.append({"pilot": k, **row, "assured_subjects": sure["subjects_per_group"],
                         "assured_composites": sure["composites_per_subject"],
                         "assured_ratio_to_target": sure["ratio_to_target"],
                         "naive_ratio_to_target": naive["ratio_to_target"]})  # fmt: skip
        big = check_plan(scaled(design, args.large), args.half_width, args.experiments,
                         args.level, seed=args.seed + 1000 * i + 7)  # fmt: skip
        table = pd.DataFrame(rows)
        print(
            f"\n== {name}: true ratio {truths(design)['ratio']:.4f}, pilot "
            f"{design.n_a} x {design.n_b} subjects, {2 * design.n_pairings} composites "
            f"({args.pilots} pilots x {args.experiments} experiments, "
            f"{time.perf_counter() - t:.0f} s)"
        )
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
        ratios = table["ratio_to_target"].dropna()
        if ratios.empty:
            verdicts.append(f"{name:20s} no plan: {table['status'].iloc[0]}")
            continue
        mid, big_ratio = float(np.median(ratios)), big["ratio_to_target"]
        # An unreachable assured plan (no design) counts as not reaching the target.
        sure = table["assured_ratio_to_target"].to_numpy(float)
        reached = float(np.mean(np.nan_to_num(sure, nan=np.inf) <= 1.0))
        verdicts.append(
            f"{name:20s} {args.large}x pilot {big_ratio:.3f} "
            f"({'in band' if BAND[0] <= big_ratio <= BAND[1] else 'OUT OF BAND'}); pilots: "
            f"median {mid:.3f}, range {ratios.min():.3f}-{ratios.max():.3f}; assured "
            f"{args.assurance:.0%}: reached in {reached:.0%}, median {np.nanmedian(sure):.3f}; "
            f"naive median {np.median(table['naive_ratio_to_target']):.3f}"
        )
    print(f"\nmedian reported half-width / target {args.half_width} vs band {BAND}:")
    print("\n".join(verdicts))
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
