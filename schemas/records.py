"""Typed records that flow between pipeline stages (nouns; the stages are verbs).

manifest row -> :class:`Face`; design -> :class:`Composite` (two faces; a plan, no pixels) or
:class:`SingleImage` (one full-body image); render -> :class:`RenderedComposite` /
:class:`RenderedSingle` (model input + boxes); infer -> ``SaliencyGrid`` (a saliency model) or
:class:`Cropping` (a box cropper); crop -> :class:`CropOutcome` / :class:`SingleOutcome`; write ->
a row of the design's survival table (``schemas.survival``, ``schemas.single_survival``).
Anything that cannot go on becomes a :class:`DeadLetter` with a reason code. These records are
the bottom layer: models, transforms and the report import them, they import nothing of ours
but the schemas' vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cropaudit.schemas.single_survival import SINGLE
from cropaudit.schemas.survival import A_FIRST
from cropaudit.schemas.variants import BASE_VARIANT


@dataclass(frozen=True, order=True)
class Face:
    """One image of one person, with its demographic attributes (sorted name/value pairs) and,
    for the ``single`` design, the face box (x, y, w, h) in the displayed image's pixels."""

    image_id: str
    image_uri: str
    subject_id: str
    attributes: tuple[tuple[str, str], ...]
    face_box: tuple[float, float, float, float] | None = None

    def attribute(self, name: str) -> str:
        return dict(self.attributes)[name]

    def group(self, names: tuple[str, ...]) -> str:
        """The group label for an attribute tuple, e.g. ``B/F`` for (race, gender)."""
        values = dict(self.attributes)
        return "/".join(values[n] for n in names)


@dataclass(frozen=True)
class DeadLetter:
    """A row that could not go on, and why. ``reason`` is a short stable code."""

    stage: str
    reason: str
    element_id: str
    detail: str
    record: dict[str, Any] = field(default_factory=dict)

    def to_row(self, config_hash: str) -> dict[str, str]:
        return {
            "stage": self.stage,
            "reason": self.reason,
            "element_id": self.element_id,
            "detail": self.detail[:2000],
            "record": json.dumps(self.record, sort_keys=True, default=str)[:10000],
            "config_hash": config_hash,
        }


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def intersection_area(self, other: Box) -> int:
        iw = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        ih = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return max(0, iw) * max(0, ih)

    def contains(self, px: int, py: int) -> bool:
        return self.x <= px < self.x + self.w and self.y <= py < self.y + self.h

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}

    @classmethod
    def from_dict(cls, value: Any) -> Box:
        """A box column's value (``schemas.survival.BOX``) as a :class:`Box`."""
        return cls(int(value["x"]), int(value["y"]), int(value["w"]), int(value["h"]))


@dataclass(frozen=True)
class Composite:
    """A planned pair composite: which two faces, in which order. Deterministic from the design.

    In a sweep the same sampled composite is rendered once per ``variant``; its id then ends in
    ``@<variant>`` (the ``base`` variant keeps the plain id), and :attr:`sample_id`, the id
    without that suffix, matches the renderings of one sample across variants.
    """

    composite_id: str
    design: str  # schemas.survival.DESIGNS: pairs | same_group | same_image
    group_a: str
    group_b: str
    sample_index: int
    position: str  # a_first | b_first
    face_a: Face
    face_b: Face
    variant: str = BASE_VARIANT

    @property
    def sample_id(self) -> str:
        """The variant-independent id: the composite id without its ``@<variant>`` suffix."""
        return _sample_id(self.composite_id, self.variant)

    @property
    def pair_id(self) -> str:
        return f"{self.group_a} vs {self.group_b}"

    def faces_in_order(self) -> tuple[Face, Face]:
        if self.position == A_FIRST:
            return self.face_a, self.face_b
        return self.face_b, self.face_a

    def record(self) -> dict[str, str]:
        """What a dead letter of this composite records."""
        return {
            "composite_id": self.composite_id,
            "a_image_id": self.face_a.image_id,
            "b_image_id": self.face_b.image_id,
            "position": self.position,
            "design": self.design,
        }


def _sample_id(composite_id: str, variant: str) -> str:
    if variant == BASE_VARIANT:
        return composite_id
    return composite_id[: -len(variant) - 1]


@dataclass(frozen=True)
class SingleImage:
    """A planned single image (the face-or-body design): one full-body image of one person,
    shown alone. Ids and sweep variants work as for :class:`Composite`."""

    composite_id: str
    group: str
    sample_index: int
    face: Face
    variant: str = BASE_VARIANT
    design: ClassVar[str] = SINGLE

    @property
    def sample_id(self) -> str:
        return _sample_id(self.composite_id, self.variant)

    def record(self) -> dict[str, str]:
        """What a dead letter of this image records."""
        return {
            "composite_id": self.composite_id,
            "image_id": self.face.image_id,
            "design": self.design,
        }


