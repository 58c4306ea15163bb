"""Experiment configs: versioned TOML files, loaded into frozen dataclasses and validated.

Each key is defined once, here, with its default and its check; unknown keys are rejected with a
message naming the key path. TOML is data only, so loading a config never executes code. The
config hash (sha256 of the canonical JSON of the resolved config) is recorded with every result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from cropaudit.errors import ConfigError, UserError
from cropaudit.model import DEFAULT_BATCH_SIZE
from cropaudit.schemas.criteria import POINT, TWITTER_ASPECT_RATIOS, criterion_name
from cropaudit.schemas.single_survival import SINGLE
from cropaudit.schemas.survival import CONTROLS, PAIRS
from cropaudit.schemas.variants import SWEEP_AXES, variant_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_VERSION = 1
LAYOUT_KINDS = ("vertical_gap", "horizontal", SINGLE)
#: ``pairs``: two faces per composite (plus controls); ``single``: one image per composite.
DESIGN_KINDS = (PAIRS, SINGLE)
FIT_MODES = ("cover", "contain", "stretch")
ORDERS = ("counterbalanced", "random", "fixed")
LABEL_CASES = ("strict", "lower", "exact")
LABEL_WHITESPACE = ("collapse", "strip")
MANIFEST_FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet")
SWEEP_MODES = ("one_at_a_time", "grid")
#: Allowed values of the numeric settings a sweep can vary, (low, high, how a message says it);
#: the ``[layout]``/``[model]`` checks and the ``[sweep]`` checks both read them.
RANGES = {
    "jpeg_quality": (0, 100, "0 (off) or 1..100"),
    "gap": (0, 8192, "0..8192"),
    "face_scale": (0.05, 8.0, "0.05..8"),
    "pad": (0, 4096, "0..4096"),
}
MAX_VARIANTS = 256
#: Deepest nesting of tables and arrays a config may have (the schema needs 3: a table of lists
#: of pairs); deeper input is refused before it can exhaust the parser's recursion.
MAX_DEPTH = 8


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _in_range(value: float, setting: str) -> bool:
    low, high, _ = RANGES[setting]
    return low <= value <= high


def _check_colour(value: tuple[int, ...], key: str) -> None:
    _check(
        len(value) == 3 and all(0 <= c <= 255 for c in value),
        key,
        f"must be three integers 0..255, got {list(value)}",
    )


@dataclass(frozen=True)
class ManifestConfig:
    path: str = ""
    format: str = "auto"
    image_root: str = ""

    def validate(self, key: str) -> None:
        _check(
            self.format in MANIFEST_FORMATS, f"{key}.format", f"must be one of {MANIFEST_FORMATS}"
        )


@dataclass(frozen=True)
class GroupsConfig:
    #: One attribute (``["race"]``) or an intersection (``["race", "gender"]``).
    attributes: tuple[str, ...] = ("race",)
    #: Optional allowed labels per attribute; rows with other labels are dead-lettered.
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Labels that differ only in letter case: ``strict`` refuses the manifest naming them,
    #: ``lower`` lower-cases every label first (they merge), ``exact`` keeps them apart.
    label_case: str = "strict"
    #: ``collapse``: edges stripped and inner runs of whitespace made one space; ``strip``:
    #: edges only (so "a  b" and "a b" are different groups).
    label_whitespace: str = "collapse"
    #: Spellings (compared case-insensitively) that mean "no label": such a row is
    #: dead-lettered as ``missing_label``, never a group of its own. A blank value always is
    #: (``empty_field``). ``[]`` keeps them as labels.
    missing_labels: tuple[str, ...] = ("NaN", "None", "null", "NA", "N/A")

    def validate(self, key: str) -> None:
        _check(self.label_case in LABEL_CASES, f"{key}.label_case", f"must be one of {LABEL_CASES}")
        _check(
            self.label_whitespace in LABEL_WHITESPACE,
            f"{key}.label_whitespace",
            f"must be one of {LABEL_WHITESPACE}",
        )
        _check(len(self.attributes) >= 1, f"{key}.attributes", "needs at least one attribute")
        _check(
            len(set(self.attributes)) == len(self.attributes),
            f"{key}.attributes",
            "has duplicates",
        )
        for name in self.labels:
            _check(name in self.attributes, f"{key}.labels.{name}", "is not a grouping attribute")


@dataclass(frozen=True)
class DesignConfig:
    #: ``pairs`` (two faces per composite) or ``single`` (one full image per composite, for the
    #: "male gaze" check: does the salient point fall on the face or the body; needs the
    #: ``single`` layout and face boxes in the manifest, see ``schemas.manifest``).
    kind: str = PAIRS
    seed: int = 0
    composites_per_pair: int = 10
    #: ``[]`` means all unordered pairs of distinct groups; else explicit ``[[g1, g2], ...]``.
    pairs: tuple[tuple[str, str], ...] = ()
    #: ``counterbalanced``: every sampled pair in both orders; ``random``: one seeded order;
    #: ``fixed``: group a's face always first (top/left), as in the WACV-2022 audit's tables.
    order: str = "counterbalanced"
    #: Control designs run beside the pairs: ``same_group`` and/or ``same_image``.
    controls: tuple[str, ...] = ()
    #: Composites per group for each control design.
    controls_per_group: int = 10
    #: ``single`` only: images per group, drawn without replacement by a seeded permutation of
    #: the group's images; 0 (the default) uses every image of the manifest once.
    images_per_group: int = 0

    def validate(self, key: str) -> None:
        _check(self.kind in DESIGN_KINDS, f"{key}.kind", f"must be one of {DESIGN_KINDS}")
        _check(0 <= self.seed < 2**63, f"{key}.seed", "must be an integer 0..2**63-1")
        _check(self.images_per_group >= 0, f"{key}.images_per_group", "must be >= 0 (0 = all)")
        if self.kind == SINGLE:
            _check(not self.pairs, f"{key}.pairs", "does not apply to kind = 'single'")
            _check(not self.controls, f"{key}.controls", "do not apply to kind = 'single'")
        else:
            _check(
                self.images_per_group == 0,
                f"{key}.images_per_group",
                "applies only to kind = 'single'",
            )
        _check(self.composites_per_pair >= 1, f"{key}.composites_per_pair", "must be at least 1")
        _check(self.controls_per_group >= 1, f"{key}.controls_per_group", "must be at least 1")
        _check(self.order in ORDERS, f"{key}.order", f"must be one of {ORDERS}")
        for c in self.controls:
            _check(c in CONTROLS, f"{key}.controls", f"unknown control {c!r}; use {CONTROLS}")
        for p in self.pairs:
            _check(len(p) == 2, f"{key}.pairs", f"each pair needs two groups, got {list(p)}")
            _check(p[0] != p[1], f"{key}.pairs", f"pair {list(p)} repeats a group")
        _check(len(set(self.pairs)) == len(self.pairs), f"{key}.pairs", "lists a pair twice")


@dataclass(frozen=True)
class LayoutConfig:
    """``vertical_gap``: the WACV-2022 3×1 layout; ``horizontal``: Twitter's side by side;
    ``single``: one image alone (design kind ``single``), at native size (``height = 0``) or
    scaled to ``height`` with its aspect ratio kept, times ``face_scale``, then ``pad``."""

    kind: str = "vertical_gap"
    # vertical_gap
    width: int = 583
    face_height: int = 887
    gap_height: int = 1226
    # horizontal: 0 keeps faces unscaled (the shorter padded with fill), else scale to this height
    # single: 0 keeps the image at native size, else scale it to this height (aspect kept)
    height: int = 0
    gap: int = 0
    #: How a face is fitted into its slot: ``cover`` (centre crop), ``contain``, ``stretch``.
    fit: str = "cover"
    fill: tuple[int, int, int] = (255, 255, 255)
    #: Scale of the face slot: ``vertical_gap`` slots become round(s*width) x round(s*face_height)
    #: (the canvas is as wide as the slot); ``horizontal`` faces are scaled to s times the fixed
    #: height (or their own height when unscaled). Gap and padding stay in pixels.
    face_scale: float = 1.0
    #: Fill-coloured border of this many pixels added at the top and at the left of the
    #: composite (the canvas grows by ``pad`` in both directions, every box moves by it).
    pad: int = 0

    def validate(self, key: str) -> None:
        _check(self.kind in LAYOUT_KINDS, f"{key}.kind", f"must be one of {LAYOUT_KINDS}")
        _check(self.fit in FIT_MODES, f"{key}.fit", f"must be one of {FIT_MODES}")
        _check_colour(self.fill, f"{key}.fill")
        _check(self.gap >= 0, f"{key}.gap", "must be >= 0")
        _check(self.gap_height >= 0, f"{key}.gap_height", "must be >= 0")
        _check(0 <= self.height <= 8192, f"{key}.height", "must be 0 (unscaled) or 1..8192")
        _check(1 <= self.width <= 8192, f"{key}.width", "must be 1..8192")
        _check(1 <= self.face_height <= 8192, f"{key}.face_height", "must be 1..8192")
        for setting in ("face_scale", "pad"):
            value = getattr(self, setting)
            _check(_in_range(value, setting), f"{key}.{setting}", f"must be {RANGES[setting][2]}")

    def params(self) -> dict[str, Any]:
        """The parameters that matter for this kind (recorded as ``layout_params``);
        ``face_scale`` and ``pad`` only when they differ from 1 and 0, so runs without them keep
        the same ``layout_params`` as before they existed."""
        if self.kind == "vertical_gap":
            names = ["width", "face_height", "gap_height", "fit", "fill"]
        elif self.kind == SINGLE:
            names = ["height", "fill"]
        else:
            names = ["height", "gap", "fit", "fill"]
        if self.face_scale != 1.0:
            names.append("face_scale")
        if self.pad != 0:
            names.append("pad")
        return {
            n: list(v) if isinstance(v, tuple) else v for n in names for v in [getattr(self, n)]
        }


@dataclass(frozen=True)
class ModelConfig:
    #: ``baseline``, ``fastgaze:PATH`` (``.vxm`` or converted), ``keras:PATH``, a cropper name
    #: (``smartcrop``, ``opencv-spectral-residual``, ...) or plugin (see ``model.registry``).
    spec: str = "baseline"
    #: Further croppers scored on the same composites as ``spec`` (each composite rendered
    #: once, one survival row per composite and cropper); empty: ``spec`` alone.
    compare: tuple[str, ...] = ()
    resize: str = "faithful"
    box: int = 320
    #: Round-trip composites through JPEG at this quality first; 0 means no round trip.
    jpeg_quality: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE

    def validate(self, key: str) -> None:
        from cropaudit.model.resize import RESIZE_METHODS

        _check(bool(self.spec), f"{key}.spec", "must name a model")
        _check(self.resize in RESIZE_METHODS, f"{key}.resize", f"must be one of {RESIZE_METHODS}")
        _check(16 <= self.box <= 4096, f"{key}.box", "must be 16..4096")
        quality = RANGES["jpeg_quality"][2]
        _check(
            _in_range(self.jpeg_quality, "jpeg_quality"),
            f"{key}.jpeg_quality",
            f"must be {quality}",
        )
        _check(1 <= self.batch_size <= 1024, f"{key}.batch_size", "must be 1..1024")
        specs = self.specs
        _check(all(specs), f"{key}.compare", "must not contain empty specs")
        _check(len(set(specs)) == len(specs), f"{key}.compare", "repeats a model (spec included)")

    @property
    def specs(self) -> tuple[str, ...]:
        """Every cropper of the run: ``spec`` first, then ``compare``."""
        return (self.spec, *self.compare)

    def preprocess_options(self):
        """How this model's input is made (:class:`cropaudit.model.resize.PreprocessOptions`)."""
        from cropaudit.model.resize import PreprocessOptions

        return PreprocessOptions(self.resize, self.box, self.jpeg_quality or None)


