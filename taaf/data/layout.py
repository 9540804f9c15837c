"""Helpers shared by the loaders of user-provided data sets (CREMA-D, AVE): root checks, a
seeded stratified validation hold-out, and stacking per-clip arrays into one split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

from taaf.data.base import MultimodalDataset, MultimodalSplit
from taaf.errors import ConfigError, DataError


@dataclass(frozen=True)
class SplitShapes:
    """Per-sample array shapes, needed to build a correctly shaped split with zero samples."""

    n_steps: int
    n_features: int
    image: tuple[int, int, int]


def check_root(root: Path | str, dataset: str) -> Path:
    """The data root as a Path, or a DataError naming it when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{dataset} root {root} does not exist or is not a folder")
    return root


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held_out), holding out ``fraction`` of each class.

    Stratified so that small classes still appear in validation: every class with at least two
    samples gives at least one and keeps at least one. Both index arrays are sorted, and the
    result depends only on ``labels``, ``fraction`` and ``seed``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(fraction * len(members)))
        if fraction > 0 and len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        held.append(rng.permutation(members)[:k])
    held_out = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), held_out)
    return keep.astype(np.int64), held_out.astype(np.int64)


def stack_split(
    name: str,
    ids: Sequence[str],
    labels: Sequence[int],
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    class_names: tuple[str, ...],
    shapes: SplitShapes,
) -> MultimodalSplit:
    """Stack per-clip (audio [T, F], image [C, H, W]) pairs into one split."""
    audio = np.empty((len(samples), shapes.n_steps, shapes.n_features), dtype=np.float32)
    image = np.empty((len(samples), *shapes.image), dtype=np.float32)
    for i, (a, im) in enumerate(samples):
        audio[i], image[i] = a, im
    return MultimodalSplit(
        audio, image, np.asarray(labels, dtype=np.int64).reshape(-1), class_names, name, tuple(ids)
    )


Clip = TypeVar("Clip")


def assemble_dataset(
    name: str,
    splits: dict[str, Sequence[Clip]],
    load_clip: Callable[[Clip], tuple[np.ndarray, np.ndarray]],
    clip_id: Callable[[Clip], str],
    class_names: tuple[str, ...],
    shapes: SplitShapes,
) -> MultimodalDataset:
    """Load every clip of the train / val / test lists and stack each list into a split (sized
    against the memory budget first: clips x (T x features + C x H x W), float32, twice)."""
    from taaf import budget

    clips_total = sum(len(v) for v in splits.values())
    per_clip = shapes.n_steps * shapes.n_features + int(np.prod(shapes.image, dtype=np.int64))
    budget.check(f"the {name} data set", 2 * 4 * clips_total * per_clip,
                 f"{clips_total} clips x {per_clip:,} values per clip, float32")

    def build(split: str) -> MultimodalSplit:
        clips = splits[split]
        from taaf.progress import progress

        samples = [load_clip(c) for c in progress(clips, f"decoding {name} {split}", unit="clip")]
        labels = [c.label for c in clips]  # type: ignore[attr-defined]
        return stack_split(split, [clip_id(c) for c in clips], labels, samples, class_names, shapes)

    return MultimodalDataset(train=build("train"), val=build("val"), test=build("test"), name=name)