@dataclass(frozen=True, kw_only=True)
class _OnCanvas:
    """What every rendered record carries besides its item and boxes (keyword-only, so each
    kind's own fields come first and positional): the canvas size and the cropper's input."""

    width: int
    height: int
    model_input: np.ndarray = field(compare=False, repr=False)
    #: Which of the run's croppers ``model_input`` is for (its index; 0 in a one-model run).
    model: int = 0

    @classmethod
    def on_canvas(cls, item, canvas: np.ndarray, boxes: tuple, model_input, model: int):
        """The record of ``item`` rendered on ``canvas`` with its ``boxes`` (in field order)."""
        return cls(
            item, *boxes, width=canvas.shape[1], height=canvas.shape[0],
            model_input=model_input, model=model,
        )  # fmt: skip


@dataclass(frozen=True)
class RenderedComposite(_OnCanvas):
    """A composite after rendering and pre-processing: only the small model input travels on."""

    composite: Composite
    box_a: Box
    box_b: Box


@dataclass(frozen=True)
class RenderedSingle(_OnCanvas):
    """A single image after rendering: its face box and where the whole image lies on the
    canvas (padding around it is background)."""

    composite: SingleImage
    face_box: Box
    image_box: Box


@dataclass(frozen=True)
class Cropping:
    """What a cropper decided for one image: one crop box per requested aspect ratio (in the
    order asked), plus the salient point ``(x, y, score)`` and the saliency grid when the
    cropper is a saliency model. Survival, ties and background are computed from the boxes
    alone (:func:`cropaudit.transforms.crop.score_cropping`), so every kind of cropper is
    audited alike."""

    ratios: tuple[float, ...]
    boxes: tuple[Box, ...]
    point: tuple[int, int, float] | None = None
    grid: Any = field(default=None, compare=False, repr=False)  # SaliencyGrid | None
    #: Per ratio, the (x, y) a box cropper says it centred on (libvips' attention centre,
    #: thumbor's focal point), or None; shown by ``saliency``, not scored.
    focus: tuple[tuple[int, int] | None, ...] | None = None

    def check(self, width: int, height: int) -> None:
        """Raise ``ValueError`` unless there is one non-empty box per ratio inside the image."""
        if len(self.boxes) != len(self.ratios):
            raise ValueError(f"{len(self.boxes)} boxes for {len(self.ratios)} aspect ratios")
        for ar, b in zip(self.ratios, self.boxes):
            if b.w <= 0 or b.h <= 0 or b.x < 0 or b.y < 0:
                raise ValueError(f"crop box {b.to_dict()} for ratio {ar:g} is empty or negative")
            if b.x + b.w > width or b.y + b.h > height:
                raise ValueError(
                    f"crop box {b.to_dict()} for ratio {ar:g} leaves the {width}x{height} image"
                )


@dataclass(frozen=True)
class CropResult:
    aspect_ratio: float
    box: Box
    a_area: int
    b_area: int
    winner: str


@dataclass(frozen=True)
class CropOutcome:
    """What the simulated cropper did with one composite. A box-only cropper has no salient
    point nor grid: those fields are None and the face statistics NaN."""

    salient_x: int | None
    salient_y: int | None
    salient_score: float | None
    point_winner: str | None
    crops: tuple[CropResult, ...]
    a_max: float
    a_mean: float
    b_max: float
    b_mean: float
    grid_rows: int | None
    grid_cols: int | None

    @property
    def margin(self) -> float:
        return self.a_max - self.b_max


@dataclass(frozen=True)
class SingleCrop:
    """One crop of a single image: the visible face area, the visible rest of the image (body)
    and what the crop keeps (``schemas.single_survival.OUTCOMES``)."""

    aspect_ratio: float
    box: Box
    face_area: int
    body_area: int
    kept: str


@dataclass(frozen=True)
class SingleOutcome:
    """What the cropper did with one single image: where its salient point fell
    (``point_on``: face, body or background; None for a box-only cropper), its crops, and the
    saliency inside the face box (NaN without a grid)."""

    salient_x: int | None
    salient_y: int | None
    salient_score: float | None
    point_on: str | None
    crops: tuple[SingleCrop, ...]
    face_max: float
    face_mean: float
    grid_rows: int | None
    grid_cols: int | None


#: Element types of the stages, whatever the design kind: a planned record, the same rendered,
#: and a cropper's outcome for it.
Planned = Composite | SingleImage
Rendered = RenderedComposite | RenderedSingle
Outcome = CropOutcome | SingleOutcome
