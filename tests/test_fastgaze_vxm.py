"""The .vxm reader: the real file, every malformed-file error, and bounded fuzzing."""

from __future__ import annotations

import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cropaudit.errors import UserError
from cropaudit.model.fastgaze.vxm import (
    CONV,
    MAGIC,
    MAGIC_OLD,
    POOL,
    VxmError,
    read_container,
    read_model,
)


def _i32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


def _tensor(key: str, array: np.ndarray) -> dict[str, bytes]:
    array = np.asarray(array, np.float32)
    return {
        key: array.tobytes(),
        f"{key}.dtype": b"float32",
        f"{key}.ndims": _i32(array.ndim),
        f"{key}.shape": _i32(*array.shape),
    }


def tiny_entries() -> dict[str, bytes]:
    """A valid two-layer model: 1×1 conv 3->1 with leaky ReLU, then a pool."""
    rng = np.random.default_rng(0)
    return {
        "layerCount": _i32(2),
        "modelType": _i32(2),
        "0Type": _i32(0),
        "0Act": _i32(4),
        **_tensor("0w", rng.normal(size=(1, 3, 1, 1))),
        **_tensor("0b", np.array([0.5])),
        **_tensor("0alpha", np.array([0.25])),
        "1Type": _i32(2),
        "1Pool": _i32(2),
    }


def build(entries: dict[str, bytes], magic: int = MAGIC) -> bytes:
    """Serialise entries (sorted by key) in the §1 layout."""
    out = [struct.pack("<II", magic, len(entries))]
    for key in sorted(entries):
        raw = key.encode()
        key_len = len(raw) + 1 if magic == MAGIC else len(raw)
        out += [struct.pack("<I", key_len), raw, b"\0", struct.pack("<I", len(entries[key]))]
        out.append(entries[key])
    return b"".join(out)


def test_reads_the_real_file(fastgaze_vxm):
    data = fastgaze_vxm.read_bytes()
    container = read_container(data)
    assert len(container.entries) == 239
    model = read_model(data)
    assert len(model.layers) == 19
    assert model.model_type == 2
    assert model.parameter_count == 121_064
    assert [layer.type for layer in model.layers].count(POOL) == 4
    leaky = [layer.index for layer in model.layers if layer.leaky]
    assert leaky == [14, 15, 16, 17]
    assert all(0 < model.layers[i].alpha < 1 for i in leaky)
    assert model.layers[0].weight.shape == (43, 3, 3, 3)
    assert model.layers[18].kernel_size == 19 and model.layers[18].std == 3


def test_tiny_model_and_old_magic_agree():
    new = read_model(build(tiny_entries()))
    old = read_model(build(tiny_entries(), MAGIC_OLD))
    assert [layer.type for layer in new.layers] == [CONV, POOL]
    assert new.layers[0].alpha == old.layers[0].alpha == 0.25
    np.testing.assert_array_equal(new.layers[0].weight, old.layers[0].weight)


def test_error_is_a_user_error():
    assert issubclass(VxmError, UserError)


def _with(**changes: bytes | None) -> bytes:
    entries = tiny_entries()
    for key, value in changes.items():
        if value is None:
            del entries[key]
        else:
            entries[key] = value
    return build(entries)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x01\x74\x50", "too short"),
        (struct.pack("<II", 0x12345678, 0), "magic"),
        (struct.pack("<II", MAGIC, 0x80000000), "exceeds 0x7FFFFFFF"),
        (struct.pack("<II", MAGIC, 3), "truncated"),
        (struct.pack("<III", MAGIC, 1, 0x80000000), "exceeds 0x7FFFFFFF"),
        (struct.pack("<III", MAGIC, 1, 0), "key length 0"),
        (struct.pack("<III", MAGIC, 1, 1000) + b"ab", "past the end"),
        (struct.pack("<III", MAGIC, 1, 3) + b"abc", "NUL"),
        (struct.pack("<III", MAGIC, 1, 2) + b"a\0" + struct.pack("<I", 99) + b"x", "past the end"),
        (struct.pack("<III", MAGIC, 1, 2) + b"a\0" + struct.pack("<I", 0x7FFFFFFF), "past the end"),
        (build(tiny_entries()) + b"\0", "unexpected bytes"),
        (build(tiny_entries())[:-1], "past the end"),
        (_with(**{"0w": b"\0" * 8}), "needs 12"),
        (_with(**{"0w.shape": _i32(1, 3, 1)}), "ndims"),
        (_with(**{"0w.dtype": b"float64"}), "dtype"),
        (_with(**{"0w.shape": _i32(-1, -3, 1, 1)}), "negative"),
        (_with(**{"0w": None}), "missing key '0w'"),
        (_with(**{"0Type": None}), "missing key '0Type'"),
        (_with(**{"0alpha": None}), "missing key '0alpha'"),
        (_with(layerCount=None), "missing key 'layerCount'"),
        (_with(**{"0foo": _i32(1)}), "unknown layer key"),
        (_with(**{"5Type": _i32(0)}), "layerCount"),
        (_with(bogus=b""), "unknown key"),
        (_with(**{"1Type": _i32(7)}), "unknown Type"),
        (_with(**{"0Act": b"\0\0"}), "4-byte int32"),
        (_with(layerCount=_i32(-5)), "out of range"),
        (_with(**_tensor("0b", np.array([1.0, 2.0]))), "do not fit"),
        (_with(**_tensor("0w", np.ones((2, 3, 1, 1)))), "do not fit"),
    ],
)
def test_malformed_files_raise_clear_errors(data, message):
    with pytest.raises(VxmError, match=message):
        read_model(data)


def test_duplicate_key_rejected():
    body = struct.pack("<I", 2) + b"a\0" + struct.pack("<I", 0)
    with pytest.raises(VxmError, match="duplicate"):
        read_container(struct.pack("<II", MAGIC, 2) + body + body)


def _parse_bounded(data: bytes) -> None:
    """Only VxmError, quickly, and never much more memory than the file itself."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        read_model(data)
    except VxmError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak <= 3 * len(data) + (256 << 10)


def test_fuzz_real_file_truncations_and_bit_flips(fastgaze_vxm):
    data = fastgaze_vxm.read_bytes()
    rng = np.random.default_rng(1234)
    cuts = list(rng.integers(0, len(data), 40)) + [0, 4, 7, 8, 9, 12, len(data) - 1]
    for cut in cuts:
        with pytest.raises(VxmError):
            read_model(data[:cut])
    # Flips in the framing region are the interesting ones; tensor payload flips parse fine.
    header_end = 4096
    for _ in range(60):
        mutated = bytearray(data)
        pos = int(rng.integers(0, header_end))
        mutated[pos] ^= 1 << int(rng.integers(0, 8))
        _parse_bounded(bytes(mutated))


def test_fuzz_real_file_memory_bounded_on_valid_input(fastgaze_vxm):
    _parse_bounded(fastgaze_vxm.read_bytes())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 400),
)
def test_fuzz_synthetic_mutations(edits, cut):
    data = bytearray(build(tiny_entries()))
    for pos, value in edits:
        data[pos % len(data)] = value
    _parse_bounded(bytes(data[: max(cut, len(data) - cut)]))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(blob):
    _parse_bounded(struct.pack("<I", MAGIC) + blob)
