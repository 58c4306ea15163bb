"""Coverage study of the survival-ratio intervals over every design of the simulation module.

Runs the estimator the pipeline uses (cropaudit.stats: SufficientStats + estimate_stratum) on
experiments simulated by cropaudit.stats.simulation, one block per design in ``DESIGNS``:
balanced 50 x 50, unbalanced 10 x 60, random draws with replacement, a few popular subjects
carrying most composites, subject-specific position effects, heavy-tailed (t3) subject effects,
several images per subject, a true ratio near 0.85, tiny pairs of 16 composites (at 0.6 and at
0.85), and 10 x 10 subjects; then, with ``--held-out``, the designs of ``HELD_OUT`` that the
interval was not tuned on (25 vs 75 faces, a milder popularity spread, a ratio near 0.7 with 30
composites, strong subject-specific position effects; and, chosen after the tail rule of
``effective.score_interval``, ratios near 0.1 and 0.9 from 24 and 40 composites); with
``--near-band``, the designs of ``NEAR_BAND`` (the two classes issue 22 found just below the
band: popularity-weighted sampling with subject-specific position effects, and a ratio near 0.8
with a large subject variance in a few dozen faces). Truth = the
population-average statistic under the counterbalanced design (see cropaudit/stats/simulation.py).

Prints, per design and method, coverage of the nominal-level interval with its Monte-Carlo SE,
mean width and the number of zero-width (point or undefined) intervals: ``reported`` (the
interval the estimates table and report carry, Wilson on the design-effect-adjusted effective n),
the rescaled bootstrap (percentile, BCa), the same replicates uncorrected, the naive binomial
intervals (Wilson, Clopper-Pearson, Twitter's +-2 SE) and the reported intervals of the
first-slot rate and the order-adjusted ratio; then a one-line verdict per design against the
0.935-0.97 band.

    .venv/bin/python benchmarks/simulate_coverage.py [--experiments 1000] [--replicates 200]
        [--design NAME ...] [--held-out] [--near-band]

With ``--single`` it studies instead the single-image face rates and their differences between
groups (``SINGLE_DESIGNS`` of cropaudit/stats/simulation_single.py: subject-clustered intervals
against the plain Wilson ones), and with ``--agreement`` the cropper-agreement interval
(``AGREEMENT_DESIGNS``); ``--experiments`` as above (``--replicates`` unused by ``--single``);
``--only NAME`` (repeatable) runs only those designs, each on the seed it has in the full run;
``--single --held-out`` adds ``SINGLE_HELD_OUT``, designs fixed after the method was.
"""

from __future__ import annotations

import time

import pandas as pd
from bench_args import bench_parser

from cropaudit.stats.simulation import (
    DESIGNS,
    HELD_OUT,
    NEAR_BAND,
    coverage_study,
    summarise,
    truths,
)
from cropaudit.stats.simulation_single import (
    AGREEMENT_DESIGNS,
    SINGLE_DESIGNS,
    SINGLE_HELD_OUT,
    agreement_coverage_study,
    single_coverage_study,
    single_truths,
    true_agreement,
)

BAND = (0.935, 0.97)


