"""Where built data sets and fetched source files live: a per-user cache directory.

``TAAF_CACHE_DIR`` overrides the platform default (e.g. ``~/.cache/taaf-toolkit`` on Linux),
which is how tests and CI keep their own cache.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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


def cached_build(name: str, key: str, build: Callable[[], tuple[dict[str, np.ndarray], dict]],
                 from_arrays: Callable[[Any, dict], Any], use_cache: bool = True) -> tuple[Any, dict]:
    """``(dataset, manifest)`` of the built data set ``name`` with config ``key``: loaded from
    ``cache_dir(name)/name-key.npz`` + ``.json`` when both read back, else ``build()``-t (arrays,
    manifest), converted by ``from_arrays`` and written there atomically. A truncated,
    bit-flipped or stale entry (or a manifest of the wrong type) is rebuilt, never trusted; an
    unwritable cache is one clear :class:`~taaf.errors.DataError`. One implementation for every
    built data set (AV-Digits, AV-MNIST-Temporal)."""
    from taaf.errors import DataError

    folder = cache_dir(name)
    data_path, manifest_path = folder / f"{name}-{key}.npz", folder / f"{name}-{key}.json"
    if use_cache and data_path.is_file() and manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            with np.load(data_path, allow_pickle=False) as npz:
                return from_arrays(npz, manifest), manifest
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError, DataError,
                zipfile.BadZipFile, zlib.error):
            pass  # rebuilt below
    arrays, manifest = build()
    dataset = from_arrays(arrays, manifest)
    if use_cache:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            atomic_write_bytes(data_path, buffer.getvalue())
            atomic_write_bytes(manifest_path, json.dumps(manifest, indent=2).encode())
        except OSError as exc:
            raise DataError(f"cannot write the data cache in {folder} ({exc.strerror or exc}); set "
                            f"TAAF_CACHE_DIR to a writable folder") from None
    return dataset, manifest
