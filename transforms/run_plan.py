"""The plan of a run, computed before anything starts, and the checks that refuse what cannot run.

``validate`` and ``run`` both compute it (:func:`make_plan`): composites, variants, the canvas
of each variant, the bytes a composite needs in memory and a rough time on the local runner.
:func:`check_plan` refuses a plan that could only fail or mislead (a canvas beyond
:data:`MAX_CANVAS_PIXELS`, a face slot too small to be seen at the model's input, zero planned
composites) or that is far beyond the local runner (overridable: a cluster may be meant), with
the numbers in the message. Canvas sizes of layouts that keep faces at their native size depend
on the images, so they are checked per composite when it is rendered
(``layout.check_canvas``: a ``canvas_too_large`` dead letter), not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cropaudit import fileio
from cropaudit.config import ExperimentConfig, LayoutConfig
from cropaudit.errors import UserError
from cropaudit.model.resize import fit_size
from cropaudit.schemas.records import DeadLetter, Face
from cropaudit.schemas.single_survival import SINGLE
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.transforms.design import (
    DesignCell,
    GroupIndex,
    check_design,
    design_cells,
    expected_composites,
    index_groups,
)
from cropaudit.transforms.images import MIN_SIDE
from cropaudit.transforms.layout import MAX_CANVAS_PIXELS, face_height, face_slot
from cropaudit.transforms.manifests import config_manifest_uri, load_faces

#: Rough cost of one composite on the local (direct) runner: seconds per composite plus seconds
#: per canvas megapixel (from the demo on 2 cores: 160 composites of 1.75 MP in about 17 s).
LOCAL_SECONDS_PER_COMPOSITE = 0.02
LOCAL_SECONDS_PER_MEGAPIXEL = 0.05
#: What a cropper slower than the baseline adds per composite it scores, by model spec (its
#: defaults on a 583x3000 demo canvas, measured on the shared 2-core machine: smartcrop about
#: 0.8 s with its process pool, the OpenCV croppers 0.005-0.025 s, the baseline 0.05-0.1 s).
#: Every cropper of ``model.compare`` scores every composite, so each one counts.
LOCAL_EXTRA_SECONDS_PER_CROP = {
    "smartcrop": 0.8,
    "opencv-fine-grained": 0.02,
    "opencv-spectral-residual": 0.01,
}
#: A plan estimated beyond this on the local runner is refused unless explicitly allowed.
MAX_LOCAL_SECONDS = 48 * 3600


class PlanError(UserError):
    """A plan that cannot run (or, on this runner, cannot finish); the message has the numbers."""


@dataclass(frozen=True)
class VariantPlan:
    """One variant's geometry: its canvas and its face slot (width, height) in canvas pixels and
    at the model's input; ``None`` when faces keep their native size (known only per image)."""

    name: str
    canvas: tuple[int, int] | None
    slot: tuple[int, int] | None
    slot_at_input: tuple[float, float] | None

    @property
    def canvas_pixels(self) -> int | None:
        return None if self.canvas is None else self.canvas[0] * self.canvas[1]


