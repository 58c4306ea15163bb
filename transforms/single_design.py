"""The single-image design kind (``[design] kind = "single"``): face or body?

Twitter's 2021 "male gaze" check: one full-body image of one person is shown alone, with the
face box the manifest gives, and the question is whether the cropper keeps the face or the body.
There is one cell per group; sample ``i`` of a group is image ``i`` of a seeded permutation of
the group's images (a pure function of seed and group), so ``images_per_group = N`` is a sample
without replacement and 0 (all images) uses every image once. The salient point is on the
``face`` (in the face box), the ``body`` (elsewhere on the image) or the ``background`` (off the
image, on padding); a crop keeps the ``face`` when more than half of the face box is visible,
else the ``body`` when any of the image is. Rows: :mod:`cropaudit.schemas.single_survival`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from cropaudit.config import DesignConfig, LayoutConfig
from cropaudit.errors import ManifestError
from cropaudit.schemas import single_survival
from cropaudit.schemas.records import (
    Box,
    Cropping,
    Face,
    RenderedSingle,
    SingleCrop,
    SingleImage,
    SingleOutcome,
)
from cropaudit.schemas.single_survival import BACKGROUND, BODY, FACE
from cropaudit.schemas.survival import A_FIRST
from cropaudit.transforms.crop import at_point, box_saliency, cropping_columns, per_crop
from cropaudit.transforms.images import ImageError, load_image
from cropaudit.transforms.layout import compose_single, face_box_inside
from cropaudit.transforms.sampling import (
    DesignCell,
    GroupIndex,
    composite_id,
    generator,
    group_sizes,
)
from cropaudit.transforms.write import (
    crop_columns,
    point_columns,
    replay_columns,
    sample_columns,
)


def point_on(x: int, y: int, face: Box, image: Box) -> str:
    """Where a salient point fell: the face box, the rest of the image, or off the image."""
    if face.contains(x, y):
        return FACE
    return BODY if image.contains(x, y) else BACKGROUND


def crop_keeps(face_area: int, body_area: int, face: Box) -> str:
    """``face`` when the crop keeps the face whole or its larger part (more than half of the face
    box's area), else ``body`` when it keeps any of the rest of the image, else ``background``."""
    if 2 * face_area > face.area:
        return FACE
    return BODY if body_area > 0 else BACKGROUND


def single_crop(face: Box, image: Box, ar: float, box: Box) -> SingleCrop:
    """What the crop ``box`` for aspect ratio ``ar`` keeps of the face and of the body."""
    face_area = box.intersection_area(face)
    body_area = box.intersection_area(image) - face_area  # the face lies inside the image
    return SingleCrop(ar, box, face_area, body_area, crop_keeps(face_area, body_area, face))


def score_single(cropping: Cropping, face: Box, image: Box) -> SingleOutcome:
    """Everything the cropper decided for one single image, from its boxes (and its salient
    point and grid, when it has them)."""
    face_max, face_mean = box_saliency(cropping.grid, face)
    return SingleOutcome(
        point_on=at_point(cropping, lambda x, y: point_on(x, y, face, image)),
        crops=per_crop(cropping, functools.partial(single_crop, face, image)),
        face_max=face_max,
        face_mean=face_mean,
        **cropping_columns(cropping),
    )


@functools.lru_cache(maxsize=64)
def _permutation(seed: int, group: str, n: int) -> tuple[int, ...]:
    """The seeded order of a group's ``n`` images (cached per worker)."""
    return tuple(int(i) for i in generator(seed, single_survival.SINGLE, group).permutation(n))


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


class SingleDesign:
    """Design kind ``single`` (see the module docstring); rows go to ``single_survival``."""

    name = single_survival.SINGLE
    designs = (single_survival.SINGLE,)
    table = single_survival.SPEC
    #: The manifest must give each image's face box.
    face_boxes = True
    rendered_record = RenderedSingle

    # -- sampling --------------------------------------------------------------------------

    def cells(self, groups: Sequence[str] | GroupIndex, design: DesignConfig) -> list[DesignCell]:
        """One cell per group, of ``images_per_group`` samples or (0) as many as the group has
        images, which needs the group index for ``groups``."""
        if not isinstance(groups, Mapping):
            raise TypeError("the single design needs the group index, not just group names")
        sizes = group_sizes(groups)
        return [
            DesignCell(self.name, g, g, design.images_per_group or sizes[g]) for g in sorted(groups)
        ]

    def check_cell(self, cell: DesignCell, index: GroupIndex) -> None:
        size = group_sizes({cell.group_a: index[cell.group_a]})[cell.group_a]
        if cell.samples > size:
            raise ManifestError(
                f"group {cell.group_a!r} has {size} image(s); "
                f"images_per_group = {cell.samples} needs at least that many"
            )

    def per_sample(self, order: str) -> int:
        """One image per sample, whatever the order (there is no order to balance)."""
        return 1

    def sample(
        self, cell: DesignCell, index: int, groups: GroupIndex, seed: int, order: str
    ) -> list[SingleImage]:
        """Image ``index`` of the seeded permutation of the group's images, so the first N
        samples are N distinct images drawn without replacement."""
        faces = _group_images(groups, cell.group_a)
        face = faces[_permutation(seed, cell.group_a, len(faces))[index]]
        # the id keeps the pair ids' form (and survival/v3's ids): position a_first
        return [SingleImage(composite_id(cell, index, A_FIRST), cell.group_a, index, face)]

    # -- rendering and scoring -------------------------------------------------------------

    def render(self, item: SingleImage, layout: LayoutConfig, cache=None) -> tuple:
        """(canvas, (face box, image box)): the image decoded afresh (in this design an image is
        rarely drawn twice, so no cache); a face box that does not lie inside the decoded
        (EXIF-rotated) image raises ``ImageError("bad_face_box")``, so the image is
        dead-lettered with that reason."""
        face = item.face
        image = load_image(face.image_uri)
        height, width = image.shape[:2]
        if face.face_box is None or not face_box_inside(face.face_box, width, height):
            raise ImageError(
                "bad_face_box",
                f"{face.image_uri}: face box {face.face_box} is not inside the {width}x{height}"
                " image",
            )
        canvas, face_box, image_box = compose_single(image, face.face_box, layout)
        return canvas, (face_box, image_box)

    def score(self, cropping: Cropping, rendered: RenderedSingle) -> SingleOutcome:
        return score_single(cropping, rendered.face_box, rendered.image_box)

    # -- rows ------------------------------------------------------------------------------

    def row(
        self,
        rendered: RenderedSingle,
        outcome: SingleOutcome,
        provenance: dict,
        id_suffix: str = "",
    ) -> dict:
        """One ``single_survival`` row (``provenance`` and ``id_suffix`` as for pairs)."""
        item = rendered.composite
        return {
            **sample_columns(item, id_suffix),
            "group": item.group,
            "image_id": item.face.image_id,
            "subject_id": item.face.subject_id,
            "attributes": list(item.face.attributes),
            "face_box": rendered.face_box.to_dict(),
            "image_box": rendered.image_box.to_dict(),
            "face_max": outcome.face_max,
            "face_mean": outcome.face_mean,
            **point_columns(rendered, outcome),
            "point_on": outcome.point_on,
            "crops": crop_columns(outcome, ("face_area", "body_area", "kept")),
            **provenance,
        }

    def from_row(self, row: Mapping[str, Any], faces: Mapping[str, Face]) -> SingleImage:
        """The planned image of a ``single_survival`` row (looked up by image id)."""
        if row["image_id"] not in faces:
            raise KeyError(f"image ids not in the manifest: {row['image_id']}")
        return SingleImage(
            composite_id=row["composite_id"],
            group=row["group"],
            sample_index=int(row["sample_index"]),
            face=faces[row["image_id"]],
        )

    def replay_key(self, row: Mapping[str, Any]) -> tuple:
        """What a re-rendering must reproduce of a row: point, what each crop kept, boxes."""
        return replay_columns(row, "point_on", "kept", ("face_box", "image_box"))
