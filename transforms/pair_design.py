"""The pair design kind: two faces side by side (or one above the other), who survives the crop.

Cells are group pairs (all unordered pairs by default) plus the controls (``same_group``: two
subjects of one group; ``same_image``: one image twice). A sample draws a subject uniformly,
then one of its images, for each side, and is shown in both orders when counterbalanced. The
winner is the face the salient point lands on, and per crop the face with the larger visible
area (:mod:`cropaudit.transforms.crop`). Rows: :mod:`cropaudit.schemas.survival`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cropaudit.config import DesignConfig, LayoutConfig
from cropaudit.errors import ManifestError
from cropaudit.schemas import survival
from cropaudit.schemas.records import (
    Box,
    Composite,
    CropOutcome,
    Cropping,
    Face,
    RenderedComposite,
)
from cropaudit.transforms.crop import score_rendered
from cropaudit.transforms.layout import compose
from cropaudit.transforms.sampling import (
    DesignCell,
    GroupIndex,
    composite_id,
    generator,
)
from cropaudit.transforms.write import (
    crop_columns,
    point_columns,
    replay_columns,
    sample_columns,
)


def _draw_face(rng: np.random.Generator, subjects: Mapping[str, tuple[Face, ...]]) -> Face:
    """A subject uniformly, then one of that subject's images uniformly."""
    ids = list(subjects)
    faces = subjects[ids[int(rng.integers(len(ids)))]]
    return faces[int(rng.integers(len(faces)))]


def _face_columns(side: str, face: Face, group: str, box: Box, fmax: float, fmean: float) -> dict:
    return {
        f"{side}_image_id": face.image_id,
        f"{side}_subject_id": face.subject_id,
        f"{side}_group": group,
        f"{side}_attributes": list(face.attributes),
        f"{side}_box": box.to_dict(),
        f"{side}_max": fmax,
        f"{side}_mean": fmean,
    }


class PairDesign:
    """Design kind ``pairs`` (see the module docstring); rows go to the ``survival`` table."""

    name = survival.PAIRS
    designs = survival.DESIGNS
    table = survival.SPEC
    #: The manifest needs no face boxes: whole face crops are shown.
    face_boxes = False
    rendered_record = RenderedComposite

    # -- sampling --------------------------------------------------------------------------

    def cells(self, groups: Sequence[str] | GroupIndex, design: DesignConfig) -> list[DesignCell]:
        """Group pairs (``design.pairs``, else every unordered pair) and the controls."""
        groups = sorted(groups)
        if design.pairs:
            pairs = [tuple(p) for p in design.pairs]
        else:
            pairs = list(itertools.combinations(groups, 2))
        cells = [DesignCell(survival.PAIRS, a, b, design.composites_per_pair) for a, b in pairs]
        for control in design.controls:
            cells += [DesignCell(control, g, g, design.controls_per_group) for g in groups]
        return cells

    def check_cell(self, cell: DesignCell, index: GroupIndex) -> None:
        if cell.design == survival.SAME_GROUP and len(index[cell.group_a]) < 2:
            raise ManifestError(
                f"group {cell.group_a!r} has {len(index[cell.group_a])} subject(s); the "
                "same_group control needs at least 2"
            )

    def per_sample(self, order: str) -> int:
        """Composites per sample: both positions when counterbalanced."""
        return 2 if order == "counterbalanced" else 1

    def sample(
        self, cell: DesignCell, index: int, groups: GroupIndex, seed: int, order: str
    ) -> list[Composite]:
        """The composite(s) of sample ``index`` of ``cell``: both orders when counterbalanced."""
        rng = generator(seed, cell.design, cell.group_a, cell.group_b, index)
        if cell.design == survival.PAIRS:
            face_a = _draw_face(rng, groups[cell.group_a])
            face_b = _draw_face(rng, groups[cell.group_b])
        elif cell.design == survival.SAME_GROUP:
            subjects = groups[cell.group_a]
            ids = list(subjects)
            i, j = rng.choice(len(ids), size=2, replace=False)
            face_a = _draw_face(rng, {ids[i]: subjects[ids[i]]})
            face_b = _draw_face(rng, {ids[j]: subjects[ids[j]]})
        elif cell.design == survival.SAME_IMAGE:
            face_a = face_b = _draw_face(rng, groups[cell.group_a])
        else:
            raise ValueError(f"unknown design {cell.design!r}")
        if order == "counterbalanced":
            positions = survival.POSITIONS
        elif order == "fixed":
            positions = (survival.A_FIRST,)
        else:
            positions = (survival.POSITIONS[int(rng.integers(2))],)
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

    # -- rendering and scoring -------------------------------------------------------------

    def render(self, composite: Composite, layout: LayoutConfig, cache) -> tuple:
        """(canvas, (box of face a, box of face b)); ``cache`` prepares faces (render.FaceCache)."""
        first, second = composite.faces_in_order()
        canvas, box_first, box_second = compose(cache.get(first), cache.get(second), layout)
        if composite.position == survival.A_FIRST:
            return canvas, (box_first, box_second)
        return canvas, (box_second, box_first)

    def score(self, cropping: Cropping, rendered: RenderedComposite) -> CropOutcome:
        """Who survives: the face the point lands on, the larger visible face per crop."""
        return score_rendered(cropping, rendered)

    # -- rows ------------------------------------------------------------------------------

    def row(
        self,
        rendered: RenderedComposite,
        outcome: CropOutcome,
        provenance: dict,
        id_suffix: str = "",
    ) -> dict:
        """One survival-table row; ``provenance`` holds the columns shared by every row of the
        composite's variant and cropper (model, layout, layout params, preprocessing, seed,
        config hash, versions); ``id_suffix`` as in :func:`sample_columns`."""
        c = rendered.composite
        return {
            **sample_columns(c, id_suffix),
            "design": c.design,
            "pair_id": c.pair_id,
            "group_a": c.group_a,
            "group_b": c.group_b,
            "position": c.position,
            **_face_columns(
                "a", c.face_a, c.group_a, rendered.box_a, outcome.a_max, outcome.a_mean
            ),
            **_face_columns(
                "b", c.face_b, c.group_b, rendered.box_b, outcome.b_max, outcome.b_mean
            ),
            **point_columns(rendered, outcome),
            "image_box": None,  # survival/v3's single rows only
            "point_winner": outcome.point_winner,
            "margin": outcome.margin,
            "crops": crop_columns(outcome, ("a_area", "b_area", "winner")),
            **provenance,
        }

    def from_row(self, row: Mapping[str, Any], faces: Mapping[str, Face]) -> Composite:
        """The planned composite of a survival row (faces looked up by image id)."""
        missing = [str(row[k]) for k in ("a_image_id", "b_image_id") if row[k] not in faces]
        if missing:
            raise KeyError(f"image ids not in the manifest: {', '.join(missing)}")
        return Composite(
            composite_id=row["composite_id"],
            design=row["design"],
            group_a=row["group_a"],
            group_b=row["group_b"],
            sample_index=int(row["sample_index"]),
            position=row["position"],
            face_a=faces[row["a_image_id"]],
            face_b=faces[row["b_image_id"]],
        )

    def replay_key(self, row: Mapping[str, Any]) -> tuple:
        """What a re-rendering must reproduce of a row: point, winners and boxes."""
        return replay_columns(row, "point_winner", "winner", ("a_box", "b_box"))
