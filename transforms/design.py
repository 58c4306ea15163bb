"""The experiment design: which records the run plans (SampleComposites).

What is sampled, and how, belongs to the design kind (:mod:`cropaudit.transforms.design_kind`:
pairs of faces or single images); this module lays the kind's cells out as work units and
samples them in the pipeline. Sampling is a pure function of (seed, design, pair, index)
(:mod:`cropaudit.transforms.sampling`), so every runner, parallelism and rerun yields the same
records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam

from cropaudit.config import DesignConfig
from cropaudit.errors import ManifestError
from cropaudit.schemas.records import Planned
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.design_kind import design_kind, kind_of
from cropaudit.transforms.sampling import (
    DesignCell,
    GroupIndex,
    composite_id,
    group_sizes,
    index_groups,
    pair_key,
)

__all__ = [
    "DesignCell",
    "GroupIndex",
    "SampleComposites",
    "check_design",
    "composite_id",
    "design_cells",
    "expected_composites",
    "group_sizes",
    "index_groups",
    "pair_key",
    "sample_composites",
    "with_variants",
    "work_units",
]


def design_cells(groups: Sequence[str] | GroupIndex, design: DesignConfig) -> list[DesignCell]:
    """All cells of the design, as its kind lays them out (``DesignKind.cells``)."""
    return design_kind(design.kind).cells(groups, design)


def check_design(index: GroupIndex, cells: Sequence[DesignCell]) -> None:
    """Fail before the pipeline starts when a group is missing or too small for the design."""
    keys: set[tuple[str, str]] = set()
    for cell in cells:
        key = (cell.design, pair_key(cell.group_a, cell.group_b))
        if key in keys:  # a pair listed twice (or an 80-bit digest collision): ids would repeat
            raise ManifestError(
                f"{cell.design} cell {[cell.group_a, cell.group_b]} appears twice in the design"
            )
        keys.add(key)
        for group in {cell.group_a, cell.group_b}:
            if group not in index:
                known = ", ".join(sorted(index)) or "none"
                raise ManifestError(
                    f"group {group!r} used by the design has no valid faces (groups: {known})"
                )
        kind_of(cell.design).check_cell(cell, index)


def sample_composites(
    cell: DesignCell, index: int, groups: GroupIndex, seed: int, order: str
) -> list[Any]:
    """The planned record(s) of sample ``index`` of ``cell`` (``DesignKind.sample``)."""
    return kind_of(cell.design).sample(cell, index, groups, seed, order)


def expected_composites(cells: Sequence[DesignCell], order: str, variants: int = 1) -> int:
    return sum(c.samples * kind_of(c.design).per_sample(order) for c in cells) * variants


def with_variants(composite: Any, variants: Sequence[str]) -> list[Any]:
    """One copy of a sampled composite per sweep variant (same faces, same position): the
    ``base`` copy keeps the id, the others get ``@<variant>`` appended. Sampling happens before
    this, so it never depends on the variant."""
    return [
        dataclasses.replace(
            composite,
            composite_id=composite.composite_id
            if v == BASE_VARIANT
            else f"{composite.composite_id}@{v}",
            variant=v,
        )
        for v in variants
    ]


#: Sample indices per work unit: enough to amortise the per-unit cost, few enough to spread.
UNIT_SAMPLES = 32

WorkUnit = tuple  # (DesignCell, first sample index, stop index, variant)


def work_units(
    cell: DesignCell, variants: Sequence[str] = (BASE_VARIANT,), size: int = UNIT_SAMPLES
) -> Iterator[WorkUnit]:
    """The cell's sample indices in ranges of ``size``, once per variant."""
    for variant in variants:
        for start in range(0, cell.samples, size):
            yield cell, start, min(start + size, cell.samples), variant


@beam.typehints.with_input_types(GroupIndex)
@beam.typehints.with_output_types(Planned)
class SampleComposites(beam.PTransform):
    """Design cells -> every planned record (``Composite``, ``SingleImage``), given the faces as
    a side input; with sweep ``variants``, each sampled record once per variant
    (:func:`with_variants`)."""

    def __init__(
        self,
        cells: Sequence[DesignCell],
        seed: int,
        order: str,
        variants: Sequence[str] = (BASE_VARIANT,),
    ):
        super().__init__()
        self._cells = list(cells)
        self._seed = seed
        self._order = order
        self._variants = tuple(variants)

    def expand(self, group_index):
        seed, order, variants = self._seed, self._order, self._variants

        def sample_unit(unit: WorkUnit, groups: GroupIndex) -> Iterator[Any]:
            cell, start, stop, variant = unit
            for i in range(start, stop):
                for composite in sample_composites(cell, i, groups, seed, order):
                    yield from with_variants(composite, (variant,))

        # Only small work units cross the reshuffle: composites are made after it, in the
        # fused stage that renders them, so no runner ever holds all composites at once.
        return (
            group_index.pipeline
            | "DesignCells" >> beam.Create(self._cells)
            | "WorkUnits" >> beam.FlatMap(work_units, variants)
            | "Spread" >> beam.Reshuffle()
            | "Sample"
            >> beam.FlatMap(
                sample_unit, groups=beam.pvalue.AsSingleton(group_index)
            ).with_output_types(Planned)
        )
