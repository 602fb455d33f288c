"""Atomic file writing: whoever reads ``path`` sees the old file or the new one, never half of one.

Every file miniclip writes goes through :func:`write_atomically`: the checkpoint and the
``config.json``, ``tokenizer.json`` and ``metrics.jsonl`` beside it, the figures, and the
CIFAR-10 download. The bytes go into a temporary file in the same folder (so the rename
below never crosses file systems), are flushed and synced to the disk, and the temporary
file is then renamed onto ``path`` with :func:`os.replace`, which is one step on POSIX and
on Windows. If anything raises before that — a full disk, a failed checksum, Ctrl-C — the
temporary file is removed and ``path`` is left exactly as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a binary temporary file beside ``path``, sync it, then rename it onto ``path``.

    The folder must exist. On any error the temporary file is removed, ``path`` is left as it
    was and the error propagates. Returns ``path`` (as a :class:`~pathlib.Path`).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
