"""The safetensors format by hand: a length, a JSON header, then the raw bytes of every tensor.

A ``.safetensors`` file has three parts::

    bytes 0 .. 8          N, the header length: an unsigned 64-bit integer, little-endian
    bytes 8 .. 8 + N      the header: N bytes of UTF-8 JSON (padded with spaces)
    bytes 8 + N .. end    the buffer: the tensors' bytes, back to back

The header maps each tensor's name to its element type, its shape and its byte range in the
buffer (``[begin, end)``, counted from the first byte after the header), and may hold one
free-form table of strings under ``__metadata__``::

    {"__metadata__": {"format": "pt"},
     "text_projection.weight": {"dtype": "F32", "shape": [512, 512], "data_offsets": [0, 1048576]},
     "logit_scale":            {"dtype": "F32", "shape": [],         "data_offsets": [1048576, 1048580]}}

A tensor's bytes are its elements in C order (the last index fastest), little-endian:
``end − begin`` is the number of elements times the element size. The byte ranges tile the
buffer: sorted, they touch end to begin with no gap and no overlap, and the last one ends
where the file ends (the reference reader refuses anything else, and so does this one).

**Why it is safe.** Reading is parsing: a number, a JSON text, bytes copied into arrays.
Nothing in the file is ever *run*. A pickle file (PyTorch's ``.bin``, ``.pt``, ``.pth``,
``.ckpt``) is a small program that the unpickler executes to rebuild the objects, and it may
name any Python function to call — opening a pickle from the internet is running its code.
miniclip never unpickles anything from disk (:func:`refuse_pickle`), and every header is
checked before a single tensor is read, each fault a ``ValueError`` naming the file and the
tensor.

**Element types.** ``F32``, ``F64``, ``F16``, ``BF16``, ``BOOL`` and the integers ``I8`` …
``U64`` are read. Integers stay integers; by default every float becomes float32, the type
miniclip computes in. ``BF16`` ("brain float") has no NumPy type, but it needs none: it is a
float32 with the low 16 bits of its mantissa cut off — the same sign bit, the same 8 exponent
bits, the top 7 mantissa bits. Its 16 bits are therefore the top half of a float32, and
``(bits as uint32) << 16`` viewed as float32 is its value, exactly.

Lesson 16 reads a saved model's tensors with it and counts them against the name table.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from miniclip.atomic import json_text, strict_json, write_atomically

METADATA = "__metadata__"
MAX_HEADER = 100_000_000  # bytes; the reference refuses longer headers, so a file cannot make us parse gigabytes
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

# The element types this module reads: safetensors name → NumPy type of the bytes on disk (little-endian).
# BF16 is read as its raw 16 bits and widened by hand; BOOL as bytes, 0 false and anything else true.
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "BOOL": "|u1",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "|i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "|u1",
}  # fmt: skip
# The types write_safetensors writes, by (NumPy kind, bytes per element).
WRITABLE = {("f", 4): "F32", ("f", 8): "F64", ("f", 2): "F16", ("i", 8): "I64", ("i", 4): "I32"}


def refuse_pickle(path: str | os.PathLike[str]) -> None:
    """A ``ValueError`` in words if ``path`` names a pickle file: ``.bin``, ``.pt``, ``.pth``, ``.ckpt`` or ``.pkl``."""
    suffix = Path(path).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise ValueError(
            f"{path} is a {suffix} file, which holds a pickle: miniclip never reads pickle, because unpickling "
            "runs whatever code the file names. Use the model's safetensors release instead: a folder with "
            "model.safetensors beside config.json, vocab.json and merges.txt"
        )


def _naturals(value: Any) -> bool:
    """Whether ``value`` is a JSON list of whole numbers >= 0."""
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _read_header(f: IO[bytes], path: Path) -> tuple[dict[str, Any], int]:
    """The parsed header of the open file ``f``, and the size of its buffer in bytes."""
    size = os.fstat(f.fileno()).st_size
    if size < 8:
        raise ValueError(f"{path} is {size} bytes long: too short for safetensors, which starts with an 8-byte length")
    start = f.read(8)
    n = int.from_bytes(start, "little")
    if n > size - 8:
        pickled = start[:1] == b"\x80" or start[:4] == b"PK\x03\x04"  # a pickle, or PyTorch's zip of pickles
        looks = " (it starts like a pickle or a PyTorch zip file, not safetensors)" if pickled else ""
        raise ValueError(f"{path}: the header length {n} goes beyond the file's {size - 8} bytes after it{looks}")
    if n > MAX_HEADER:
        raise ValueError(f"{path}: a header of {n} bytes is longer than the {MAX_HEADER} the format allows")
    try:
        text = f.read(n).decode("utf-8")
        header = strict_json(text)
    except ValueError as exc:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
        raise ValueError(f"{path}: the header is not valid strict JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header must be a JSON object, got {type(header).__name__}")
    meta = header.get(METADATA, {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{path}: {METADATA} must map names to strings, got {meta!r}")
    return header, size - 8 - n


def _entries(header: dict[str, Any], path: Path, buffer: int) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """Each tensor's ``(dtype, shape, begin, end)``, after checking every entry and that the ranges tile the buffer."""
    entries = {}
    for name, info in header.items():
        if name == METADATA:
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            raise ValueError(f"{where} needs a dtype, a shape and data_offsets, got {info!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise ValueError(f"{where} has the unknown dtype {dtype!r} (miniclip reads {', '.join(DTYPES)})")
        if not _naturals(shape):
            raise ValueError(f"{where} has the shape {shape!r}, not a list of whole numbers >= 0")
        if not (_naturals(offsets) and len(offsets) == 2 and offsets[0] <= offsets[1]):
            raise ValueError(f"{where} has data_offsets {offsets!r}, not [begin, end] with 0 <= begin <= end")
        nbytes = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise ValueError(
                f"{where}: shape {shape} of {dtype} needs {nbytes} bytes, but data_offsets {offsets} "
                f"hold {offsets[1] - offsets[0]}"
            )
        if offsets[1] > buffer:
            raise ValueError(f"{where}: data_offsets {offsets} lie outside the {buffer} bytes after the header")
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    at, before = 0, None  # sorted by place, each range must start where the one before it ends
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin < at:
            raise ValueError(f"{path}: tensor {name!r} overlaps tensor {before!r} (bytes {begin} to {at})")
        if begin > at:
            raise ValueError(f"{path}: bytes {at} to {begin}, before tensor {name!r}, belong to no tensor")
        at, before = end, name
    if at != buffer:
        raise ValueError(f"{path}: the last {buffer - at} bytes of the file belong to no tensor")
    return entries


def _as_read(raw: np.ndarray, dtype: str, to_float32: bool) -> np.ndarray:
    """The bytes of one tensor, read as ``DTYPES[dtype]``, as the array miniclip uses (native byte order)."""
    raw = raw.astype(raw.dtype.newbyteorder("="), copy=False)  # a copy only on a big-endian machine
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)  # the 16 bits are the top half of a float32
    if dtype == "BOOL":
        return raw != 0
    if to_float32 and dtype in ("F16", "F64"):
        return raw.astype(np.float32)
    return raw


