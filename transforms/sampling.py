"""What every design kind samples with: the group index, seeded generators, cells and ids.

Sampling is a pure function of (seed, design, pair, index): each composite draws from its own
counter-based generator (Philox keyed by a hash of those values), never from worker or bundle
order, so every runner, parallelism and rerun yields the same composites.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cropaudit.schemas.records import Face


@dataclass(frozen=True, order=True)
class DesignCell:
    """One (design, group pair) cell of the design with its number of samples; a single-image
    cell has one group, repeated as ``group_b``."""

    design: str  # schemas.survival.DESIGNS or schemas.single_survival.SINGLE
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


def generator(seed: int, *parts: object) -> np.random.Generator:
    """The counter-based generator of one (seed, parts...) key."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=16).digest()
    key = int.from_bytes(digest, "little")
    return np.random.Generator(np.random.Philox(key=key))


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
