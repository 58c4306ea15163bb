"""A statistics folder (``cropaudit stats --out DIR``): its file names, its estimates table and
the ``_SUCCESS`` record that makes it a finished statistics output (it names the estimates
files, the inputs and the survival tables used although they differ from their run summaries).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from cropaudit import fileio
from cropaudit.errors import UserError
from cropaudit.rundir import ownership
from cropaudit.rundir.ownership import SUCCESS
from cropaudit.rundir.parquet_folder import part_files, read_table
from cropaudit.schemas.estimates import ESTIMATES_SCHEMA, SINCE_FAMILIES

ESTIMATES = "estimates"
PLOTS = "plots"
REPORT = "report.html"
AGREEMENT = "agreement.parquet"
#: Face/body rates of single-image runs (:mod:`cropaudit.stats.gaze`).
FACE_RATES = "face_rates.parquet"
#: Their differences between groups, with p-values adjusted within families.
FACE_RATE_DIFFERENCES = "face_rate_differences.parquet"
#: The findings in words and numbers (:mod:`cropaudit.stats.findings`), for machines.
FINDINGS = "findings.json"
#: ``cropaudit plan``'s default table in a statistics folder (not the stage's own file: kept on
#: ``--overwrite``).
PLAN = "plan.parquet"
PLOT_FORMATS = ("png", "svg")
#: What a statistics folder consists of (see :mod:`cropaudit.rundir.ownership`).
STATS_OUTPUT = ownership.OutputKind(
    "stats",
    (
        SUCCESS,
        REPORT,
        AGREEMENT,
        FACE_RATES,
        FACE_RATE_DIFFERENCES,
        FINDINGS,
        f"{ESTIMATES}/*.parquet",
        *(f"{PLOTS}/*.{fmt}" for fmt in PLOT_FORMATS),
    ),
    tables=(ESTIMATES,),
)
#: The statistics folder inside an output that holds one (``cropaudit demo``: DIR/stats).
INNER_STATS = "stats"
#: The interval level of estimates that do not say theirs.
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class StatsDir:
    """A statistics folder: where its files are, and how they are read and published."""

    root: str

    @classmethod
    def beside(cls, run_root: str) -> list[StatsDir]:
        """Where a run's statistics are looked for: ``RUN/stats``, then (the demo layout)
        ``RUN/../stats``."""
        return [
            cls(fileio.join(run_root, INNER_STATS)),
            cls(fileio.join(fileio.dirname(run_root), INNER_STATS)),
        ]

    # -- where things are ---------------------------------------------------------------------

    estimates_folder = ownership.root_file(ESTIMATES)

    @property
    def estimates_prefix(self) -> str:
        """The prefix the stage's sink writes the estimates under (absolute: workers see it)."""
        return fileio.join(fileio.absolute(self.root), ESTIMATES, ESTIMATES)

    @property
    def estimates_file(self) -> str:
        """The one estimates file of an in-process (plain table) statistics run."""
        return fileio.join(self.estimates_folder, f"{ESTIMATES}-00000-of-00001.parquet")

    report = ownership.root_file(REPORT)
    agreement = ownership.root_file(AGREEMENT)
    face_rates = ownership.root_file(FACE_RATES)
    face_rate_differences = ownership.root_file(FACE_RATE_DIFFERENCES)
    findings = ownership.root_file(FINDINGS)
    plan = ownership.root_file(PLAN)
    marker = ownership.root_file(SUCCESS)

    def plot(self, criterion: str, fmt: str) -> str:
        return fileio.join(self.root, PLOTS, f"{criterion}.{fmt}")

    # -- reading ------------------------------------------------------------------------------

    def estimate_files(self) -> list[str]:
        return part_files(self.estimates_folder)

    def estimates(self) -> pa.Table:
        """The estimates table (empty, with the schema, when there are no files); a
        ``UserError`` naming the fix when an older cropaudit wrote it (no per-interval tests)."""
        if not self.estimate_files():
            return ESTIMATES_SCHEMA.empty_table()
        table = read_table(self.estimates_folder)
        missing = [c for c in ESTIMATES_SCHEMA.names if c not in table.column_names]
        if missing:
            named = [c for c in SINCE_FAMILIES if c in missing] or missing
            raise UserError(
                f"{self.root}: these estimates were written by an older cropaudit (no "
                f"{', '.join(named[:3])}); rerun the statistics: cropaudit stats RUN_DIR "
                f"--out {self.root} --overwrite"
            )
        return table.cast(ESTIMATES_SCHEMA)

    def level(self) -> float:
        """The level of the estimates (only that column is read, so outputs of older versions
        serve too); :data:`DEFAULT_LEVEL` when they have none or several."""
        levels: set[float] = set()
        for f in self.estimate_files():
            data = pa.BufferReader(fileio.read_bytes(f))
            if "level" in pq.read_schema(data).names:
                levels.update(pq.read_table(data, columns=["level"]).column(0).to_pylist())
        return float(levels.pop()) if len(levels) == 1 else DEFAULT_LEVEL

    @property
    def finished(self) -> bool:
        return fileio.exists(self.marker)

    def require_finished(self) -> StatsDir:
        if not self.finished:
            raise UserError(f"{self.root} is not a finished statistics output (no {SUCCESS})")
        return self

    def success(self) -> dict:
        """The ``_SUCCESS`` record: ``estimates`` (files), ``inputs`` (what was analysed),
        ``survival_tables_sha256`` (run -> the content hash of the table analysed; runs only)
        and, when some were used although modified, ``unverified_inputs`` (run ->
        differences)."""
        return json.loads(fileio.read_bytes(self.require_finished().marker))

    # -- writing ------------------------------------------------------------------------------

    def writing(self, *, overwrite: bool, command: str = "cropaudit stats"):
        """Lock the folder, claim it for statistics, remove temporary files however the block
        ends (:func:`ownership.writing`)."""
        return ownership.writing(self.root, STATS_OUTPUT, overwrite=overwrite, command=command)

    def require_estimates(self) -> list[str]:
        """The estimates files, or ``UserError`` when the stage wrote none."""
        written = self.estimate_files()
        if not written:
            raise UserError("the statistics pipeline wrote no estimates")
        return written

    def publish(
        self,
        inputs: list[str],
        modified: dict[str, list[str]] | None = None,
        tables: dict[str, str] | None = None,
    ) -> str:
        """Write the ``_SUCCESS`` record and record the folder's files as the stage's own
        (inside :meth:`writing`); returns the first estimates file. ``tables``: run -> the
        content hash of the survival table the estimates were computed from."""
        written = self.require_estimates()
        success: dict = {"estimates": written, "inputs": inputs}
        if tables is not None:
            success["survival_tables_sha256"] = tables
        if modified:
            success["unverified_inputs"] = modified
        fileio.write_atomic(self.marker, json.dumps(success).encode())
        ownership.finish(self.root, STATS_OUTPUT)
        return written[0]
