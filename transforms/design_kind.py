"""A design kind is one object: how it samples, renders, attributes the winner and writes rows.

:class:`DesignKind` is what the pipeline, the gallery and the tests ask of a kind; the kinds are
:class:`~cropaudit.transforms.pair_design.PairDesign` (two faces, ``survival`` table) and
:class:`~cropaudit.transforms.single_design.SingleDesign` (one full-body image,
``single_survival`` table). A new kind is one module implementing the protocol, its schema in
``schemas/``, and its line in :data:`KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cropaudit.config import DesignConfig, LayoutConfig
from cropaudit.schemas.records import Cropping, Face
from cropaudit.schemas.table_rows import TableSpec
from cropaudit.transforms.pair_design import PairDesign
from cropaudit.transforms.sampling import DesignCell, GroupIndex
from cropaudit.transforms.single_design import SingleDesign


@runtime_checkable
class DesignKind(Protocol):
    #: ``[design] kind`` of the config; the ``design`` values of its cells and records.
    name: str
    designs: tuple[str, ...]
    #: Its table: folder in the run directory, version the files record, schema.
    table: TableSpec
    #: Whether the manifest must give face boxes.
    face_boxes: bool
    #: The rendered record that travels on to the cropper (``on_canvas`` makes one).
    rendered_record: type

    def cells(
        self, groups: Sequence[str] | GroupIndex, design: DesignConfig
    ) -> list[DesignCell]: ...

    def check_cell(self, cell: DesignCell, index: GroupIndex) -> None:
        """Raise ``ManifestError`` when the groups cannot fill ``cell``."""

    def per_sample(self, order: str) -> int:
        """Planned records per sample under ``order``."""

    def sample(
        self, cell: DesignCell, index: int, groups: GroupIndex, seed: int, order: str
    ) -> list[Any]:
        """The planned record(s) of sample ``index`` of ``cell``: a pure function."""

    def render(self, item: Any, layout: LayoutConfig, cache: Any) -> tuple[np.ndarray, tuple]:
        """(canvas, boxes) of a planned record; ``ImageError`` dead-letters it."""

    def score(self, cropping: Cropping, rendered: Any) -> Any:
        """The outcome: who or what the salient point and each crop keep."""

    def row(self, rendered: Any, outcome: Any, provenance: dict, id_suffix: str = "") -> dict:
        """One row of the kind's table."""

    def from_row(self, row: Mapping[str, Any], faces: Mapping[str, Face]) -> Any:
        """The planned record a row was made from (the gallery re-renders it)."""

    def replay_key(self, row: Mapping[str, Any]) -> tuple:
        """The part of a row a re-rendering must reproduce."""


#: Every design kind by name (``[design] kind``).
KINDS: dict[str, DesignKind] = {k.name: k for k in (PairDesign(), SingleDesign())}
#: Row design (``pairs``, a control, ``single``) -> its kind.
BY_DESIGN: dict[str, DesignKind] = {d: k for k in KINDS.values() for d in k.designs}


def design_kind(name: str) -> DesignKind:
    """The kind of ``[design] kind = name``."""
    return KINDS[name]


def kind_of(design: str) -> DesignKind:
    """The kind a cell's or record's ``design`` belongs to (``same_image`` -> pairs)."""
    try:
        return BY_DESIGN[design]
    except KeyError:
        raise ValueError(f"unknown design {design!r}") from None
