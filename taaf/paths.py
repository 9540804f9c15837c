"""Output folders and files that every command writes into, checked before any work starts."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from taaf.errors import TaafError


def prepare_output_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise one clear :class:`TaafError`.

    The probe is a unique temporary file: under torchrun every rank checks the same folder.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaafError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise TaafError(f"output folder {out} is not writable: {exc.strerror or exc}") from None
    return out


def _nearest_existing(path: Path) -> Path:
    base = path
    while not base.exists() and base.parent != base:
        base = base.parent
    return base


def _probe_writable(base: Path, what: str) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise TaafError(f"cannot write {what}: {base} is not writable ({exc.strerror or exc})") from None


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file (after resolving links; hard links too)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output_file(path: str | Path, inputs=()) -> Path:
    """Fail before any work, creating nothing, when ``path`` could not be written as a file:
    it names one of ``inputs``, an existing folder or special file, lies under a regular file,
    or its nearest existing folder is not writable (a read-only folder, /proc)."""
    out = Path(path)
    for source in inputs:
        if source is not None and same_file(out, source):
            raise TaafError(f"an output path is one of the inputs: {out} (choose another file)")
    if out.is_dir():
        raise TaafError(f"cannot write {out}: it is a folder (name a file)")
    if out.exists() and not out.is_file():
        raise TaafError(f"cannot write {out}: it exists and is not a regular file")
    base = _nearest_existing(out.parent)
    if not base.is_dir():
        raise TaafError(f"cannot write {out}: {base} is not a folder")
    _probe_writable(base, str(out))
    return out


def check_output_dir(path: str | Path, inputs=()) -> Path:
    """Fail before any work, creating nothing, when ``path`` could not be created or written as
    a folder (it is a file or one of ``inputs``, lies under a regular file, or is not writable)."""
    out = Path(path)
    for source in inputs:
        if source is not None and same_file(out, source):
            raise TaafError(f"an output path is one of the inputs: {out} (choose another folder)")
    if out.exists() and not out.is_dir():
        raise TaafError(f"cannot use output folder {out}: it exists and is not a folder")
    base = _nearest_existing(out)
    if not base.is_dir():
        raise TaafError(f"cannot create output folder {out}: {base} is not a folder")
    _probe_writable(base, f"output folder {out}")
    return out
