"""The explorer's queries over a run's survival table: DuckDB over the run's own Parquet parts.

The browser never receives the table: it asks for one page of the composites behind one
estimate (a comparison: cropper, variant, design, criterion, group pair), filtered by outcome,
position and ``|margin|``, and for the rows of one rendered composite (one per cropper). The SQL
is a fixed text per filter combination; every value the browser sends is a bound parameter, and
the sort order is picked from :data:`ORDERS` by name, never spliced in.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from cropaudit.errors import UserError
from cropaudit.schemas import criteria
from cropaudit.schemas.survival import POSITIONS

#: The outcomes of a criterion, from face a's side (for ``group_vs_rest``: the named group's).
OUTCOMES = ("a", "b", "tie", "background")
#: Rows per page: the most the browser gets at once.
PAGE_MAX = 200
#: Sort orders of a page, by name: closest calls first (the gallery's order), or by id.
ORDERS = {
    "margin": "abs(margin) ASC NULLS LAST, composite_id",
    "-margin": "abs(margin) DESC NULLS LAST, composite_id",
    "id": "composite_id",
}
#: What a page row carries (``outcome`` and ``seen_position`` are the criterion's, seen from
#: face a, or from the named group in a ``group_vs_rest`` comparison).
LISTED = (
    "composite_id",
    "sample_id",
    "model_name",
    "group_a",
    "group_b",
    "position",
    "a_subject_id",
    "b_subject_id",
    "margin",
)
_SWAP = "CASE {x} WHEN 'a' THEN 'b' WHEN 'b' THEN 'a' WHEN 'a_first' THEN 'b_first' " \
    "WHEN 'b_first' THEN 'a_first' ELSE {x} END"  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """One estimate's stratum, as the estimates table keys it."""

    model_name: str
    variant: str
    design: str
    criterion: str
    comparison: str
    group_a: str
    group_b: str


@dataclass(frozen=True)
class PageQuery:
    """Which composites of a comparison, and which page of them."""

    outcome: str | None = None
    position: str | None = None
    margin_min: float | None = None
    margin_max: float | None = None
    order: str = "margin"
    offset: int = 0
    limit: int = 50

    def check(self) -> None:
        """``UserError`` for a value outside the vocabularies or limits."""
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise UserError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if self.position is not None and self.position not in POSITIONS:
            raise UserError(f"position must be one of {', '.join(POSITIONS)}")
        if self.order not in ORDERS:
            raise UserError(f"order must be one of {', '.join(ORDERS)}")
        if not 1 <= self.limit <= PAGE_MAX:
            raise UserError(f"limit must be 1..{PAGE_MAX}")
        if self.offset < 0:
            raise UserError("offset must be 0 or more")
        for bound in (self.margin_min, self.margin_max):
            if bound is not None and not math.isfinite(bound):
                raise UserError("margin bounds must be finite numbers")


@dataclass(frozen=True)
class Page:
    total: int
    rows: list[dict]


class SurvivalQueries:
    """Parameterised DuckDB queries over the Parquet ``files`` of a survival table.

    One in-memory database reads the files in place (nothing is copied, nothing written beside
    them); a lock serialises queries, which take milliseconds to a fraction of a second
    (``benchmarks/bench_explore.py``)."""

    def __init__(self, files: Sequence[str], aspect_ratios: Sequence[float]):
        if not files:
            raise UserError("the survival table has no Parquet parts")
        self._crop_index = {criteria.criterion_name(r): i + 1 for i, r in enumerate(aspect_ratios)}
        # DuckDB spills to ``.tmp`` in the working directory by default, which may be the run:
        # its spill folder is made (only if needed) under the system's temporary directory
        spill = os.path.join(tempfile.gettempdir(), f"cropaudit-explore-{os.getpid()}")
        self._con = duckdb.connect(":memory:", config={"temp_directory": spill})
        self._con.read_parquet(list(files)).create_view("survival")
        self._lock = threading.Lock()

    def _outcome(self, criterion: str) -> tuple[str, dict]:
        """The criterion's winner of a row, as SQL and its parameters."""
        if criterion == criteria.POINT:
            return "point_winner", {}
        if criterion not in self._crop_index:
            raise UserError(f"criterion {criterion!r} is not one of this run's")
        return "crops[$crop].winner", {"crop": self._crop_index[criterion]}

    def _stratum(self, c: Comparison) -> tuple[str, str, str, dict]:
        """(WHERE clause, outcome SQL, position SQL, parameters) of a comparison's rows, the
        outcome and position seen from face a, or from the group a ``group_vs_rest`` names."""
        outcome, params = self._outcome(c.criterion)
        where = "model_name = $model AND variant = $variant AND design = $design"
        params.update(model=c.model_name, variant=c.variant, design=c.design, ga=c.group_a)
        if c.comparison == "group_vs_rest":
            where += " AND group_a <> group_b AND (group_a = $ga OR group_b = $ga)"
            flip = "group_a <> $ga"
            outcome = f"CASE WHEN {flip} THEN {_SWAP.format(x=outcome)} ELSE {outcome} END"
            position = f"CASE WHEN {flip} THEN {_SWAP.format(x='position')} ELSE position END"
            return where, outcome, position, params
        if c.comparison != "pair":
            raise UserError(f"comparison must be pair or group_vs_rest, got {c.comparison!r}")
        params["gb"] = c.group_b
        return where + " AND group_a = $ga AND group_b = $gb", outcome, "position", params

    def page(self, comparison: Comparison, query: PageQuery) -> Page:
        """One page of the comparison's composites and how many match the filters."""
        query.check()
        where, outcome, position, params = self._stratum(comparison)
        inner = (
            f"SELECT {', '.join(LISTED)}, {outcome} AS outcome, {position} AS seen_position "
            f"FROM survival WHERE {where}"
        )
        filters = []
        for name, sql, value in (
            ("outcome", "outcome = $outcome", query.outcome),
            ("position", "seen_position = $position", query.position),
            ("mmin", "abs(margin) >= $mmin", query.margin_min),
            ("mmax", "abs(margin) <= $mmax", query.margin_max),
        ):
            if value is not None:
                filters.append(sql)
                params[name] = value
        base = f"FROM ({inner})" + (f" WHERE {' AND '.join(filters)}" if filters else "")
        # one scan: the count rides along as a window over the filtered rows
        ordered = (
            f"SELECT *, count(*) OVER () AS total {base} ORDER BY {ORDERS[query.order]} "
            "LIMIT $limit OFFSET $offset"
        )
        with self._lock:
            cursor = self._con.execute(
                ordered, {**params, "limit": query.limit, "offset": query.offset}
            )
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r)) for r in cursor.fetchall()]
            if rows:
                total = rows[0]["total"]
            else:  # past the last page
                total = self._con.execute(f"SELECT count(*) {base}", params).fetchone()[0]
        return Page(
            int(total), [_plain({k: v for k, v in r.items() if k != "total"}) for r in rows]
        )

    def siblings(self, composite_id: str) -> list[dict]:
        """Every row of the rendered composite ``composite_id`` belongs to: one per cropper
        (same sample, position and variant), in table order; empty for an unknown id."""
        sql = (
            "SELECT s.* FROM survival s JOIN (SELECT sample_id, variant FROM survival "
            "WHERE composite_id = $id LIMIT 1) k USING (sample_id, variant) "
            "ORDER BY s.composite_id"
        )
        with self._lock:
            frame = self._con.execute(sql, {"id": composite_id}).df()
        return [_plain(r) for r in frame.to_dict("records")]


def _plain(row: dict) -> dict:
    """Missing values as None (pandas reads a null text or integer as NaN)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