@dataclass(frozen=True)
class CropConfig:
    aspect_ratios: tuple[float, ...] = TWITTER_ASPECT_RATIOS

    def validate(self, key: str) -> None:
        _check(len(self.aspect_ratios) >= 1, f"{key}.aspect_ratios", "needs at least one ratio")
        for r in self.aspect_ratios:
            _check(0.05 <= r <= 20, f"{key}.aspect_ratios", f"ratio {r} outside 0.05..20")


@dataclass(frozen=True)
class SweepConfig:
    """Variants of one run: the same sampled composites rendered and pre-processed each way.

    ``one_at_a_time`` (the default): the base (the config's own ``[model]``/``[layout]`` values)
    plus one variant per listed value that differs from the base, each axis varied alone.
    ``grid``: every combination of the levels of all listed axes (each axis's levels are its
    listed values plus the base value). Axes: ``resize`` (model.resize), ``jpeg_quality``
    (model.jpeg_quality, 0 = no JPEG round trip), ``gap`` (layout.gap_height for
    ``vertical_gap``, layout.gap for ``horizontal``; the canvas grows with it, faces keep their
    size), ``face_scale`` (layout.face_scale) and ``pad`` (layout.pad, fill-coloured pixels
    added at the top and left). A variant is named ``base`` or by the axes where it differs from
    the base, e.g. ``pad=16`` or (grid) ``resize=area,pad=16``.
    """

    mode: str = "one_at_a_time"
    resize: tuple[str, ...] = ()
    jpeg_quality: tuple[int, ...] = ()
    gap: tuple[int, ...] = ()
    face_scale: tuple[float, ...] = ()
    pad: tuple[int, ...] = ()

    def validate(self, key: str) -> None:
        from cropaudit.model.resize import RESIZE_METHODS

        _check(self.mode in SWEEP_MODES, f"{key}.mode", f"must be one of {SWEEP_MODES}")
        for v in self.resize:
            _check(v in RESIZE_METHODS, f"{key}.resize", f"{v!r} is not one of {RESIZE_METHODS}")
        for setting in RANGES:
            for v in getattr(self, setting):
                _check(
                    _in_range(v, setting), f"{key}.{setting}", f"{v} is not {RANGES[setting][2]}"
                )
        for axis in SWEEP_AXES:
            values = getattr(self, axis)
            _check(len(set(values)) == len(values), f"{key}.{axis}", "has duplicates")

    @property
    def active(self) -> bool:
        return any(getattr(self, axis) for axis in SWEEP_AXES)


