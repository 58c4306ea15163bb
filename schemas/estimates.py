"""Schema of the estimates table written by the statistics stage (one row per stratum).

A stratum is model x layout x preprocessing x variant x design x criterion x comparison, where
``variant`` is the survival table's sweep variant (``base`` without a sweep). ``comparison`` is
``pair`` (face a from ``group_a`` against face b from ``group_b``) or, for designs with more than
two groups, ``group_vs_rest`` (``group_a`` against every other group, ``group_b`` = ``rest``).
``criterion`` is ``point`` (which face holds the salient point) or ``crop_<aspect ratio>`` (which
face keeps more visible area in the simulated crop, e.g. ``crop_0.56``).

The survival ratio is wins_a / (wins_a + wins_b); ties and background are counted, not in the
ratio. Interval columns are ``<statistic>_<method>_low/high`` at ``level``; bootstrap methods use
the subject-clustered (multiway Poisson) bootstrap with ``replicates`` replicates and ``seed``,
rescaled to the two-way cluster-robust variance when ``bootstrap_correction`` is ``cgm``
(``none``: plain bootstrap); ``<statistic>_boot_shrink`` is the factor lambda applied to its
replicates (1 without correction; see cropaudit.stats.bootstrap) and ``n_cells`` the number of
distinct subject pairs with a decisive composite.
``<statistic>_low/high`` is the interval the report shows and ``<statistic>_interval_method``
its method (``wilson_effective_n``: Wilson score interval on the effective sample size
``<statistic>_effective_n`` = p(1-p) / ``<statistic>_cluster_se``^2, with a t quantile on
``cluster_df`` degrees of freedom, the subjects' part of the variance scaled like
(theta (1 - theta))^2, one-sided beyond the tail no ``decisive`` composites can
reach; see cropaudit.stats.effective.score_interval); it has positive width for any
stratum with a decisive composite. ``model_*`` is the crossed random-effects logistic
cross-check (cropaudit.stats.mixed): population-averaged ratio, its interval, the a- and b-subject
standard deviations on the logit scale, ``model_status`` (``fitted`` or why not) and
``model_disagrees`` (its interval and the reported one do not overlap).
Provenance lists hold every distinct value of the input rows of the stratum.

Tests against parity (1/2). ``ratio_p``, ``order_adjusted_p`` and ``first_slot_p`` are the
p-values of the very tests the reported intervals ``<statistic>_low/high`` invert (same effective
n, t quantile and tail rule; cropaudit.stats.effective.score_pvalue): p < 1 - ``level`` exactly
when 1/2 lies outside the interval. ``p_binomial`` (composites as independent) and
``p_bootstrap`` / ``p_first_slot_bootstrap`` (from the rescaled replicates, never below
1/(replicates + 1)) stay beside them. ``p_family`` names the row's multiplicity family (model |
variant | criterion | design | comparison: the controls ``same_group`` and ``same_image`` are
designs of their own, never in a pair family) and ``<p>_holm`` / ``<p>_bh`` are adjusted within
it (Holm; Benjamini-Hochberg). ``identical_criteria`` lists the criteria (this one included)
whose winners equal this criterion's in every composite of the design: one finding, not several.
"""

from __future__ import annotations

import pyarrow as pa

KEY_FIELDS = (
    "model_name",
    "model_hash",
    "layout",
    "layout_params",
    "preprocessing",
    "variant",
    "design",
    "criterion",
    "comparison",
    "group_a",
    "group_b",
)

COUNT_FIELDS = (
    "n",
    "n_subjects",
    "n_cells",
    "wins_a",
    "wins_b",
    "ties",
    "background",
    "decisive",
    "n_a_first",
    "n_b_first",
    "valid_replicates",
)

BOOTSTRAPPED = ("ratio", "order_adjusted_ratio", "first_slot_rate")
#: The p-value of each of ``BOOTSTRAPPED``: the test its reported interval inverts.
TESTS = ("ratio_p", "order_adjusted_p", "first_slot_p")

FLOAT_FIELDS = (
    "ratio",
    "ratio_a_first",
    "ratio_b_first",
    "order_adjusted_ratio",
    "first_slot_rate",
    "ratio_wilson_low",
    "ratio_wilson_high",
    "ratio_clopper_pearson_low",
    "ratio_clopper_pearson_high",
    "ratio_twitter_low",
    "ratio_twitter_high",
    *(
        f"{stat}_{suffix}"
        for stat in BOOTSTRAPPED
        for suffix in (
            "boot_shrink",
            "boot_se",
            "percentile_low",
            "percentile_high",
            "bca_low",
            "bca_high",
            "cluster_se",
            "effective_n",
            "wilson_effective_n_low",
            "wilson_effective_n_high",
            "low",
            "high",
        )
    ),
    "cluster_df",
    "bca_z0",
    "bca_acceleration",
    "first_slot_wilson_low",
    "first_slot_wilson_high",
    "effect",
    "effect_low",
    "effect_high",
    "p_binomial",
    "p_bootstrap",
    "p_first_slot_bootstrap",
    "p_binomial_holm",
    "p_binomial_bh",
    "p_bootstrap_holm",
    "p_bootstrap_bh",
    *(f"{p}{suffix}" for p in TESTS for suffix in ("", "_holm", "_bh")),
    "model_ratio",
    "model_low",
    "model_high",
    "model_sd_a",
    "model_sd_b",
)

ESTIMATES_SCHEMA = pa.schema(
    [
        *(pa.field(name, pa.string(), nullable=False) for name in KEY_FIELDS),
        pa.field("config_hashes", pa.list_(pa.string()), nullable=False),
        pa.field("survival_seeds", pa.list_(pa.string()), nullable=False),
        pa.field("versions", pa.list_(pa.string()), nullable=False),
        pa.field("replicates", pa.int32(), nullable=False),
        pa.field("level", pa.float64(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("bootstrap_correction", pa.string(), nullable=False),
        *(pa.field(name, pa.int64(), nullable=False) for name in COUNT_FIELDS),
        *(pa.field(name, pa.float64()) for name in FLOAT_FIELDS),
        *(pa.field(f"{stat}_interval_method", pa.string()) for stat in BOOTSTRAPPED),
        pa.field("model_status", pa.string()),
        pa.field("model_disagrees", pa.bool_()),
        pa.field("p_family", pa.string()),
        pa.field("identical_criteria", pa.list_(pa.string())),
    ]
)
#: Columns an estimates table of an older cropaudit lacks (read as "rerun the statistics").
SINCE_FAMILIES = ("ratio_p", "p_family", "identical_criteria")
