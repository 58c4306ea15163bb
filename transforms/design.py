"""The experiment design: which faces meet in which composite (SampleComposites).

Sampling is a pure function of (seed, design, pair, index): each composite draws from its own
counter-based generator (Philox keyed by a hash of those values), never from worker or bundle
order, so every runner, parallelism and rerun yields the same composites.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from cropaudit.config import DesignConfig
from cropaudit.errors import ManifestError
from cropaudit.transforms.records import Composite, Face


@dataclass(frozen=True, order=True)
class DesignCell:
    """One (design, group pair) cell of the design with its number of samples."""

    design: str  # pairs | same_group | same_image
    group_a: str
    group_b: str
    samples: int


#: Group label -> subject id -> that subject's faces; all sorted, so sampling is reproducible.
GroupIndex = Mapping[str, Mapping[str, tuple[Face, ...]]]


def index_groups(faces: Iterable[Face], attributes: Sequence[str]) -> dict[str, dict[str, tuple]]:
    """Index faces by group label and subject (sorted), the structure sampling draws from."""
    index: dict[str, dict[str, list[Face]]] = {}
    for face in faces:
        index.setdefault(face.group(tuple(attributes)), {}).setdefault(face.subject_id, []).append(
            face
        )
    return {
        g: {s: tuple(sorted(fs)) for s, fs in sorted(subjects.items())}
        for g, subjects in sorted(index.items())
    }


def design_cells(groups: Sequence[str], design: DesignConfig) -> list[DesignCell]:
    """All cells of the design: group pairs (all unordered pairs by default) and controls."""
    groups = sorted(groups)
    if design.pairs:
        pairs = [tuple(p) for p in design.pairs]
    else:
        pairs = list(itertools.combinations(groups, 2))
    cells = [DesignCell("pairs", a, b, design.composites_per_pair) for a, b in pairs]
    for control in design.controls:
        cells += [DesignCell(control, g, g, design.controls_per_group) for g in groups]
    return cells


def check_design(index: GroupIndex, cells: Sequence[DesignCell]) -> None:
    """Fail before the pipeline starts when a group is missing or too small for the design."""
    for cell in cells:
        for group in {cell.group_a, cell.group_b}:
            if group not in index:
                known = ", ".join(sorted(index)) or "none"
                raise ManifestError(
                    f"group {group!r} used by the design has no valid faces (groups: {known})"
                )
        if cell.design == "same_group" and len(index[cell.group_a]) < 2:
            raise ManifestError(
                f"group {cell.group_a!r} has {len(index[cell.group_a])} subject(s); the "
                "same_group control needs at least 2"
            )


def _generator(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=16).digest()
    key = int.from_bytes(digest, "little")
    return np.random.Generator(np.random.Philox(key=key))


def _draw_face(rng: np.random.Generator, subjects: Mapping[str, tuple[Face, ...]]) -> Face:
    """A subject uniformly, then one of that subject's images uniformly."""
    ids = list(subjects)
    faces = subjects[ids[int(rng.integers(len(ids)))]]
    return faces[int(rng.integers(len(faces)))]


def composite_id(cell: DesignCell, index: int, position: str) -> str:
    return f"{cell.design}:{cell.group_a}~{cell.group_b}:{index:06d}:{position}"


def sample_composites(
    cell: DesignCell, index: int, groups: GroupIndex, seed: int, order: str
) -> list[Composite]:
    """The composite(s) of sample ``index`` of ``cell``: both orders when counterbalanced."""
    rng = _generator(seed, cell.design, cell.group_a, cell.group_b, index)
    if cell.design == "pairs":
        face_a = _draw_face(rng, groups[cell.group_a])
        face_b = _draw_face(rng, groups[cell.group_b])
    elif cell.design == "same_group":
        subjects = groups[cell.group_a]
        ids = list(subjects)
        i, j = rng.choice(len(ids), size=2, replace=False)
        face_a = _draw_face(rng, {ids[i]: subjects[ids[i]]})
        face_b = _draw_face(rng, {ids[j]: subjects[ids[j]]})
    elif cell.design == "same_image":
        face_a = face_b = _draw_face(rng, groups[cell.group_a])
    else:
        raise ValueError(f"unknown design {cell.design!r}")
    if order == "counterbalanced":
        positions = ("a_first", "b_first")
    else:
        positions = (("a_first", "b_first")[int(rng.integers(2))],)
    return [
        Composite(
            composite_id=composite_id(cell, index, pos),
            design=cell.design,
            group_a=cell.group_a,
            group_b=cell.group_b,
            sample_index=index,
            position=pos,
            face_a=face_a,
            face_b=face_b,
        )
        for pos in positions
    ]


def expected_composites(cells: Sequence[DesignCell], order: str) -> int:
    per_sample = 2 if order == "counterbalanced" else 1
    return sum(c.samples for c in cells) * per_sample


class SampleComposites(beam.PTransform):
    """Design cells -> every planned :class:`Composite`, given the faces as a side input."""

    def __init__(self, cells: Sequence[DesignCell], seed: int, order: str):
        super().__init__()
        self._cells = list(cells)
        self._seed = seed
        self._order = order

    def expand(self, group_index):
        seed, order = self._seed, self._order
        return (
            group_index.pipeline
            | "DesignCells" >> beam.Create(self._cells)
            | "SampleIndices" >> beam.FlatMap(lambda c: ((c, i) for i in range(c.samples)))
            | "Spread" >> beam.Reshuffle()
            | "Sample"
            >> beam.FlatMap(
                lambda unit, groups: sample_composites(unit[0], unit[1], groups, seed, order),
                groups=beam.pvalue.AsSingleton(group_index),
            )
        )