@dataclass(frozen=True)
class AnalysisConfig:
    """How the statistics read a run (no table of the run depends on it, so it is not in the
    config hash). ``primary_criterion``: the criterion of the findings' headline (``point`` or
    ``crop_<ratio>``; empty: ``point`` for a saliency model, the first aspect ratio's crop for a
    box cropper). ``parity_width``: w of "consistent with parity within +-w"."""

    primary_criterion: str = ""
    parity_width: float = 0.05

    def validate(self, key: str) -> None:
        from cropaudit.schemas.criteria import crop_ratio

        if self.primary_criterion:
            try:
                crop_ratio(self.primary_criterion)
            except ValueError as exc:
                raise ConfigError(f"{key}.primary_criterion: {exc}") from None
        _check(
            0.0 < self.parity_width < 0.5, f"{key}.parity_width", "must be above 0 and below 0.5"
        )


@dataclass(frozen=True)
class Variant:
    """One variant of a sweep: its name, the axes where it differs from the base, and the
    resolved config (with an empty ``[sweep]``) whose ``model``/``layout`` it runs with."""

    name: str
    axes: dict[str, Any]
    config: ExperimentConfig


def _axis_value(config: ExperimentConfig, axis: str) -> Any:
    if axis == "resize":
        return config.model.resize
    if axis == "jpeg_quality":
        return config.model.jpeg_quality
    if axis == "gap":
        layout = config.layout
        return layout.gap_height if layout.kind == "vertical_gap" else layout.gap
    return getattr(config.layout, axis)


