"""Writing output so that nothing is lost: places checked first, files atomic, reports staged, JSON strict.

Every command that writes follows the same five rules, all kept here.

**The output place is checked before any work** (:func:`check_output_folder`,
:func:`check_output_file`): a folder that is a file, lies under a file, or cannot be written
(read-only, no permission, ``/proc``) is refused in words before any data is loaded, any
image encoded or any epoch trained, so minutes of work never end in ``File exists``.
Writing is proven the way files are written: by an atomic write of a small file in the
folder, or in the nearest folder above it that exists (removed again).

**A file is the old one or the new one** (:func:`write_atomically`): the bytes go into a
temporary file in the same folder (so the rename never crosses file systems), are flushed
and synced to the disk, and the temporary file is renamed onto ``path`` with
:func:`os.replace`, one step on POSIX and on Windows. If anything raises before that — a full
disk, a failed checksum, Ctrl-C — the temporary file is removed and ``path`` is left as it
was. The checkpoint and the ``config.json``, ``tokenizer.json`` and ``metrics.jsonl`` beside
it, the figures, the reports and the CIFAR-10 download all go through it.

**A report of several files appears whole** (:func:`staged_folder`): the files are written
into a hidden folder inside ``out`` and moved in only when every one of them is there.

**Nothing is left behind by a killed run**: Ctrl-C, SIGTERM and SIGHUP unwind like an error
(the command line turns the two signals into ``KeyboardInterrupt``), so the temporary files
and staging folders are removed on the way out. Only a process killed outright (SIGKILL, a
power cut) cannot clean up; its leftovers carry its process id and machine in their names,
and the next command that writes to the same place removes those whose process is gone,
saying so (:func:`clear_leftovers`).

**JSON is strict** (:func:`json_text`): a number that could not be measured (NaN, e.g. the
accuracy of a class with no test images) is written as ``null``, never as the bare ``NaN``
that JSON parsers (a browser's ``JSON.parse``, ``jq``) refuse.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import signal
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

WRITE_CHECK = ".miniclip-write-check"  # a file written and removed where a command will write, before any work
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"  # letters and digits: one name part
# .NAME.PID@HOST-RANDOM.tmp (a file being written) or .partial (a report being staged)
LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9]+)-[^.]+\.(?:tmp|partial)$")


def temporary_prefix(name: str) -> str:
    """``.NAME.PID@HOST-``: the start of a temporary name, saying which process on which machine is writing it.

    A later run can then tell a killed run's leftovers from those of a run still going, here
    or on another machine that shares the folder (:func:`clear_leftovers`).
    """
    return f".{name}.{os.getpid()}@{_HOST}-"


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a binary temporary file beside ``path``, sync it, then rename it onto ``path``.

    The folder must exist. On any error the temporary file is removed, ``path`` is left as it
    was and the error propagates. Returns ``path`` (as a :class:`~pathlib.Path`).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on the disk before the rename makes them the file
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; nothing miniclip writes is a secret
        os.replace(tmp, path)  # one step: readers see the old file or the new one
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    return write_atomically(path, lambda f: f.write(text.encode("utf-8")))


# ---------------------------------------------------------------------------------------------
# Strict JSON
# ---------------------------------------------------------------------------------------------


def _finite_or_none(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as plain Python values, and every non-finite float as None."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite_or_none(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value: Any, **options: Any) -> str:
    """Strict JSON of ``value``: NaN and ±inf become ``null``; anything JSON cannot hold is a ``TypeError``."""
    return json.dumps(_finite_or_none(value), allow_nan=False, **options)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _refuse_repeated_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a name given twice is an error (plain ``json`` would keep the last silently)."""
    table: dict[str, Any] = {}
    for name, value in pairs:
        if name in table:
            raise ValueError(f"the name {name!r} appears twice in one object")
        table[name] = value
    return table


def strict_json(text: str) -> Any:
    """Parse ``text`` as strict JSON: ``NaN``/``Infinity`` and a name repeated in one object are ``ValueError``s.

    Python's ``json`` reads both without a word (the repeated name keeps its last value); files
    miniclip reads from others (a model's ``config.json``, a safetensors header, a vocabulary) go
    through this instead.
    """
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_repeated_names)


# ---------------------------------------------------------------------------------------------
# Output places, checked before any work
# ---------------------------------------------------------------------------------------------


