"""Experiment configs: versioned TOML files, loaded into frozen dataclasses and validated.

Each key is defined once, here, with its default and its check; unknown keys are rejected with a
message naming the key path. TOML is data only, so loading a config never executes code. The
config hash (sha256 of the canonical JSON of the resolved config) is recorded with every result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from cropaudit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_VERSION = 1
LAYOUT_KINDS = ("vertical_gap", "horizontal")
FIT_MODES = ("cover", "contain", "stretch")
ORDERS = ("counterbalanced", "random")
CONTROLS = ("same_group", "same_image")
MANIFEST_FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet")


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


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

    def validate(self, key: str) -> None:
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
    seed: int = 0
    composites_per_pair: int = 10
    #: ``[]`` means all unordered pairs of distinct groups; else explicit ``[[g1, g2], ...]``.
    pairs: tuple[tuple[str, str], ...] = ()
    #: ``counterbalanced``: every sampled pair in both orders; ``random``: one seeded order.
    order: str = "counterbalanced"
    #: Control designs run beside the pairs: ``same_group`` and/or ``same_image``.
    controls: tuple[str, ...] = ()
    #: Composites per group for each control design.
    controls_per_group: int = 10

    def validate(self, key: str) -> None:
        _check(self.seed >= 0, f"{key}.seed", "must be a non-negative integer")
        _check(self.composites_per_pair >= 1, f"{key}.composites_per_pair", "must be at least 1")
        _check(self.controls_per_group >= 1, f"{key}.controls_per_group", "must be at least 1")
        _check(self.order in ORDERS, f"{key}.order", f"must be one of {ORDERS}")
        for c in self.controls:
            _check(c in CONTROLS, f"{key}.controls", f"unknown control {c!r}; use {CONTROLS}")
        for p in self.pairs:
            _check(len(p) == 2, f"{key}.pairs", f"each pair needs two groups, got {list(p)}")
            _check(p[0] != p[1], f"{key}.pairs", f"pair {list(p)} repeats a group")


@dataclass(frozen=True)
class LayoutConfig:
    """``vertical_gap``: the WACV-2022 3×1 layout; ``horizontal``: Twitter's side by side."""

    kind: str = "vertical_gap"
    # vertical_gap
    width: int = 583
    face_height: int = 887
    gap_height: int = 1226
    # horizontal: 0 keeps faces unscaled (the shorter padded with fill), else scale to this height
    height: int = 0
    gap: int = 0
    #: How a face is fitted into its slot: ``cover`` (centre crop), ``contain``, ``stretch``.
    fit: str = "cover"
    fill: tuple[int, int, int] = (255, 255, 255)

    def validate(self, key: str) -> None:
        _check(self.kind in LAYOUT_KINDS, f"{key}.kind", f"must be one of {LAYOUT_KINDS}")
        _check(self.fit in FIT_MODES, f"{key}.fit", f"must be one of {FIT_MODES}")
        _check_colour(self.fill, f"{key}.fill")
        _check(self.gap >= 0, f"{key}.gap", "must be >= 0")
        _check(self.gap_height >= 0, f"{key}.gap_height", "must be >= 0")
        _check(0 <= self.height <= 8192, f"{key}.height", "must be 0 (unscaled) or 1..8192")
        _check(1 <= self.width <= 8192, f"{key}.width", "must be 1..8192")
        _check(1 <= self.face_height <= 8192, f"{key}.face_height", "must be 1..8192")

    def params(self) -> dict[str, Any]:
        """The parameters that matter for this kind (recorded as ``layout_params``)."""
        if self.kind == "vertical_gap":
            names = ("width", "face_height", "gap_height", "fit", "fill")
        else:
            names = ("height", "gap", "fit", "fill")
        return {
            n: list(v) if isinstance(v, tuple) else v for n in names for v in [getattr(self, n)]
        }


@dataclass(frozen=True)
class ModelConfig:
    #: ``baseline``, ``fastgaze:PATH`` (``.vxm`` or converted), or ``keras:PATH``.
    spec: str = "baseline"
    resize: str = "faithful"
    box: int = 320
    #: Round-trip composites through JPEG at this quality first; 0 means no round trip.
    jpeg_quality: int = 0
    batch_size: int = 16

    def validate(self, key: str) -> None:
        from cropaudit.model.resize import RESIZE_METHODS

        _check(bool(self.spec), f"{key}.spec", "must name a model")
        _check(self.resize in RESIZE_METHODS, f"{key}.resize", f"must be one of {RESIZE_METHODS}")
        _check(16 <= self.box <= 4096, f"{key}.box", "must be 16..4096")
        _check(0 <= self.jpeg_quality <= 100, f"{key}.jpeg_quality", "must be 0 (off) or 1..100")
        _check(1 <= self.batch_size <= 1024, f"{key}.batch_size", "must be 1..1024")


@dataclass(frozen=True)
class CropConfig:
    aspect_ratios: tuple[float, ...] = (0.56, 1.0, 1.14, 2.0)

    def validate(self, key: str) -> None:
        _check(len(self.aspect_ratios) >= 1, f"{key}.aspect_ratios", "needs at least one ratio")
        for r in self.aspect_ratios:
            _check(0.05 <= r <= 20, f"{key}.aspect_ratios", f"ratio {r} outside 0.05..20")


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

    def validate(self) -> ExperimentConfig:
        _check(self.version == CONFIG_VERSION, "version", f"unsupported; this is {CONFIG_VERSION}")
        _check(bool(self.name), "name", "must not be empty")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate(f.name)
        return self

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

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


def loads(text: str) -> ExperimentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    return from_dict(data)


def load(uri: str) -> ExperimentConfig:
    """Load and validate a config from a local path or ``gs://`` URI."""
    from cropaudit import fileio

    try:
        raw = fileio.read_bytes(uri, limit=1 << 20)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {uri}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{uri}: not UTF-8 text") from None
    try:
        return loads(text)
    except ConfigError as exc:
        raise ConfigError(f"{uri}: {exc}") from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))  # pragma: no cover


def _to_toml(data: dict[str, Any]) -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"
