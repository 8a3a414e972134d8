"""Atomic file writes: the data goes to a temporary file in the target's folder, which then replaces
the target in one `os.replace` — a crash or a full disk never leaves a half-written golden, manifest,
results JSON or report behind."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes | str, encoding: str = "utf-8") -> None:
    """Write `data` (bytes, or text in `encoding`) to `path` atomically, with the usual permissions."""
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