@dataclass(frozen=True)
class Plan:
    composites: int | None  # None: the manifest was not read (``validate`` without it)
    variants: tuple[VariantPlan, ...]
    box: int
    croppers: tuple[str, ...] = ("baseline",)  # model specs: each scores every composite

    @property
    def bytes_per_composite(self) -> int | None:
        """Largest canvas (uint8 RGB) plus the model input (float32): held per composite."""
        known = [v.canvas_pixels for v in self.variants if v.canvas_pixels is not None]
        return None if not known else max(known) * 3 + self.box * self.box * 3 * 4

    @property
    def local_seconds(self) -> float | None:
        """Rough time on the local runner (composites already count every variant): each
        cropper renders and scores every composite, at the baseline's cost plus its own extra
        (:data:`LOCAL_EXTRA_SECONDS_PER_CROP`)."""
        if self.composites is None:
            return None
        known = [v.canvas_pixels for v in self.variants if v.canvas_pixels is not None]
        megapixels = (sum(known) / len(known) / 1e6) if known else 1.0
        per = LOCAL_SECONDS_PER_COMPOSITE + LOCAL_SECONDS_PER_MEGAPIXEL * megapixels
        extra = sum(LOCAL_EXTRA_SECONDS_PER_CROP.get(spec, 0.0) for spec in self.croppers)
        return self.composites * (per * max(1, len(self.croppers)) + extra)

    def describe(self) -> str:
        parts = []
        if self.composites is not None:
            parts.append(f"{self.composites} composites")
        if len(self.croppers) > 1:
            parts.append(f"{len(self.croppers)} croppers each")
        parts.append(f"{len(self.variants)} variant(s)")
        canvases = sorted({f"{v.canvas[0]}x{v.canvas[1]}" for v in self.variants if v.canvas})
        if canvases:
            parts.append(f"canvas {', '.join(canvases)}")
        elif self.variants:
            parts.append("canvas size per image (native-size faces)")
        if self.bytes_per_composite is not None:
            parts.append(f"{_size(self.bytes_per_composite)} per composite")
        if self.local_seconds is not None:
            parts.append(f"about {_duration(self.local_seconds)} on the local runner")
        return ", ".join(parts)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def layout_geometry(layout: LayoutConfig) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(canvas, face slot) as (width, height) for layouts whose size the config fixes; faces of
    a fixed-height layout are taken as square (the nominal case); ``None`` for native sizes."""
    if layout.kind == "vertical_gap":
        width, height = face_slot(layout)
        return (width + layout.pad, 2 * height + layout.gap_height + layout.pad), (width, height)
    if layout.height == 0:
        return None
    side = face_height(layout, layout.height)
    if layout.kind == SINGLE:
        return (side + layout.pad, side + layout.pad), (side, side)
    return (2 * side + layout.gap + layout.pad, side + layout.pad), (side, side)


def variant_plan(name: str, layout: LayoutConfig, box: int) -> VariantPlan:
    geometry = layout_geometry(layout)
    if geometry is None:
        return VariantPlan(name, None, None, None)
    canvas, slot = geometry
    input_w, _ = fit_size(*canvas, box)
    scale = input_w / canvas[0]
    return VariantPlan(name, canvas, slot, (slot[0] * scale, slot[1] * scale))


def make_plan(config: ExperimentConfig, composites: int | None) -> Plan:
    """The plan of ``config``; ``composites`` from the design (every variant counted), or
    ``None`` when the manifest was not read."""
    variants = tuple(
        variant_plan(v.name, v.config.layout, v.config.model.box) for v in config.variants()
    )
    return Plan(composites, variants, config.model.box, config.model.specs)


def check_plan(
    plan: Plan, runner: str = "direct", allow_large: bool = False, groups: Sequence[str] = ()
) -> None:
    """Raise :class:`PlanError` for a plan that cannot run; ``allow_large`` lets a plan beyond
    the local runner's reach through (for a cluster). ``groups`` names the manifest's groups in
    the message for an empty plan."""
    for v in plan.variants:
        where = "" if v.name == BASE_VARIANT else f" (sweep variant {v.name})"
        if v.canvas_pixels is not None and v.canvas_pixels > MAX_CANVAS_PIXELS:
            raise PlanError(
                f"the composite canvas{where} is {v.canvas[0]}x{v.canvas[1]} = "
                f"{v.canvas_pixels:,} pixels ({_size(v.canvas_pixels * 3)} per canvas); "
                f"the limit is {MAX_CANVAS_PIXELS:,}: reduce the layout's size or face_scale"
            )
        if v.slot is not None and min(v.slot) < MIN_SIDE:
            raise PlanError(
                f"the face slot{where} is {v.slot[0]}x{v.slot[1]} pixels; a face needs at least "
                f"{MIN_SIDE} pixels a side (as an image does): enlarge the layout or face_scale"
            )
        if v.slot_at_input is not None and min(v.slot_at_input) < MIN_SIDE:
            w, h = v.slot_at_input
            raise PlanError(
                f"the face slot{where} is {v.slot[0]}x{v.slot[1]} pixels on a "
                f"{v.canvas[0]}x{v.canvas[1]} canvas, {w:.1f}x{h:.1f} at the model's "
                f"{plan.box}-pixel input; a face needs at least {MIN_SIDE} pixels a side there"
            )
    if plan.composites == 0:
        known = ", ".join(groups) or "none"
        raise PlanError(
            f"the design plans 0 composites (manifest groups: {known}); pairs need at least two "
            "groups with faces"
        )
    seconds = plan.local_seconds
    local = runner == "direct" and not allow_large
    if local and seconds is not None and seconds > MAX_LOCAL_SECONDS:
        raise PlanError(
            f"the plan is far beyond the local runner: {plan.describe()} (limit "
            f"{_duration(MAX_LOCAL_SECONDS)}); use a cluster runner, or pass "
            "--allow-large-plan to run it anyway"
        )


@dataclass(frozen=True)
class AuditInputs:
    """What the driver learns from the manifest before anything starts. The manifest is read
    once, here: the pipeline gets the group index and the manifest's dead letters from it, the
    run summary its counts."""

    uri: str
    faces: list[Face]
    dead_letters: list[DeadLetter]
    index: GroupIndex
    cells: list[DesignCell]
    #: Planned composites, every sweep variant counted.
    expected: int

    @property
    def groups(self) -> list[str]:
        return sorted(self.index)


def read_inputs(config: ExperimentConfig, config_dir: str | None) -> AuditInputs:
    """Read ``config``'s manifest and check its design (``UserError`` for one that cannot
    run)."""
    uri = config_manifest_uri(config, config_dir)
    faces, dead = load_faces(uri, config)
    index = index_groups(faces, config.groups.attributes)
    cells = design_cells(index, config.design)
    check_design(index, cells)
    expected = expected_composites(cells, config.design.order, config.sweep_size())
    return AuditInputs(uri, faces, dead, index, cells, expected)


def plan_config(config: ExperimentConfig, config_dir: str | None) -> tuple[Plan, list[str]]:
    """The plan of ``config`` and the manifest's groups; when the manifest cannot be found
    (``validate`` on a config whose data is elsewhere) the plan counts no composites."""
    if not config.manifest.path:
        return make_plan(config, None), []
    if not fileio.exists(config_manifest_uri(config, config_dir)):
        return make_plan(config, None), []
    inputs = read_inputs(config, config_dir)
    return make_plan(config, inputs.expected), inputs.groups
