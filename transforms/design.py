"""The experiment design: which faces meet in which composite (SampleComposites).

Sampling is a pure function of (seed, design, pair, index): each composite draws from its own
counter-based generator (Philox keyed by a hash of those values), never from worker or bundle
order, so every runner, parallelism and rerun yields the same composites.

The ``single`` design (design kind ``single``, the "male gaze" check) has one cell per group and
one image per composite: sample ``i`` of a group is image ``i`` of a seeded permutation of the
group's images (a pure function of seed and group), so ``images_per_group = N`` is a sample
without replacement and 0 (all images) uses every image once.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from cropaudit.config import DesignConfig
from cropaudit.errors import ManifestError
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.records import Composite, Face


@dataclass(frozen=True, order=True)
class DesignCell:
    """One (design, group pair) cell of the design with its number of samples."""

    design: str  # pairs | same_group | same_image | single
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


def group_sizes(groups: GroupIndex) -> dict[str, int]:
    """Number of images per group."""
    return {g: sum(len(faces) for faces in subjects.values()) for g, subjects in groups.items()}


def design_cells(groups: Sequence[str] | GroupIndex, design: DesignConfig) -> list[DesignCell]:
    """All cells of the design: group pairs (all unordered pairs by default) and controls; for
    the ``single`` kind one cell per group, of ``images_per_group`` samples or (0) as many as the
    group has images, which needs the group index for ``groups``."""
    if design.kind == "single":
        if not isinstance(groups, Mapping):
            raise TypeError("the single design needs the group index, not just group names")
        sizes = group_sizes(groups)
        return [
            DesignCell("single", g, g, design.images_per_group or sizes[g]) for g in sorted(groups)
        ]
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
    sizes = group_sizes(index)
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
        if cell.design == "single" and cell.samples > sizes[cell.group_a]:
            raise ManifestError(
                f"group {cell.group_a!r} has {sizes[cell.group_a]} image(s); "
                f"images_per_group = {cell.samples} needs at least that many"
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


@functools.lru_cache(maxsize=64)
def _permutation(seed: int, group: str, n: int) -> tuple[int, ...]:
    """The seeded order of a group's ``n`` images in the single design (cached per worker)."""
    return tuple(int(i) for i in _generator(seed, "single", group).permutation(n))


#: (id of a group index, group) -> (that index, its images in order); see :func:`_group_images`.
_GROUP_IMAGES: dict[tuple[int, str], tuple[GroupIndex, tuple[Face, ...]]] = {}


def _group_images(groups: GroupIndex, group: str) -> tuple[Face, ...]:
    """The group's images sorted by subject, then image; built once per (side-input index,
    group), not once per sample, which would make a large single design quadratic. The entry
    holds its index, so an id reused by a later index is never mistaken for it."""
    key = (id(groups), group)
    hit = _GROUP_IMAGES.get(key)
    if hit is None or hit[0] is not groups:
        if len(_GROUP_IMAGES) > 64:
            _GROUP_IMAGES.clear()
        hit = _GROUP_IMAGES[key] = (groups, tuple(f for fs in groups[group].values() for f in fs))
    return hit[1]


def _single_face(cell: DesignCell, index: int, groups: GroupIndex, seed: int) -> Face:
    """Image ``index`` of the seeded permutation of the group's images, so the first N samples
    are N distinct images drawn without replacement."""
    faces = _group_images(groups, cell.group_a)
    return faces[_permutation(seed, cell.group_a, len(faces))[index]]


def pair_key(group_a: str, group_b: str) -> str:
    """A fixed-length digest of the (ordered) group pair over an unambiguous encoding (a JSON
    list), so that no two pairs of labels, whatever characters they hold, share a key; a label
    containing an old separator (``~``, ``:``) can no longer make two cells' ids collide."""
    encoded = json.dumps([group_a, group_b]).encode("ascii")  # ensure_ascii: any str encodes
    return hashlib.blake2b(encoded, digest_size=10).hexdigest()


def composite_id(cell: DesignCell, index: int, position: str) -> str:
    """``<design>:<pair key>:<index>:<position>``: every part but the key comes from a fixed
    vocabulary, and the key is a digest of the labels (:func:`pair_key`), never the labels."""
    return f"{cell.design}:{pair_key(cell.group_a, cell.group_b)}:{index:06d}:{position}"


def sample_composites(
    cell: DesignCell, index: int, groups: GroupIndex, seed: int, order: str
) -> list[Composite]:
    """The composite(s) of sample ``index`` of ``cell``: both orders when counterbalanced; a
    ``single`` composite is one image (``face_b`` is ``face_a``), always ``a_first``."""
    if cell.design == "single":
        face = _single_face(cell, index, groups, seed)
        return [
            Composite(
                composite_id=composite_id(cell, index, "a_first"),
                design="single",
                group_a=cell.group_a,
                group_b=cell.group_a,
                sample_index=index,
                position="a_first",
                face_a=face,
                face_b=face,
            )
        ]
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
    elif order == "fixed":
        positions = ("a_first",)
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


def expected_composites(cells: Sequence[DesignCell], order: str, variants: int = 1) -> int:
    per_sample = 2 if order == "counterbalanced" else 1
    return sum(c.samples * (1 if c.design == "single" else per_sample) for c in cells) * variants


def with_variants(composite: Composite, variants: Sequence[str]) -> list[Composite]:
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
@beam.typehints.with_output_types(Composite)
class SampleComposites(beam.PTransform):
    """Design cells -> every planned :class:`Composite`, given the faces as a side input; with
    sweep ``variants``, each sampled composite once per variant (:func:`with_variants`)."""

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

        def sample_unit(unit: WorkUnit, groups: GroupIndex) -> Iterator[Composite]:
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
            ).with_output_types(Composite)
        )