def read_safetensors(path: str | os.PathLike[str], *, to_float32: bool = True) -> dict[str, np.ndarray]:
    """Every tensor of the safetensors file ``path``, by name, as NumPy arrays that own their memory.

    The whole header is checked first (:func:`_entries`); then each tensor's bytes are read
    straight into a new array, so nothing refers to the file once it is closed. Floats become
    float32 (``to_float32=False`` keeps F16 and F64; BF16 always becomes float32, which holds
    every bfloat16 exactly). A pickle file is refused by its name (:func:`refuse_pickle`).
    """
    path = Path(path)
    refuse_pickle(path)
    with open(path, "rb") as f:
        header, buffer = _read_header(f, path)
        start = f.tell()
        tensors = {}
        for name, (dtype, shape, begin, end) in _entries(header, path, buffer).items():
            raw = np.empty(shape, dtype=DTYPES[dtype])  # its own memory, filled from the file
            f.seek(start + begin)
            if f.readinto(raw.reshape(-1).view(np.uint8)) != end - begin:
                raise ValueError(f"{path}: tensor {name!r}: the file ended early (was it changed while read?)")
            tensors[name] = _as_read(raw, dtype, to_float32)
    return tensors


def safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``__metadata__`` table of the safetensors file ``path`` (``{}`` if it has none); reads only the header."""
    path = Path(path)
    refuse_pickle(path)
    with open(path, "rb") as f:
        header, buffer = _read_header(f, path)
    _entries(header, path, buffer)
    return dict(header.get(METADATA, {}))


def write_safetensors(
    path: str | os.PathLike[str], tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> Path:
    """Write ``tensors`` (and ``metadata``) to ``path`` as safetensors, atomically; returns ``path``.

    Tensors go in sorted name order, C order, little-endian; the header is compact JSON padded
    with spaces to a multiple of 8 bytes, as the reference writes it, so that the buffer starts
    8-byte aligned. float32, float64, float16, int64 and int32 arrays are written; other types
    are refused rather than silently converted.
    """
    if metadata and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError(f"metadata must map strings to strings, got {metadata!r}")
    if not all(isinstance(name, str) and name != METADATA for name in tensors):
        raise ValueError(f"tensor names must be strings other than {METADATA!r}, got {list(tensors)!r}")
    header: dict[str, Any] = {METADATA: dict(metadata)} if metadata else {}
    arrays, at = [], 0
    for name in sorted(tensors):
        array = tensors[name]
        if not isinstance(array, (np.ndarray, np.generic)):  # a NumPy array or scalar; CuPy arrays are refused
            raise ValueError(f"tensor {name!r} is a {type(array).__name__}, not a NumPy array (move it to the host)")
        code = WRITABLE.get((array.dtype.kind, array.dtype.itemsize))
        if code is None:
            raise ValueError(
                f"tensor {name!r} is {array.dtype}: miniclip writes float32, float64, float16, int64, int32"
            )
        data = np.ascontiguousarray(array, dtype=DTYPES[code])  # C order, little-endian
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [at, at + data.nbytes]}
        arrays.append(data)
        at += data.nbytes
    text = json_text(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)

    def write(f: IO[bytes]) -> None:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for data in arrays:
            f.write(data.tobytes())

    return write_atomically(path, write)
