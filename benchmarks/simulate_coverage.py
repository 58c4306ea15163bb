"""Coverage study of the survival-ratio intervals (>= 1,000 simulated experiments).

Runs the estimator the pipeline uses (cropaudit.stats: SufficientStats + estimate_stratum) on
experiments simulated by cropaudit.stats.simulation: 50 faces per group, each in 20 composites,
every pairing drawn in both positions (position effect on the logit scale), subject random
effects on the logit scale, 5% background. Truth = the population-average survival ratio of an
A face against a B face under the counterbalanced design (see cropaudit/stats/simulation.py).

Prints, per method, coverage of the 95% interval (with its Monte-Carlo SE) and mean width: the
subject-clustered bootstrap with the default ``cgm`` correction (percentile, BCa), the same
replicates uncorrected (``*_uncorrected``), and the naive binomial intervals (Wilson,
Clopper-Pearson, Twitter's +-2 SE); then the mean shrink factor lambda and a sweep over the
size of the subject effect.

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
    fmt = {"float_format": lambda x: f"{x:.4f}", "index": False}

    design = SimulationDesign()
    print(f"design: {design}\ntrue survival ratio: {true_ratio(design):.4f}")
    t = time.perf_counter()
    results = coverage_study(design, args.experiments, args.replicates, seed=args.seed)
    elapsed = time.perf_counter() - t
    print(f"{args.experiments} experiments x {args.replicates} replicates in {elapsed:.1f} s")
    print(f"mean estimate {results['ratio'].mean():.4f}")
    print(summarise(results).to_string(**fmt))
    shrink = results["shrink"]
    print(f"bootstrap shrink factor lambda: mean {shrink.mean():.4f}, sd {shrink.std():.4f}")

    # The plain multiway bootstrap counts composite-level (Bernoulli) noise three times; the
    # weaker the subject effects, the larger that share and the smaller lambda.
    print(
        f"\nsensitivity to the subject effect ({args.sweep_experiments} experiments each, "
        f"{args.replicates // 2} replicates):"
    )
    rows = []
    for sd in (0.5, 1.0, 2.0):
        d = dataclasses.replace(design, subject_sd=sd)
        res = coverage_study(d, args.sweep_experiments, args.replicates // 2, seed=int(sd * 10))
        s = summarise(res)
        s.insert(0, "subject_sd", sd)
        s["mean_shrink"] = res["shrink"].mean()
        rows.append(s)
    sweep = pd.concat(rows)
    keep = ["percentile", "bca", "percentile_uncorrected", "wilson", "twitter"]
    print(sweep[sweep.method.isin(keep)].to_string(**fmt))
    print(f"total {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
