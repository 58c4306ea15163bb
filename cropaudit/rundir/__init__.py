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

import importlib

#: Public name -> the module that defines it. Imported on first use (PEP 562), so that the
#: lower-layer modules here (ownership, locks, tablecheck, parquet_folder), which the model and
#: the writers use, do not pull in ``RunDir`` and what it builds on.
_EXPORTS = {
    "SUCCESS": "ownership",
    "iter_batches": "parquet_folder",
    "read_table": "parquet_folder",
    "table_hash": "parquet_folder",
    "INNER_RUN": "run_dir",
    "RUN_OUTPUT": "run_dir",
    "RunDir": "run_dir",
    "format_summary": "run_dir",
    "STATS_OUTPUT": "stats_dir",
    "StatsDir": "stats_dir",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
