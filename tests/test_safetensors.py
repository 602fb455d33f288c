"""The safetensors format by hand: round trips, the reference library's files both ways, every fault refused.

The comparisons with the ``safetensors`` package (and with PyTorch, for bfloat16) skip where
those are not installed; everything else runs on NumPy alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from miniclip.pretrained.safetensors import (
    PICKLE_SUFFIXES,
    read_safetensors,
    refuse_pickle,
    safetensors_metadata,
    write_safetensors,
)


def _tensors() -> dict[str, np.ndarray]:
    """One tensor of each type the writer takes, in awkward shapes: a scalar, an empty one, a non-contiguous one."""
    rng = np.random.default_rng(0)
    return {
        "w.f32": rng.standard_normal((3, 5)).astype(np.float32),
        "w.f64": rng.standard_normal((2, 2, 2)),
        "w.f16": rng.standard_normal(7).astype(np.float16),
        "ids.i64": np.arange(-3, 9, dtype=np.int64).reshape(3, 4),
        "ids.i32": np.array([2**31 - 1, -(2**31)], dtype=np.int32),
        "logit_scale": np.array(4.6052, dtype=np.float32),  # 0-d, as CLIP's temperature
        "empty": np.zeros((0, 4), dtype=np.float32),
        "transposed": np.arange(12, dtype=np.float32).reshape(3, 4).T,  # Fortran order: written in C order
        "big_endian": np.arange(5, dtype=">f8"),
    }


def _raw_file(path: Path, header: dict | bytes, buffer: bytes = b"", length: int | None = None) -> Path:
    """A safetensors file made by hand: 8-byte length, the header (a dict as JSON, or given bytes), the buffer."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    path.write_bytes((len(text) if length is None else length).to_bytes(8, "little") + text + buffer)
    return path


def _entry(dtype: str, shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ---------------------------------------------------------------------------------------------
# Round trips and layout
# ---------------------------------------------------------------------------------------------


def test_round_trip_keeps_every_value_type_and_shape(tmp_path):
    tensors = _tensors()
    path = write_safetensors(tmp_path / "model.safetensors", tensors)
    back = read_safetensors(path, to_float32=False)
    assert sorted(back) == sorted(tensors)
    for name, array in tensors.items():
        assert back[name].shape == array.shape, name
        assert back[name].dtype == array.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(back[name], array, err_msg=name)


def test_floats_become_float32_by_default_and_integers_stay_integers(tmp_path):
    tensors = _tensors()
    back = read_safetensors(write_safetensors(tmp_path / "m.safetensors", tensors))
    for name, array in tensors.items():
        expected = np.float32 if array.dtype.kind == "f" else array.dtype
        assert back[name].dtype == expected, name
        np.testing.assert_array_equal(back[name], array.astype(expected), err_msg=name)


def test_arrays_own_their_memory_once_the_file_is_gone(tmp_path):
    path = write_safetensors(tmp_path / "m.safetensors", {"a": np.arange(6, dtype=np.float32)})
    back = read_safetensors(path)
    path.unlink()
    assert back["a"].flags.owndata and back["a"].flags.writeable
    back["a"][0] = 10.0
    np.testing.assert_array_equal(back["a"], [10, 1, 2, 3, 4, 5])


def test_layout_header_sorted_compact_and_padded_to_eight_bytes(tmp_path):
    path = write_safetensors(tmp_path / "m.safetensors", {"b": np.ones(3, np.float32), "a": np.zeros(1, np.int64)})
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0 and data[8 + n - 1 : 8 + n].strip() in (b"}", b"")
    header = json.loads(data[8 : 8 + n])
    assert list(header) == ["a", "b"]
    assert header["a"] == {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}
    assert header["b"] == {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]}
    assert data[8 + n :] == np.zeros(1, "<i8").tobytes() + np.ones(3, "<f4").tobytes()
    assert len(data) == 8 + n + 20


def test_metadata_round_trip_and_empty_when_absent(tmp_path):
    meta = {"format": "pt", "note": 'ünïcode, "quotes" and\nnewlines'}
    path = write_safetensors(tmp_path / "m.safetensors", {"a": np.ones(2, np.float32)}, metadata=meta)
    assert safetensors_metadata(path) == meta
    assert safetensors_metadata(write_safetensors(tmp_path / "n.safetensors", {"a": np.ones(2)})) == {}


def test_an_empty_file_of_tensors_round_trips(tmp_path):
    assert read_safetensors(write_safetensors(tmp_path / "m.safetensors", {})) == {}


