"""Where built data sets and fetched source files live: a per-user cache directory.

``TAAF_CACHE_DIR`` overrides the platform default (e.g. ``~/.cache/taaf-toolkit`` on Linux),
which is how tests and CI keep their own cache.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir(sub: str = "") -> Path:
    """The cache folder (or its ``sub`` folder), created if missing; ``TAAF_CACHE_DIR`` overrides the default."""
    from taaf.errors import DataError

    root = Path(os.environ.get("TAAF_CACHE_DIR") or user_cache_dir("taaf-toolkit"))
    path = root / sub if sub else root
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot use the cache folder {path} ({exc.strerror or exc}); set TAAF_CACHE_DIR to "
                        f"a writable folder") from None
    if not path.is_dir():
        raise DataError(f"cannot use the cache folder {path}: it is not a folder; set TAAF_CACHE_DIR")
    return path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file read in 1 MiB blocks, to verify downloaded sources without loading them whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of in-memory bytes, recorded as the provenance of source data."""
    return hashlib.sha256(data).hexdigest()


def default_file_mode() -> int:
    """0o666 minus the umask: what a plain ``open(path, "w")`` would create (mkstemp uses 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
