"""Each criterion's winners of a survival table, and which criteria agree row for row.

A run scores every composite by several criteria (the salient point, each crop aspect ratio);
for most croppers several of them pick the same face in every composite. Such criteria are one
finding, not several: the findings show them once, naming all of them. Equal counts per stratum
would not prove it (the same wins can fall on different composites); only the rows can, so the
statistics stage records it while it reads them (:class:`WinnerIdentity`), per design (the key
fields up to ``design``): criteria identical over a design's rows are identical in each of its
comparisons.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cropaudit.errors import UserError
from cropaudit.schemas.criteria import POINT, criterion_name
from cropaudit.stats.bootstrap import OUTCOME_CODE


def codes(values: pa.Array | pa.ChunkedArray, names: dict[str, int], column: str) -> np.ndarray:
    """Integer codes of a string column, ``names`` mapping value -> code; unknown values are a
    ``UserError`` (a survival table this version cannot read), never a silent drop."""
    found = pd.Categorical(values.to_numpy(zero_copy_only=False), categories=list(names)).codes
    if (found < 0).any():
        raw = np.asarray(values.to_numpy(zero_copy_only=False))
        bad = sorted({str(v) for v in raw[found < 0]})
        raise UserError(f"survival column {column} has unknown values {bad[:5]}")
    return found.astype(np.int64)


def criterion_outcomes(table: pa.Table) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(criterion, row indices, outcome codes) of a survival table: the salient point for the
    rows that have one (a box-only cropper has none) and each crop aspect ratio for the rows
    that have it."""
    point = table["point_winner"]
    rows = np.flatnonzero(pc.is_valid(point).to_numpy(zero_copy_only=False))
    if len(rows):
        yield POINT, rows, codes(point.take(pa.array(rows)), OUTCOME_CODE, "point")
    crops = pa.concat_arrays(table["crops"].chunks) if table.num_rows else None
    if crops is None or len(crops) == 0:
        return
    flat = pc.list_flatten(crops)
    parents = pc.list_parent_indices(crops).to_numpy()
    ratios = flat.field("aspect_ratio").to_numpy(zero_copy_only=False)
    winners = codes(flat.field("winner"), OUTCOME_CODE, "crops.winner")
    for ratio in np.unique(ratios):
        keep = ratios == ratio
        yield criterion_name(float(ratio)), parents[keep], winners[keep]


@dataclass
class WinnerIdentity:
    """Per design key: the criteria seen and the pairs of criteria whose winners differ in some
    row (a criterion a row lacks counts as a winner of its own). Merges like a Beam
    accumulator; :meth:`identical` gives the answer."""

    seen: dict[tuple, set[str]] = field(default_factory=dict)
    differ: dict[tuple, set[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, table: pa.Table, key_fields: Sequence[str]) -> WinnerIdentity:
        """The identity of one survival table's rows, keyed by ``key_fields``."""
        out = cls()
        if table.num_rows == 0:
            return out
        frame = pd.DataFrame({f: table[f].to_numpy(zero_copy_only=False) for f in key_fields})
        key_of_row = frame.groupby(list(key_fields), sort=False).ngroup().to_numpy()
        keys = list(frame.drop_duplicates(list(key_fields)).itertuples(index=False, name=None))
        wide: dict[str, np.ndarray] = {}
        for criterion, rows, outcome in criterion_outcomes(table):
            column = np.full(table.num_rows, -1, dtype=np.int64)
            column[rows] = outcome
            wide[criterion] = column
        for k, key in enumerate(keys):
            present = {c for c, col in wide.items() if (col[key_of_row == k] >= 0).any()}
            out.seen[key] = present
            out.differ[key] = set()
        for a, b in itertools.combinations(sorted(wide), 2):
            for k in np.unique(key_of_row[wide[a] != wide[b]]):
                out.differ[keys[k]].add((a, b))
        return out

    def merge(self, other: WinnerIdentity) -> WinnerIdentity:
        for key, criteria in other.seen.items():
            self.seen.setdefault(key, set()).update(criteria)
            self.differ.setdefault(key, set()).update(other.differ.get(key, ()))
        return self

    def identical(self) -> dict[tuple, dict[str, list[str]]]:
        """Per design key and criterion: every criterion (itself included, sorted) whose winners
        equal its own in every row of the design."""
        out: dict[tuple, dict[str, list[str]]] = {}
        for key, criteria in self.seen.items():
            differ = self.differ.get(key, set())
            out[key] = {
                c: sorted(d for d in criteria if d == c or tuple(sorted((c, d))) not in differ)
                for c in criteria
            }
        return out


def identical_criteria(
    identity: WinnerIdentity | None, rows: Sequence[Mapping[str, Any]], design_fields: Sequence[str]
) -> list[list[str]]:
    """Each estimates row's ``identical_criteria``: the criteria of its design that ``identity``
    found identical to its own and that some row of ``rows`` analyses (its own alone without
    ``identity``: a plain table's rows are not linked across criteria)."""
    same = identity.identical() if identity is not None else {}
    analysed: dict[tuple, set[str]] = {}
    for r in rows:
        analysed.setdefault(tuple(r[f] for f in design_fields), set()).add(r["criterion"])
    out = []
    for r in rows:
        key = tuple(r[f] for f in design_fields)
        found = same.get(key, {}).get(r["criterion"], [r["criterion"]])
        out.append([c for c in found if c in analysed[key]])
    return out
