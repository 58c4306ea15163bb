"""Coverage study of the survival-ratio intervals (>= 1,000 simulated experiments).

Runs the estimator the pipeline uses (cropaudit.stats: SufficientStats + estimate_stratum) on
experiments simulated by cropaudit.stats.simulation: 50 faces per group, each in 20 composites,
every pairing drawn in both positions (position effect on the logit scale), subject random
effects on the logit scale, 5% background. Truth = the survival ratio over the subject population
under the counterbalanced design (see cropaudit/stats/simulation.py).

    .venv/bin/python benchmarks/simulate_coverage.py [--experiments 1000] [--replicates 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd

from cropaudit.stats.simulation import SimulationDesign, coverage_study, summarise, true_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--sweep-experiments", type=int, default=300)
    args = parser.parse_args()
    pd.set_option("display.width", 120)

    design = SimulationDesign()
    print(f"design: {design}\ntrue survival ratio: {true_ratio(design):.4f}")
    t = time.perf_counter()
    results = coverage_study(design, args.experiments, args.replicates, seed=args.seed)
    elapsed = time.perf_counter() - t
    mean = results["ratio"].mean()
    print(f"{args.experiments} experiments x {args.replicates} replicates in {elapsed:.1f} s")
    print(f"mean estimate {mean:.4f}")
    print(summarise(results).to_string(index=False, float_format=lambda x: f"{x:.4f}"))

    # The multiway bootstrap is conservative when subject effects are weak relative to the
    # composite-level (Bernoulli) noise: the noise enters both subjects' weights (Owen 2007).
    print(
        f"\nsensitivity to the subject effect ({args.sweep_experiments} experiments each, "
        f"{args.replicates // 2} replicates):"
    )
    rows = []
    for sd in (0.5, 1.0, 2.0):
        d = dataclasses.replace(design, subject_sd=sd)
        s = summarise(
            coverage_study(d, args.sweep_experiments, args.replicates // 2, seed=int(sd * 10))
        )
        s.insert(0, "subject_sd", sd)
        rows.append(s)
    sweep = pd.concat(rows)
    sweep = sweep[sweep.method.isin(["percentile", "bca", "wilson", "twitter"])]
    print(sweep.to_string(index=False, float_format=lambda x: f"{x:.4f}"))


if __name__ == "__main__":
    main()
