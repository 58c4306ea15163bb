"""What a report reads: a finished run's config, summary and tables, and its estimates.

Estimates come from ``--stats DIR``, else from a finished statistics output found beside the run
(``RUN/stats`` or, in the demo layout, ``RUN/../stats``) whose estimates name this run's config
hash, else they are computed now, in-process and not kept, with
:func:`cropaudit.stats.run_estimates.run_estimates` (the page says which). The report reads tables;
it never runs a pipeline.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from cropaudit import config as config_mod
from cropaudit.errors import UserError
from cropaudit.rundir import SUCCESS, RunDir, StatsDir
from cropaudit.rundir.run_dir import DEAD_LETTER, SUMMARY
from cropaudit.schemas import single_survival
from cropaudit.schemas.estimates import ESTIMATES_SCHEMA
from cropaudit.schemas.survival import SURVIVAL_SCHEMA

CONFIG_METADATA_KEY = b"cropaudit.config"


@dataclass
class RunInputs:
    run_dir: str
    run: RunDir
    config: config_mod.ExperimentConfig
    config_toml: str
    summary: dict
    survival: pd.DataFrame
    dead: pd.DataFrame
    estimates: pd.DataFrame | None = None
    #: The survival table as read (Arrow), beside its pandas form ``survival``.
    survival_table: pa.Table | None = None
    #: A single-image run's table (``single_survival``); its pair table ``survival`` is then
    #: empty, and a pair run's ``single`` is None.
    single: pa.Table | None = None
    #: One sentence on where the estimates came from (or why there are none).
    stats_source: str = ""
    warnings: list[str] = field(default_factory=list)
    #: The survival table's content hash as read (:func:`cropaudit.rundir.table_hash`).
    table_sha256: str = ""

    @property
    def config_hashes(self) -> set[str]:
        """The config hashes the run recorded (its rows; the summary's when it has no rows)."""
        found = set(self.survival["config_hash"]) if "config_hash" in self.survival else set()
        return found or {self.summary.get("config_hash") or self.config.config_hash}

    @property
    def config_hash(self) -> str:
        """The run's recorded config hash (a config re-read by a newer cropaudit may hash
        differently when sections gained keys with defaults)."""
        return self.summary.get("config_hash") or sorted(self.config_hashes)[0]


def load_run(run_dir: str, trust_modified: bool = False) -> RunInputs:
    """A finished run's inputs (``UserError`` for a run without ``_SUCCESS``, or whose survival
    table differs from its summary's record unless ``trust_modified``: then a warning)."""
    run = RunDir.open(run_dir)
    check = run.verify(trust_modified)
    modified = check.differences
    run_dir = run.root  # a demo folder's run/: its stats/ is then found beside it
    table = run.survival_table()
    single = None
    survival_table = table
    if run.survival_name == single_survival.TABLE:
        single, survival_table = table, SURVIVAL_SCHEMA.empty_table()
    elif (old := single_survival.from_survival_v3(table)).num_rows:
        single = old  # a survival/v3-v4 run of single images: its rows in today's words
    warnings: list[str] = []
    if modified:
        warnings.append(
            "The survival table was modified after the run (used with --trust-modified): "
            + "; ".join(modified)
        )
    try:
        summary = run.read_summary()
    except (FileNotFoundError, ValueError) as exc:
        summary = {}
        warnings.append(f"{SUMMARY} unreadable ({exc})")
    config_toml = _config_text(run, table)
    config = config_mod.loads(config_toml)
    recorded = summary.get("config_hash")
    if recorded and recorded != config.config_hash:
        warnings.append(
            f"The run recorded config hash {recorded[:12]}; its saved config, read by this "
            f"cropaudit, hashes to {config.config_hash[:12]} (keys added since, with defaults): "
            "the gallery's re-rendering is checked against the recorded rows."
        )
    try:
        dead = run.table(DEAD_LETTER).to_pandas()
    except UserError:
        dead = pd.DataFrame(columns=["stage", "reason", "element_id", "detail", "record"])
    return RunInputs(
        run_dir=run_dir,
        run=run,
        config=config,
        config_toml=config_toml,
        summary=summary,
        survival=survival_table.to_pandas(),
        survival_table=survival_table,
        single=single,
        dead=dead,
        warnings=warnings,
        table_sha256=check.table_sha256,
    )


def _config_text(run: RunDir, survival: pa.Table) -> str:
    """The run's config: ``config.toml`` in the run directory, else the Parquet metadata."""
    text = run.config_text()
    if text is not None:
        return text
    meta = survival.schema.metadata or {}
    if CONFIG_METADATA_KEY in meta:
        return meta[CONFIG_METADATA_KEY].decode("utf-8")
    raise UserError(f"{run.root} has neither config.toml nor a config in its Parquet metadata")


def _for_run(estimates: pd.DataFrame, config_hashes: set[str]) -> pd.DataFrame:
    """Estimate rows computed from (at least) this run, by config hash."""
    if estimates.empty:
        return estimates
    mask = estimates["config_hashes"].apply(lambda hashes: bool(config_hashes & set(hashes)))
    return estimates[mask].reset_index(drop=True)


def _read_stats(stats_dir: str) -> pd.DataFrame:
    return StatsDir(stats_dir).estimates().to_pandas()


def candidate_stats_dirs(run_dir: str) -> list[str]:
    return [s.root for s in StatsDir.beside(run_dir)]


def source_warnings(inputs: RunInputs, stats: StatsDir) -> list[str]:
    """Why the estimates of ``stats`` may not describe the survival table the page shows: they
    were computed from another table (its content hash, recorded by ``cropaudit stats``,
    differs), cannot be checked (no hash recorded), or came from tables used although they
    differed from their run summaries (``--trust-modified``)."""
    success = stats.success()
    found = []
    recorded = success.get("survival_tables_sha256")
    if not isinstance(recorded, dict):
        found.append(
            f"The statistics in {stats.root} record no hash of the survival table they were "
            "computed from (an older cropaudit): they cannot be checked against this run's table."
        )
    elif inputs.table_sha256 not in recorded.values():
        was = ", ".join(sorted(str(h)[:12] for h in recorded.values()))
        found.append(
            f"The statistics in {stats.root} were not computed from this survival table: they "
            f"record table hash {was}, the table read here hashes to {inputs.table_sha256[:12]}. "
            "Their estimates may not match the counts on this page; rerun `cropaudit stats`."
        )
    unverified = success.get("unverified_inputs")
    if unverified:
        said = "; ".join(f"{run}: {'; '.join(d)}" for run, d in sorted(unverified.items()))
        found.append(
            f"The statistics in {stats.root} were made with --trust-modified from survival "
            f"tables that differed from their run summaries ({said})."
        )
    return found


def attach_estimates(
    inputs: RunInputs,
    stats_dir: str | None = None,
    *,
    compute: bool = True,
    replicates: int = 1000,
    quiet: bool = False,
) -> None:
    """Fill ``inputs.estimates`` and ``inputs.stats_source`` (see the module docstring)."""
    config_hash = inputs.config_hashes
    if inputs.single is not None and inputs.survival.empty:
        # single images only: no pairs, hence no estimates; the rates are read from the table
        inputs.estimates = ESTIMATES_SCHEMA.empty_table().to_pandas()
        inputs.stats_source = "Single images only: no pairs, so no survival ratios."
        return
    if stats_dir:
        if not StatsDir(stats_dir).finished:
            raise UserError(
                f"{stats_dir} is not a finished statistics output (no {SUCCESS}); "
                f"run `cropaudit stats {inputs.run_dir} --out {stats_dir}`"
            )
        estimates = _for_run(_read_stats(stats_dir), config_hash)
        if estimates.empty:
            raise UserError(
                f"the estimates in {stats_dir} were not computed from {inputs.run_dir} "
                f"(no row names config hash {', '.join(h[:12] for h in sorted(config_hash))})"
            )
        inputs.estimates = estimates
        inputs.stats_source = f"Estimates from {stats_dir} (--stats)."
        inputs.warnings.extend(source_warnings(inputs, StatsDir(stats_dir)))
        return
    for candidate in candidate_stats_dirs(inputs.run_dir):
        if not StatsDir(candidate).finished:
            continue
        estimates = _for_run(_read_stats(candidate), config_hash)
        if not estimates.empty:
            inputs.estimates = estimates
            inputs.stats_source = f"Estimates from {candidate} (found beside the run)."
            inputs.warnings.extend(source_warnings(inputs, StatsDir(candidate)))
            return
    looked = ", ".join(candidate_stats_dirs(inputs.run_dir))
    if not compute:
        inputs.stats_source = (
            f"No statistics output for this run (looked in {looked}); survival ratios, intervals "
            f"and position-bias tests are left out. Run `cropaudit stats {inputs.run_dir} --out "
            "DIR` and pass --stats DIR."
        )
        return
    if not quiet:
        print(
            f"cropaudit report: no statistics output for {inputs.run_dir} (looked in {looked}); "
            f"computing estimates with {replicates} bootstrap replicates",
            file=sys.stderr,
        )
    from cropaudit.stats.run_estimates import run_estimates

    inputs.estimates = _for_run(
        run_estimates(inputs.survival_table, replicates=replicates), config_hash
    )
    inputs.stats_source = (
        f"No statistics output was found for this run (looked in {looked}), so the estimates "
        f"below were computed for this report ({replicates} bootstrap replicates, seed 0) and "
        f"not kept. `cropaudit stats {inputs.run_dir} --out DIR` keeps them; pass --stats DIR."
    )
