"""Reader for FastGaze's ``.vxm`` weight container (spec §1) and its layer table (spec §2).

The file is untrusted input: every length is checked against the bytes that remain before it is
used, so a corrupt or hostile file fails fast with one error type, :class:`VxmError`, and never
makes the reader allocate more than the file's own size or loop longer than its length allows.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cropaudit.errors import UserError

MAGIC = 0x4D507401
#: Older variant whose key length does not count the terminating NUL.
MAGIC_OLD = 0x4D507400
MAX_COUNT = 0x7FFFFFFF
#: The network's output stride relative to its resized input (the model's four 2×2 pools).
STRIDE = 16

#: Layer ``Type`` values (spec §2).
CONV, POOL, BLUR = 0, 2, 3
#: ``Act`` value meaning leaky ReLU; any other value means ReLU.
ACT_LEAKY = 4

_LAYER_KEY = re.compile(r"^(\d+)([A-Za-z]+)(.*)$")
_SCALAR_FIELDS = frozenset({"Type", "Act", "Pool", "KernelSize", "Std"})
_TENSOR_FIELDS = frozenset({"w", "b", "alpha"})
_TENSOR_META = re.compile(r"^\.(dtype|ndims|shape|shape\.listlength|shape\[\d+\])$")
_TOP_LEVEL = frozenset({"layerCount", "modelType"})


class VxmError(UserError):
    """A ``.vxm`` file that cannot be read as a FastGaze model; the message says why."""


@dataclass(frozen=True)
class VxmContainer:
    """The raw key -> bytes entries of a ``.vxm`` file, with typed accessors (types from keys)."""

    magic: int
    entries: Mapping[str, bytes]

    def _get(self, key: str) -> bytes:
        try:
            return self.entries[key]
        except KeyError:
            raise VxmError(f"missing key {key!r}") from None

    def int32(self, key: str) -> int:
        value = self._get(key)
        if len(value) != 4:
            raise VxmError(f"{key!r} should be a 4-byte int32, has {len(value)} bytes")
        return struct.unpack("<i", value)[0]

    def string(self, key: str) -> str:
        try:
            return self._get(key).decode("ascii")
        except UnicodeDecodeError:
            raise VxmError(f"{key!r} is not an ASCII string") from None

    def tensor(self, key: str) -> np.ndarray:
        """The float32 tensor ``key`` in C order, its byte size checked against ``<key>.shape``."""
        dtype = self.string(f"{key}.dtype")
        if dtype != "float32":
            raise VxmError(f"{key!r} has dtype {dtype!r}; only float32 is supported")
        ndims = self.int32(f"{key}.ndims")
        raw_shape = self._get(f"{key}.shape")
        if not 0 <= ndims <= 8 or len(raw_shape) != 4 * ndims:
            raise VxmError(f"{key!r}: shape has {len(raw_shape)} bytes for ndims={ndims}")
        shape = struct.unpack(f"<{ndims}i", raw_shape)
        if any(d < 0 for d in shape):
            raise VxmError(f"{key!r} has a negative dimension in shape {shape}")
        value = self._get(key)
        expected = 4 * int(np.prod(shape, dtype=object))
        if len(value) != expected:
            raise VxmError(
                f"{key!r} has {len(value)} bytes but shape {shape} needs {expected} (float32)"
            )
        array = np.frombuffer(value, dtype="<f4").reshape(shape).astype(np.float32)
        if not np.isfinite(array).all():  # a NaN weight makes every score NaN
            bad = int(array.size - np.isfinite(array).sum())
            raise VxmError(f"{key!r} holds {bad} non-finite value(s) (NaN/inf)")
        return array


def read_container(data: bytes) -> VxmContainer:
    """Parse the container framing (spec §1); every length is bounded by the bytes left."""
    size = len(data)
    if size < 8:
        raise VxmError(f"file too short for a .vxm header ({size} bytes, need 8)")
    magic, count = struct.unpack_from("<II", data, 0)
    if magic not in (MAGIC, MAGIC_OLD):
        raise VxmError(f"not a .vxm file: magic 0x{magic:08X}, expected 0x{MAGIC:08X}")
    if count > MAX_COUNT:
        raise VxmError(f"entry count {count} exceeds 0x7FFFFFFF")
    counts_nul = magic == MAGIC
    pos = 8
    entries: dict[str, bytes] = {}
    for index in range(count):
        key_len = _u32(data, pos, f"entry {index} key length")
        pos += 4
        if counts_nul and key_len < 1:
            raise VxmError(f"entry {index}: key length 0 (must count the NUL)")
        stored = key_len if counts_nul else key_len + 1  # key bytes plus the NUL
        if stored > size - pos:
            raise VxmError(f"entry {index}: key of {key_len} bytes runs past the end of the file")
        raw_key = data[pos : pos + stored]
        pos += stored
        if raw_key[-1] != 0 or 0 in raw_key[:-1]:
            raise VxmError(f"entry {index}: key is not NUL-terminated")
        try:
            key = raw_key[:-1].decode("ascii")
        except UnicodeDecodeError:
            raise VxmError(f"entry {index}: key is not ASCII") from None
        val_len = _u32(data, pos, f"entry {key!r} value length")
        pos += 4
        if val_len > size - pos:
            raise VxmError(
                f"entry {key!r}: value of {val_len} bytes runs past the end of the file "
                f"({size - pos} left)"
            )
        if key in entries:
            raise VxmError(f"duplicate key {key!r}")
        entries[key] = data[pos : pos + val_len]
        pos += val_len
    if pos != size:
        raise VxmError(f"{size - pos} unexpected bytes after the last of {count} entries")
    return VxmContainer(magic, entries)


def _u32(data: bytes, pos: int, what: str) -> int:
    if len(data) - pos < 4:
        raise VxmError(f"file truncated: {what} at offset {pos} is past the end")
    value = struct.unpack_from("<I", data, pos)[0]
    if value > MAX_COUNT:
        raise VxmError(f"{what} {value} exceeds 0x7FFFFFFF")
    return value


@dataclass(frozen=True)
class Layer:
    """One network layer as stored: conv weights stay OIHW here; the network transposes them."""

    index: int
    type: int
    act: int = 0
    weight: np.ndarray | None = None  # (out, in, kh, kw) for conv
    bias: np.ndarray | None = None  # (out,)
    alpha: float | None = None  # leaky-ReLU slope when act == ACT_LEAKY
    kernel_size: int | None = None  # blur
    std: int | None = None  # blur

    @property
    def leaky(self) -> bool:
        return self.type == CONV and self.act == ACT_LEAKY


@dataclass(frozen=True)
class VxmModel:
    """A FastGaze model's layers in order, validated to form the §2 chain."""

    model_type: int
    layers: tuple[Layer, ...]

    @property
    def parameter_count(self) -> int:
        return sum(x.weight.size + x.bias.size + (x.alpha is not None) for x in self.conv_layers)

    @property
    def conv_layers(self) -> tuple[Layer, ...]:
        return tuple(x for x in self.layers if x.type == CONV)


