"""Output folders that every command writes into."""
from __future__ import annotations

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
