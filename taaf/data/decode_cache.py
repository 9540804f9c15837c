"""Decode CREMA-D / AVE once: the built splits are cached under the user cache dir, keyed by
everything they depend on, so later runs (every study job) load arrays instead of re-decoding
every wav and jpg.

The key hashes the loader's parameters, the split lists (every clip record: id, label, AVE's
segment bounds) and, for every
clip, the name, size and modification time of each source file (the wav and every file of the
clip's frame folder). Editing, adding or removing a source file therefore rebuilds; an
unreadable or mismatched cache entry is rebuilt too, never trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

from taaf.data.base import MultimodalDataset, MultimodalSplit
from taaf.data.cache import atomic_write_bytes, cache_dir
from taaf.errors import DataError

Clip = TypeVar("Clip")
SPLITS = ("train", "val", "test")
VERSION = 1  # bump when a loader's decoding changes, so old entries are not reused


def source_fingerprint(paths: Sequence[Path]) -> list:
    """(name, size, mtime_ns) of each path, of every file inside a folder path, or "missing"."""
    out: list = []
    for path in paths:
        try:
            if path.is_dir():
                with os.scandir(path) as entries:
                    files = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file())
                out.append([path.name, files])
            else:
                st = path.stat()
                out.append([path.name, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([path.name, "missing"])
    return out


def cache_key(name: str, params: dict, splits: dict[str, Sequence[Clip]],
              sources: Callable[[Clip], Sequence[Path]]) -> str:
    """Hash of everything a decoded data set depends on (see the module docstring)."""
    digest = hashlib.sha256(json.dumps({"v": VERSION, "name": name, "params": params}, sort_keys=True).encode())
    for split in SPLITS:
        for clip in splits[split]:
            entry = [split, repr(clip), source_fingerprint(sources(clip))]  # clips are frozen dataclasses
            digest.update(json.dumps(entry).encode())
    return digest.hexdigest()[:20]


def cached_decode(name: str, params: dict, splits: dict[str, Sequence[Clip]],
                  sources: Callable[[Clip], Sequence[Path]], decode: Callable[[], MultimodalDataset],
                  use_cache: bool = True) -> MultimodalDataset:
    """The data set ``decode()`` builds, from the cache when an entry with the same key exists."""
    if not use_cache:
        return decode()
    path = cache_dir(f"decoded-{name}") / f"{name}-{cache_key(name, params, splits, sources)}.npz"
    if path.is_file():
        from taaf import budget

        size = path.stat().st_size
        budget.check(f"the {name} data set", 2 * size, f"its cached arrays, {size:,} B, twice")
        try:
            with np.load(path, allow_pickle=False) as npz:
                return _from_npz(npz, name)
        except (OSError, ValueError, KeyError, TypeError, EOFError, DataError, zipfile.BadZipFile, zlib.error):
            pass  # truncated or stale: decode again
    dataset = decode()
    arrays: dict[str, np.ndarray] = {"class_names": np.array(dataset.train.class_names)}
    for split in SPLITS:
        s = dataset.split(split)
        arrays.update({f"{split}_audio": s.audio, f"{split}_image": s.image, f"{split}_labels": s.labels,
                       f"{split}_ids": np.array(s.ids, dtype=str).reshape(-1)})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        pass  # the data set is still returned; the cache is only a speed-up
    return dataset


def _from_npz(npz, name: str) -> MultimodalDataset:
    classes = tuple(str(c) for c in npz["class_names"])
    splits = {split: MultimodalSplit(npz[f"{split}_audio"], npz[f"{split}_image"], npz[f"{split}_labels"], classes,
                                     split, tuple(str(i) for i in npz[f"{split}_ids"]))
              for split in SPLITS}
    return MultimodalDataset(name=name, **splits)
