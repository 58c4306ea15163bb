"""The run-directory library: what a run folder and a statistics folder consist of, and how
they are read, hashed, checked and published.

- :class:`RunDir` (:mod:`.run_dir`): a run's file names, tables, summary and ``_SUCCESS``;
  ``RunDir.open(path)`` also finds the run inside a demo folder; ``.verified()`` checks the
  survival table against the summary (:mod:`.tablecheck`).
- :class:`StatsDir` (:mod:`.stats_dir`): a statistics output's file names, estimates, level and
  ``_SUCCESS`` record.
- :mod:`.parquet_folder`: a folder of Parquet parts as one table, its batches, its content hash.
- :mod:`.ownership` and :mod:`.locks`: which folders a command may write over, and the
  exclusive lock that keeps two commands from writing the same place.

Pipelines build stages and hand their outputs to these objects; commands and the report read
runs and statistics only through them.
"""

from cropaudit.rundir.ownership import SUCCESS
from cropaudit.rundir.parquet_folder import iter_batches, read_table, table_hash
from cropaudit.rundir.run_dir import INNER_RUN, RUN_OUTPUT, RunDir, format_summary
from cropaudit.rundir.stats_dir import STATS_OUTPUT, StatsDir

__all__ = [
    "INNER_RUN",
    "RUN_OUTPUT",
    "STATS_OUTPUT",
    "SUCCESS",
    "RunDir",
    "StatsDir",
    "format_summary",
    "iter_batches",
    "read_table",
    "table_hash",
]
