"""Checkpoints: everything needed to use a model or resume its training, in one ``.npz`` file.

``checkpoint.npz`` is a zip of plain NumPy arrays, never pickles (``np.load`` runs with
``allow_pickle=False``, so loading a file cannot run code, and a CPU run can load what a GPU
run wrote)::

    model/<name>   every parameter and buffer of the model (``Module.state()``), e.g.
                   model/image.stem_bn.running_mean
    optim/<name>   the optimiser's state (``AdamW.state()``: step, m.<name>, v.<name>)
    meta           uint8 bytes of UTF-8 JSON: format and version, the ModelConfig, the
                   tokenizer, the training configuration, progress (epoch, step), the
                   random generators' states and the history of metrics

The tokenizer is the word-level one a run builds from its captions, or, for a run fine-tuned
from released weights, CLIP's byte-pair tokenizer; each says which it is in its ``"format"``,
and :func:`tokenizer_from_dict` reads either back.

The file is written *atomically* (:mod:`miniclip.atomic`): into a temporary file in the same
folder, flushed to the disk, then renamed onto ``checkpoint.npz`` in one step. A crash or an
error mid-write leaves the previous checkpoint whole. ``config.json`` and ``tokenizer.json``
are written beside it for people to read; the ``.npz`` is the truth.

The model is rebuilt from its saved configuration with :func:`build_model`, in the dtype its
arrays were saved in, on the current device.

Lesson 09 stops a run and resumes it from one.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.atomic import json_text, write_atomically, write_text
from miniclip.model.bpe import FORMAT as BPE_FORMAT
from miniclip.model.bpe import BPETokenizer
from miniclip.model.clip import CLIP
from miniclip.model.config import ModelConfig, build_model
from miniclip.model.predictive import PredictiveModel
from miniclip.model.tokenizer import FORMAT as WORD_FORMAT
from miniclip.model.tokenizer import Tokenizer
from miniclip.module import Module

FORMAT, VERSION = "miniclip-checkpoint", 1
FILENAME = "checkpoint.npz"
ZIP_MAGIC = b"PK\x03\x04"  # how every .npz (a zip archive) begins
# Parameters renamed since checkpoints were first written, old name → new name: a checkpoint
# that holds an old name loads as if it held the new one (its optimiser moments too).
RENAMED = {"temperature.logit_scale": "logit_scale.log_scale"}  # CLIP.temperature became CLIP.logit_scale


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns: a ready model and everything needed to resume."""

    model: CLIP | PredictiveModel  # rebuilt from model_config, weights and buffers loaded, on the current device
    model_config: ModelConfig
    tokenizer: Tokenizer | BPETokenizer  # word-level, or CLIP's byte pairs for a run fine-tuned from released weights
    optimizer_state: dict[str, np.ndarray] | None  # host arrays for AdamW.load_state; None if none was saved
    train_config: dict[str, Any]
    progress: dict[str, Any]  # e.g. {"epoch": 3, "step": 1200}
    rng_state: dict[str, Any] | None  # as given to save_checkpoint
    metrics: list[dict[str, Any]]
    path: Path  # the .npz file it was read from


def checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it names an ``.npz`` file, else ``path/checkpoint.npz`` (a run folder)."""
    path = Path(path)
    return path if path.suffix == ".npz" and not path.is_dir() else path / FILENAME


def tokenizer_from_dict(data: Any, source: str = "tokenizer") -> Tokenizer | BPETokenizer:
    """The tokenizer ``data`` describes, by its ``"format"``: word-level (:class:`Tokenizer`) or byte-pair."""
    kinds = {WORD_FORMAT: Tokenizer, BPE_FORMAT: BPETokenizer}
    kind = data.get("format") if isinstance(data, dict) else None
    if kind not in kinds:
        raise ValueError(f"{source} is not a miniclip tokenizer: its format {kind!r} is none of {sorted(kinds)}")
    return kinds[kind].from_dict(data, source=source)


def _json(value: Any, what: str, **options: Any) -> str:
    """Strict JSON (:func:`~miniclip.atomic.json_text`: NumPy scalars as numbers, NaN as null)."""
    try:
        return json_text(value, **options)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"checkpoint {what} must be JSON-serialisable (plain numbers, strings, lists, dicts): {exc}"
        ) from None


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: Module,
    model_config: ModelConfig,
    tokenizer: Tokenizer | BPETokenizer,
    optimizer: Any = None,
    train_config: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
    rng_state: dict[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
) -> Path:
    """Write ``checkpoint.npz`` (plus ``config.json`` and ``tokenizer.json``) atomically; return its path.

    ``path`` is the ``.npz`` file or the run folder (created if missing). ``optimizer`` is
    anything with ``state()`` (AdamW). ``train_config``, ``progress``, ``rng_state`` and
    ``metrics`` are stored as given and must be JSON-able (NumPy scalars are converted).
    """
    file = checkpoint_file(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    train_config = dict(train_config or {})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model_config.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "optimizer": None if optimizer is None else type(optimizer).__name__,
        "train_config": train_config,
        "progress": dict(progress or {}),
        "rng_state": rng_state,
        "metrics": list(metrics or []),
    }
    meta_bytes = np.frombuffer(_json(meta, "metadata", ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    arrays = {f"model/{name}": a for name, a in model.state().items()}
    if optimizer is not None:
        arrays |= {f"optim/{name}": a for name, a in optimizer.state().items()}
    arrays["meta"] = meta_bytes  # (bytes,)

    write_atomically(file, lambda f: np.savez(f, **arrays))
    config_text = _json({"model": meta["model_config"], "train": train_config}, "config", indent=2) + "\n"
    write_text(file.parent / "config.json", config_text)
    tokenizer.save(file.parent / "tokenizer.json")  # atomic too
    return file


def _read_arrays(file: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file, read now; a damaged or foreign file raises ``ValueError``."""
    with open(file, "rb") as f:
        if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            raise ValueError(f"{file} is not a miniclip checkpoint (not an .npz archive)")
    damaged = f"{file} is truncated or corrupt; delete it or resume from another checkpoint"
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}  # read every member now, inside the try
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(
                f"{file} holds Python objects (an object array) that only pickle could load; "
                "miniclip checkpoints never contain pickles and this loader will not unpickle"
            ) from None
        raise ValueError(f"{damaged} ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ValueError(f"{damaged} ({type(exc).__name__}: {exc})") from None


def _read_meta(file: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Decode ``meta`` and check the format and version."""
    raw = arrays.get("meta")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{file} is not a miniclip checkpoint (no 'meta' array of uint8 bytes)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: the checkpoint's metadata is not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f'{file} is not a miniclip checkpoint (expected "format": "{FORMAT}" in its metadata)')
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{file}: checkpoint format version {version!r} is not valid")
    if version > VERSION:
        raise ValueError(
            f"{file} was written by a newer miniclip (checkpoint format version {version}; "
            f"this one reads up to {VERSION}): upgrade miniclip to load it"
        )
    missing = [k for k in ("model_config", "tokenizer") if k not in meta]
    if missing:
        raise ValueError(f"{file}: the checkpoint's metadata lacks {missing}")
    return meta


def _renamed(name: str) -> str:
    """The current name of a parameter saved as ``name`` (see :data:`RENAMED`)."""
    return RENAMED.get(name, name)


def _check_finite(file: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse a checkpoint whose weights, buffers or optimiser moments hold NaN or ±inf, naming the first such array."""
    for key, a in arrays.items():
        if key != "meta" and np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            bad = int(np.count_nonzero(~np.isfinite(a)))
            raise ValueError(
                f"{file}: {key} holds {bad} NaN or infinite value{'s' if bad != 1 else ''} of {a.size}; "
                "the weights are unusable (resume from an earlier checkpoint or train again)"
            )


def load_checkpoint(path: str | os.PathLike[str], *, dtype: Any = None) -> Checkpoint:
    """Read a checkpoint (the ``.npz`` file or its run folder) and rebuild the model on the current device.

    ``dtype=None`` keeps the dtype the weights were saved in; a dtype (``np.float64``) converts them.
    """
    file = checkpoint_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"no checkpoint at {file}")
    arrays = _read_arrays(file)
    meta = _read_meta(file, arrays)
    model_state = {_renamed(k.removeprefix("model/")): a for k, a in arrays.items() if k.startswith("model/")}
    saved_dtypes = sorted({str(a.dtype) for a in model_state.values() if np.issubdtype(a.dtype, np.floating)})
    if len(saved_dtypes) != 1:
        raise ValueError(f"{file}: expected model arrays of one float dtype, found {saved_dtypes or 'none'}")
    _check_finite(file, arrays)
    try:
        model_config = ModelConfig.from_dict(meta["model_config"])
        tokenizer = tokenizer_from_dict(meta["tokenizer"], source=f"{file} (tokenizer)")
        if tokenizer.vocab_size != model_config.vocab_size:
            raise ValueError(
                f"its tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
                f"{model_config.vocab_size}: the tokenizer and the model's token table must match"
            )
        model = build_model(model_config, rng=np.random.default_rng(0), dtype=dtype or saved_dtypes[0])
        model.load_state(model_state)  # every name and shape checked before anything is copied
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{file}: {exc}") from None
    optimizer_state = None
    if meta.get("optimizer") is not None:
        optimizer_state = {k.removeprefix("optim/"): a for k, a in arrays.items() if k.startswith("optim/")}
        optimizer_state = {  # AdamW's state: "step", and the moments "m.<name>", "v.<name>"
            k if k == "step" else k[:2] + _renamed(k[2:]): a for k, a in optimizer_state.items()
        }
    return Checkpoint(
        model=model,
        model_config=model_config,
        tokenizer=tokenizer,
        optimizer_state=optimizer_state,
        train_config=meta.get("train_config") or {},
        progress=meta.get("progress") or {},
        rng_state=meta.get("rng_state"),
        metrics=meta.get("metrics") or [],
        path=file,
    )