def main() -> None:
    parser = bench_parser(__doc__, experiments=1000, replicates=200, level=0.95, seed=2024)
    designs = {**DESIGNS, **HELD_OUT, **NEAR_BAND}
    parser.add_argument("--design", action="append", choices=sorted(designs), default=None)
    parser.add_argument("--held-out", action="store_true", help="also the held-out designs")
    parser.add_argument(
        "--near-band", action="store_true", help="also the designs issue 22 found short of the band"
    )
    parser.add_argument("--single", action="store_true", help="the single-image rates instead")
    parser.add_argument("--agreement", action="store_true", help="the agreement interval instead")
    parser.add_argument(
        "--only", action="append", default=None, metavar="NAME",
        help="with --single/--agreement: only these designs (each keeps its seed)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.single or args.agreement:
        return other_studies(args)
    names = args.design or [
        *DESIGNS, *(HELD_OUT if args.held_out else ()), *(NEAR_BAND if args.near_band else ())
    ]  # fmt: skip
    pd.set_option("display.width", 140)
    fmt = {"float_format": lambda x: f"{x:.4f}", "index": False}
    start = time.perf_counter()
    verdicts = []
    for i, name in enumerate(names):
        design = designs[name]
        t = time.perf_counter()
        results = coverage_study(
            design, args.experiments, args.replicates, args.level, seed=args.seed + i
        )
        summary = summarise(results)
        truth = truths(design)["ratio"]
        print(
            f"\n== {name}: true ratio {truth:.4f}, mean estimate {results['ratio'].mean():.4f}, "
            f"mean decisive {results['decisive'].mean():.0f}, mean effective n "
            f"{results['effective_n'].mean():.1f}, shrink {results['shrink'].mean():.3f} "
            f"({args.experiments} experiments x {args.replicates} replicates, "
            f"{time.perf_counter() - t:.0f} s)"
        )
        print(summary.to_string(**fmt))
        rep = summary.set_index("method").loc["reported"]
        ok = BAND[0] <= rep["coverage"] <= BAND[1] and rep["zero_width"] == 0
        tag = " (held out)" if name in HELD_OUT else ""
        verdicts.append(
            f"{name + tag:33s} reported {rep['coverage']:.3f} +- {rep['mc_se']:.3f} (misses: "
            f"truth above {results['reported_truth_above'].mean():.3f}, below "
            f"{results['reported_truth_below'].mean():.3f}), "
            f"zero-width {int(rep['zero_width'])}: {'in band' if ok else 'OUT OF BAND'}; "
            + ", ".join(
                f"{stat} {summary.set_index('method').loc[f'{stat}_reported', 'coverage']:.3f}"
                for stat in ("order_adjusted_ratio", "first_slot_rate")
            )
        )
    print(f"\nreported interval vs band {BAND} at level {args.level}:")
    print("\n".join(verdicts))
    print(f"total {time.perf_counter() - start:.0f} s")


def other_studies(args) -> None:
    """The ``--single`` and ``--agreement`` studies: one line per design and interval."""
    start = time.perf_counter()
    lines = []
    studies = []
    if args.single:
        studies += [(n, d, "single") for n, d in SINGLE_DESIGNS.items()]
    if args.agreement:
        studies += [(n, d, "agreement") for n, d in AGREEMENT_DESIGNS.items()]
    if args.single and args.held_out:
        studies += [(n, d, "single") for n, d in SINGLE_HELD_OUT.items()]
    for i, (name, design, kind) in enumerate(studies):
        if args.only and name not in args.only:
            continue
        seed = args.seed + 100 + i
        if kind == "single":
            results = single_coverage_study(design, args.experiments, args.level, seed=seed)
            truth = ", ".join(f"{k} {v:.3f}" for k, v in single_truths(design).items())
            checked = ("rate_a", "rate_b", "difference")
        else:
            results = agreement_coverage_study(
                design, args.experiments, args.level, seed=seed, replicates=args.replicates
            )
            truth = f"agreement {true_agreement(design):.3f}"
            checked = ("reported",)
        summary = summarise(results).set_index("method")
        print(f"\n== {name} ({kind}): {truth}; {args.experiments} experiments")
        print(summary.to_string(float_format=lambda x: f"{x:.4f}"))
        for method in checked:
            row = summary.loc[method]
            ok = BAND[0] <= row["coverage"] <= BAND[1] and row["zero_width"] == 0
            plain = f"{method}_unclustered" if kind == "single" else "wilson"
            lines.append(
                f"| {name} | {method} | {row['coverage']:.3f} ± {row['mc_se']:.3f} | "
                f"{int(row['zero_width'])} | {summary.loc[plain, 'coverage']:.3f} | "
                f"{'in band' if ok else 'OUT OF BAND'} |"
            )
    print(f"\nclustered interval vs band {BAND} at level {args.level}:")
    print("| design | interval | coverage ± MC SE | zero width | unclustered | verdict |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