def read_model(data: bytes) -> VxmModel:
    """Parse a whole ``.vxm`` file into its validated layer list."""
    container = read_container(data)
    layer_count = container.int32("layerCount")
    if not 1 <= layer_count <= 1024:
        raise VxmError(f"layerCount {layer_count} is out of range")
    _check_keys(container, layer_count)
    layers = tuple(_read_layer(container, i) for i in range(layer_count))
    _check_chain(layers)
    return VxmModel(container.int32("modelType"), layers)


def _check_keys(container: VxmContainer, layer_count: int) -> None:
    for key in container.entries:
        if key in _TOP_LEVEL:
            continue
        match = _LAYER_KEY.match(key)
        if match is None:
            raise VxmError(f"unknown key {key!r}")
        index, field, rest = int(match[1]), match[2], match[3]
        if index >= layer_count:
            raise VxmError(f"key {key!r} names layer {index}, but layerCount is {layer_count}")
        known = (field in _SCALAR_FIELDS and rest == "") or (
            field in _TENSOR_FIELDS and (rest == "" or _TENSOR_META.match(rest))
        )
        if not known:
            raise VxmError(f"unknown layer key {key!r}")


def _read_layer(container: VxmContainer, i: int) -> Layer:
    kind = container.int32(f"{i}Type")
    if kind == CONV:
        act = container.int32(f"{i}Act")
        weight = container.tensor(f"{i}w")
        bias = container.tensor(f"{i}b")
        if weight.ndim != 4 or bias.shape != (weight.shape[0],):
            raise VxmError(f"layer {i}: weights {weight.shape} and bias {bias.shape} do not fit")
        if weight.shape[2] % 2 == 0 or weight.shape[2] != weight.shape[3]:
            raise VxmError(f"layer {i}: kernel {weight.shape[2:]} is not square and odd")
        alpha = None
        if act == ACT_LEAKY:
            alpha_t = container.tensor(f"{i}alpha")
            if alpha_t.size != 1:
                raise VxmError(f"layer {i}: alpha should hold one value, has {alpha_t.size}")
            alpha = float(alpha_t.reshape(()))
        return Layer(i, kind, act, weight, bias, alpha)
    if kind == POOL:
        return Layer(i, kind)
    if kind == BLUR:
        return Layer(
            i,
            kind,
            kernel_size=container.int32(f"{i}KernelSize"),
            std=container.int32(f"{i}Std"),
        )
    raise VxmError(f"layer {i}: unknown Type {kind}")


def _check_chain(layers: tuple[Layer, ...]) -> None:
    channels = 3
    for layer in layers:
        if layer.type != CONV:
            continue
        out_c, in_c = layer.weight.shape[:2]
        if in_c != channels:
            raise VxmError(f"layer {layer.index}: expects {in_c} input channels, gets {channels}")
        channels = out_c
    if channels != 1:
        raise VxmError(f"the last conv layer has {channels} output channels, expected 1")