def _axis_changes(config: ExperimentConfig, axes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    model: dict[str, Any] = {}
    layout: dict[str, Any] = {}
    for axis, value in axes.items():
        if axis in ("resize", "jpeg_quality"):
            model[axis] = value
        elif axis == "gap":
            layout["gap_height" if config.layout.kind == "vertical_gap" else "gap"] = value
        else:
            layout[axis] = value
    return {"model": model, "layout": layout}


@dataclass(frozen=True)
class ExperimentConfig:
    version: int = CONFIG_VERSION
    name: str = "experiment"
    description: str = ""
    #: Which dataset the config expects and how to build its manifest (documentation only).
    dataset: str = ""
    manifest: ManifestConfig = field(default_factory=ManifestConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    design: DesignConfig = field(default_factory=DesignConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def validate(self) -> ExperimentConfig:
        _check(self.version == CONFIG_VERSION, "version", f"unsupported; this is {CONFIG_VERSION}")
        _check(bool(self.name), "name", "must not be empty")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate(f.name)
        single = self.design.kind == SINGLE
        _check(
            single == (self.layout.kind == SINGLE),
            "layout.kind",
            f"is {self.layout.kind!r} but design.kind is {self.design.kind!r}: the 'single'"
            " layout goes with the 'single' design and only with it",
        )
        _check(not (single and self.sweep.gap), "sweep.gap", "does not apply to the single layout")
        _check(
            not (self.model.compare and self.sweep.active),
            "model.compare",
            "cannot be combined with [sweep] yet: compare croppers on one variant per run",
        )
        primary = self.analysis.primary_criterion
        crops = {criterion_name(r) for r in self.crop.aspect_ratios}
        _check(
            primary in ("", POINT) or primary in crops,
            "analysis.primary_criterion",
            f"{primary!r} is not a criterion of this run (point, {', '.join(sorted(crops))})",
        )
        if self.sweep.active:
            n = self.sweep_size()
            _check(n <= MAX_VARIANTS, "sweep", f"{n} variants; at most {MAX_VARIANTS}")
            self.variants()  # every variant must be a valid config too
        return self

    def _sweep_axes(self) -> list[tuple[str, list[Any]]]:
        """Listed axes with their levels: the listed values that differ from the base value,
        in the listed order."""
        out = []
        for axis in SWEEP_AXES:
            base = _axis_value(self, axis)
            levels = [v for v in getattr(self.sweep, axis) if v != base]
            if levels:
                out.append((axis, levels))
        return out

    def sweep_size(self) -> int:
        """Number of variants (the base included) without building them."""
        axes = self._sweep_axes()
        if self.sweep.mode == "grid":
            n = 1
            for _, levels in axes:
                n *= len(levels) + 1
            return n
        return 1 + sum(len(levels) for _, levels in axes)

    def variants(self) -> list[Variant]:
        """The base first, then the sweep's variants (see :class:`SweepConfig`); a config
        without ``[sweep]`` has the base only. Each variant's config is validated."""
        axes = self._sweep_axes()
        if self.sweep.mode == "grid":
            choices = [[None, *levels] for _, levels in axes]
            combos = [
                {axis: v for (axis, _), v in zip(axes, combo) if v is not None}
                for combo in itertools.product(*choices)
            ]
        else:
            combos = [{}] + [{axis: v} for axis, levels in axes for v in levels]
        empty = dataclasses.asdict(SweepConfig())
        out = []
        for combo in combos:
            name = variant_name(combo)
            try:
                cfg = self.replace(sweep=empty, **_axis_changes(self, combo))
            except ConfigError as exc:
                raise ConfigError(f"sweep variant {name}: {exc}") from None
            out.append(Variant(name, combo, cfg))
        return out

    def to_dict(self) -> dict[str, Any]:
        data = _jsonable(dataclasses.asdict(self))
        if not data["model"]["compare"]:  # one-model configs keep the hash they had before
            del data["model"]["compare"]
        if data["analysis"] == _jsonable(dataclasses.asdict(AnalysisConfig())):
            del data["analysis"]
        return data

    def canonical_json(self) -> str:
        """What the hash covers: every section but ``[analysis]`` (how the results are read)."""
        data = {k: v for k, v in self.to_dict().items() if k != "analysis"}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A validated copy with keys changed: ``replace(name="x", model={"spec": s})`` updates
        only the named keys of a section."""
        data = self.to_dict()
        for key, value in changes.items():
            if isinstance(data.get(key), dict) and isinstance(value, dict):
                data[key].update(value)
            else:
                data[key] = value
        return from_dict(data)

    def to_toml(self) -> str:
        return _to_toml(self.to_dict())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Coerce a TOML value to the dataclass field type, or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        _check(isinstance(value, dict), key, f"must be a table, got {type(value).__name__}")
        return _build(hint, value, key)
    if origin is tuple:
        _check(isinstance(value, (list, tuple)), key, f"must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        _check(len(value) == len(args), key, f"must have {len(args)} items, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        _check(isinstance(value, dict), key, "must be a table")
        return {str(k): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float:
        _check(
            isinstance(value, (int, float)) and not isinstance(value, bool),
            key,
            f"must be a number, got {value!r}",
        )
        return float(value)
    if hint is int:
        _check(
            isinstance(value, int) and not isinstance(value, bool),
            key,
            f"must be an integer, got {value!r}",
        )
        return value
    if hint is str:
        _check(isinstance(value, str), key, f"must be a string, got {value!r}")
        try:
            value.encode("utf-8")  # a lone surrogate (e.g. an undecodable argv byte) cannot be
        except UnicodeEncodeError:  # written back to config.toml
            raise ConfigError(f"{key}: {value!r} is not valid Unicode text") from None
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(names))})")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> ExperimentConfig:
    return _build(ExperimentConfig, data).validate()


def _depth(value: Any) -> int:
    """Nesting depth of parsed TOML (a scalar is 0), stopping just past :data:`MAX_DEPTH`."""
    stack, deepest = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, (dict, list)):
            stack.extend((child, depth + 1) for child in children)
    return deepest


def loads(text: str) -> ExperimentConfig:
    """Parse and validate config text. An empty config (no keys) is an error: it would silently
    mean "every default", which is never what a file meant."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep") from None
    if not data:
        raise ConfigError("the config is empty (no keys); write at least name = ...")
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep")
    return from_dict(data)


def load(uri: str) -> ExperimentConfig:
    """Load and validate a config from a local path or ``gs://`` URI."""
    from cropaudit import fileio

    try:
        raw = fileio.read_bytes(uri, limit=1 << 20)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {uri}") from None
    except UserError as exc:  # not a regular file, or beyond the size limit
        raise ConfigError(str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{uri}: not UTF-8 text") from None
    try:
        return loads(text)
    except ConfigError as exc:
        raise ConfigError(f"{uri}: {exc}") from None


def _toml_string(text: str) -> str:
    """A TOML basic string that reads back as ``text``: quote, backslash and control characters
    (C0, DEL) escaped, everything else literal UTF-8. (JSON's escapes are not TOML's: it writes
    astral characters as surrogate pairs, which TOML refuses, and leaves DEL raw.)"""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_string(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))  # pragma: no cover


def _to_toml(data: dict[str, Any]) -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"