def _prove_writable(folder: Path, out: Path) -> None:
    """Write and remove a small file in ``folder`` as every output is written; a ValueError in words if it fails."""
    check = folder / f"{WRITE_CHECK}.{os.getpid()}@{_HOST}"  # its own name: two commands may check one folder
    try:
        write_atomically(check, lambda f: f.write(b"miniclip checks that it can write here\n"))
        check.unlink(missing_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            reason = f"it is not writable ({reason})"
        elif exc.errno == errno.ENOENT:  # the folder is there, yet a file made in it is not (/proc, /sys)
            reason = "it does not accept new files"
        where = f"the output folder {out}" if folder == out else f"{folder}, where the output folder {out} would go"
        raise ValueError(f"cannot write to {where}: {reason}; choose another --out or make it writable") from None


def check_output_folder(out: str | os.PathLike[str], *, create: bool = False) -> Path:
    """``out`` as an absolute Path, once it is certain that the files of a command can be written there.

    Refused with a ``ValueError`` in words: ``out`` is a file (or a link to nothing), lies under
    a file, or cannot be written. A folder that does not exist yet is proven writable in the
    nearest folder above it that does, and is created only with ``create=True`` (so a command
    refused later leaves nothing behind). Leftovers of an earlier run that was killed are
    removed (:func:`clear_leftovers`).
    """
    out = Path(os.path.abspath(out))  # "." and ".." as the folders they name
    if out.is_symlink() and not out.exists():
        raise ValueError(f"the output folder {out} is a link to {os.readlink(out)}, which does not exist")
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output folder {out} is a file, not a folder: choose another --out")
    if out.exists():
        _prove_writable(out, out)
        clear_leftovers(out)
        return out
    above = next(p for p in out.parents if p.exists())  # the root always exists
    if not above.is_dir():
        raise ValueError(f"cannot create the output folder {out}: {above} is a file, not a folder")
    _prove_writable(above, out)
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    return out


def check_output_file(path: str | os.PathLike[str], suffix: str) -> Path:
    """``path`` as an absolute Path: a name ending in ``suffix``, in a folder :func:`check_output_folder` accepts."""
    path = Path(os.path.abspath(path))
    kind = suffix.removeprefix(".").upper()  # "PNG"
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder: give the {kind} file to write, e.g. {path / ('out' + suffix)}")
    if path.suffix.lower() != suffix:
        raise ValueError(f"--out {path}: it is written as {kind}, so its name must end in {suffix}")
    check_output_folder(path.parent)
    return path


# ---------------------------------------------------------------------------------------------
# Staged reports, and what a killed run leaves
# ---------------------------------------------------------------------------------------------


# The signals that stop a command the way Ctrl-C does (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def interrupt_now(signum: int, frame: Any) -> None:
    """A signal handler that raises ``KeyboardInterrupt`` naming the signal, so every clean-up on the way out runs."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def staged_folder(out: str | os.PathLike[str], name: str = "report") -> Iterator[Path]:
    """A hidden folder inside ``out`` to write a report into; its files move into ``out`` when the block ends.

    If the block raises (an error, Ctrl-C, SIGTERM), the hidden folder is removed, and so is
    ``out`` if it was made for it and is empty: ``out`` is left as it was. Otherwise each file
    is moved in with an atomic rename, with Ctrl-C, SIGTERM and SIGHUP held back until the
    last one is in, so the folder never shows a new figure beside an old summary. (Staging
    inside ``out`` keeps every rename within one folder that :func:`check_output_folder` proved.)
    """
    out = Path(os.path.abspath(out))
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=temporary_prefix(name), suffix=".partial", dir=out))
    try:
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if made and not any(out.iterdir()):
                out.rmdir()
            raise
        held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if hasattr(signal, "pthread_sigmask") else None
        try:
            for file in sorted(staging.iterdir()):
                os.replace(file, out / file.name)
        finally:
            if held is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a signal that came meanwhile is handled now
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal exists too)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only the existence is checked
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def clear_leftovers(folder: str | os.PathLike[str], name: str | None = None) -> list[str]:
    """Remove the temporary files and staging folders in ``folder`` of processes that no longer run.

    Only names this module makes (:func:`temporary_prefix`: ``.NAME.PID@HOST-RANDOM.tmp`` and
    ``….partial``) are touched, only those made on this machine (a process id means nothing
    on another one that shares the folder), only those of a process that is gone, and, with
    ``name``, only those for that name. Each removal is announced with a warning; returns the
    names removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        found = LEFTOVER.match(entry.name)
        if not found or found["host"] != _HOST or (name is not None and found["name"] != name):
            continue
        if _running(int(found["pid"])):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    if removed:
        warnings.warn(
            f"removed {len(removed)} unfinished file(s) in {folder} left by an earlier run that was killed: "
            f"{', '.join(removed)}",
            stacklevel=2,
        )
    return removed