@pytest.mark.parametrize(
    ("tensors", "metadata", "words"),
    [
        ({"a": np.ones(2, np.uint8)}, None, "uint8"),
        ({"a": np.ones(2, bool)}, None, "bool"),
        ({"a": np.ones(2, np.complex64)}, None, "complex64"),
        ({"a": [1.0, 2.0]}, None, "not a NumPy array"),
        ({"__metadata__": np.ones(2)}, None, "__metadata__"),
        ({"a": np.ones(2)}, {"version": 1}, "strings to strings"),
    ],
    ids=["uint8", "bool", "complex", "list", "reserved-name", "metadata-number"],
)
def test_the_writer_refuses_what_it_cannot_write_and_leaves_the_old_file(tmp_path, tensors, metadata, words):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"the old file")
    with pytest.raises(ValueError, match=words):
        write_safetensors(path, tensors, metadata)
    assert path.read_bytes() == b"the old file"


# ---------------------------------------------------------------------------------------------
# The reference library, both ways
# ---------------------------------------------------------------------------------------------


def test_files_of_the_reference_library_read_equal(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(1)
    tensors = {
        "f32": rng.standard_normal((4, 3)).astype(np.float32),
        "f16": np.array([0.0, -0.0, 1e-7, 65504.0, np.inf, -2.5], dtype=np.float16),  # a subnormal and the largest
        "f64": rng.standard_normal(5),
        "i64": np.array([-(2**62), 0, 2**62], dtype=np.int64),
        "i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "u8": np.array([0, 255], dtype=np.uint8),
        "i8": np.array([-128, 127], dtype=np.int8),
        "scalar": np.array(2.5, dtype=np.float32),
    }
    path = tmp_path / "ref.safetensors"
    st.save_file(tensors, str(path), metadata={"format": "np"})
    kept = read_safetensors(path, to_float32=False)
    for name, array in tensors.items():
        assert kept[name].dtype == array.dtype and kept[name].shape == array.shape, name
        np.testing.assert_array_equal(kept[name], array, err_msg=name)
    widened = read_safetensors(path)
    assert widened["f16"].dtype == widened["f64"].dtype == np.float32
    np.testing.assert_array_equal(widened["f16"], tensors["f16"].astype(np.float32))
    np.testing.assert_array_equal(widened["f64"], tensors["f64"].astype(np.float32))
    assert safetensors_metadata(path) == {"format": "np"}


def test_bfloat16_of_the_reference_library_reads_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    values = torch.tensor([0.0, -0.0, 1.0, -3.140625, 1e-40, 3.0e38, float("inf"), float("nan"), 0.1])
    tensors = {"bf16": values.to(torch.bfloat16), "matrix": torch.randn(3, 4).to(torch.bfloat16)}
    path = tmp_path / "bf16.safetensors"
    st_torch.save_file(tensors, str(path))
    for to_float32 in (True, False):  # bfloat16 always arrives as float32: NumPy has no bfloat16
        back = read_safetensors(path, to_float32=to_float32)
        for name, tensor in tensors.items():
            assert back[name].dtype == np.float32, name
            np.testing.assert_array_equal(back[name], tensor.float().numpy(), err_msg=name)
    assert np.signbit(back["bf16"][1])  # -0.0 keeps its sign bit


def test_the_reference_library_reads_our_files(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    tensors = _tensors()
    path = write_safetensors(tmp_path / "ours.safetensors", tensors, metadata={"by": "miniclip"})
    loaded = st.load_file(str(path))
    assert sorted(loaded) == sorted(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"by": "miniclip"}


# ---------------------------------------------------------------------------------------------
# Faults, each refused in words before anything is returned
# ---------------------------------------------------------------------------------------------

F32x2 = b"\0" * 8  # the buffer of two float32 zeros

# (id, header, buffer, length given in the file or None, words of the message, tensor named, reference refuses too)
FAULTS = [
    ("short", None, b"", None, "too short", None, True),
    ("length-beyond-file", {"a": _entry("F32", [2], 0, 8)}, F32x2, 10_000, "goes beyond", None, True),
    ("not-json", b"{not json", b"", None, "not valid strict JSON", None, True),
    ("nan", b'{"__metadata__": {}, "x": NaN}', b"", None, "NaN is not a JSON number", None, True),
    ("bad-utf8", b'{"\xff": 1}', b"", None, "not valid strict JSON", None, True),
    ("not-an-object", b"[1, 2]", b"", None, "must be a JSON object", None, True),
    ("twice", b'{"a": {}, "a": {}}', b"", None, "appears twice", None, False),  # the reference keeps the last
    ("metadata-number", {"__metadata__": {"v": 1}}, b"", None, "__metadata__ must map", None, True),
    ("no-offsets", {"a": {"dtype": "F32", "shape": [2]}}, F32x2, None, "needs a dtype, a shape and", "a", True),
    ("unknown-dtype", {"a": _entry("F8_E4M3", [8], 0, 8)}, F32x2, None, "unknown dtype 'F8_E4M3'", "a", True),
    ("negative-shape", {"a": _entry("F32", [-2], 0, 8)}, F32x2, None, "shape", "a", True),
    ("reversed-offsets", {"a": _entry("F32", [0], 8, 0)}, F32x2, None, "data_offsets", "a", True),
    ("size-mismatch", {"a": _entry("F32", [3], 0, 8)}, F32x2, None, "needs 12 bytes", "a", True),
    ("outside-buffer", {"a": _entry("F32", [4], 0, 16)}, F32x2, None, "outside the 8 bytes", "a", True),
    ("overlap", {"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [1], 4, 8)}, F32x2, None, "overlaps", "b", True),
    ("gap", {"a": _entry("F32", [1], 4, 8)}, F32x2, None, "bytes 0 to 4, before tensor 'a'", "a", True),
    ("trailing-bytes", {"a": _entry("F32", [1], 0, 4)}, F32x2, None, "last 4 bytes", None, True),
]


@pytest.mark.parametrize(
    ("header", "buffer", "length", "words", "tensor"), [f[1:6] for f in FAULTS], ids=[f[0] for f in FAULTS]
)
@pytest.mark.parametrize("reader", [read_safetensors, safetensors_metadata], ids=["read", "metadata"])
def test_every_fault_is_refused_naming_the_file_and_tensor(tmp_path, reader, header, buffer, length, words, tensor):
    path = tmp_path / "bad.safetensors"
    if header is None:
        path.write_bytes(b"\x01\x02\x03")
    else:
        _raw_file(path, header, buffer, length)
    with pytest.raises(ValueError) as caught:
        reader(path)
    assert str(caught.value).startswith(str(path)) and words in str(caught.value)
    if tensor is not None:
        assert f"tensor {tensor!r}" in str(caught.value)


@pytest.mark.parametrize(
    ("header", "buffer", "length"), [f[1:4] for f in FAULTS if f[6]], ids=[f[0] for f in FAULTS if f[6]]
)
def test_the_reference_library_refuses_the_same_faults(tmp_path, header, buffer, length):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "bad.safetensors"
    if header is None:
        path.write_bytes(b"\x01\x02\x03")
    else:
        _raw_file(path, header, buffer, length)
    with pytest.raises(Exception):  # noqa: B017 - SafetensorError, or an AttributeError for float8 on old NumPy
        st.load_file(str(path))


def test_a_header_longer_than_the_format_allows_is_refused(tmp_path, monkeypatch):
    from miniclip.pretrained import safetensors as module

    monkeypatch.setattr(module, "MAX_HEADER", 16)  # the real limit, 100 MB, would need a file that large
    path = write_safetensors(tmp_path / "m.safetensors", {"a": np.ones(2, np.float32)})
    with pytest.raises(ValueError, match="longer than the 16 the format allows"):
        read_safetensors(path)


def test_a_pytorch_zip_named_safetensors_is_recognised(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 60)
    with pytest.raises(ValueError, match="starts like a pickle"):
        read_safetensors(path)


# ---------------------------------------------------------------------------------------------
# Pickle, never
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", PICKLE_SUFFIXES)
def test_pickle_files_are_refused_by_name_with_the_safetensors_layout(tmp_path, suffix):
    path = tmp_path / f"pytorch_model{suffix.upper() if suffix == '.bin' else suffix}"
    for call in (refuse_pickle, read_safetensors, safetensors_metadata):  # refused before the file is even opened
        with pytest.raises(ValueError) as caught:
            call(path)
        message = str(caught.value)
        assert "never reads pickle" in message and str(path) in message
        for name in ("model.safetensors", "config.json", "vocab.json", "merges.txt"):
            assert name in message


def test_other_names_pass_refuse_pickle():
    for name in ("model.safetensors", "weights", "config.json", "archive.bin.safetensors"):
        assert refuse_pickle(name) is None
