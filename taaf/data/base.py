"""The one in-memory form every data set is converted to.

Each loader (AV-Digits, CREMA-D, AVE) turns its files into :class:`MultimodalSplit` arrays, so
the model, the trainer and later the exporters never need to know where data came from.
Audio is a sequence with one frame per SNN time step; the image is presented at every step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taaf.errors import DataError


@dataclass(frozen=True)
class MultimodalSplit:
    """One split of a paired audio-visual data set.

    audio:  float32 [N, T, F]    one feature frame per time step
    image:  float32 [N, C, H, W] presented unchanged at every time step
    labels: int64   [N]
    """

    audio: np.ndarray
    image: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str = "split"
    ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.audio.ndim != 3:
            raise DataError(f"{self.name}: audio must be [N, T, F], got shape {self.audio.shape}")
        if self.image.ndim != 4:
            raise DataError(f"{self.name}: image must be [N, C, H, W], got shape {self.image.shape}")
        if self.labels.ndim != 1 or len(self.audio) != n or len(self.image) != n:
            raise DataError(
                f"{self.name}: sample counts disagree (audio {len(self.audio)}, "
                f"image {len(self.image)}, labels {n})"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DataError(f"{self.name}: labels outside 0..{len(self.class_names) - 1}")
        if self.ids and len(self.ids) != n:
            raise DataError(f"{self.name}: {len(self.ids)} ids for {n} samples")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_steps(self) -> int:
        """Number of SNN time steps T (one audio frame per step)."""
        return int(self.audio.shape[1])

    @property
    def audio_features(self) -> int:
        """Features per audio frame F: the input width of the audio encoder."""
        return int(self.audio.shape[2])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Per-sample image shape (C, H, W): the input shape of the visual encoder."""
        return tuple(int(s) for s in self.image.shape[1:])  # type: ignore[return-value]

    def subset(self, index: np.ndarray | slice) -> "MultimodalSplit":
        """A split holding only the samples selected by ``index`` (ids kept aligned), e.g. for quick runs."""
        ids = tuple(np.asarray(self.ids, dtype=object)[index]) if self.ids else ()
        return MultimodalSplit(
            self.audio[index], self.image[index], self.labels[index], self.class_names, self.name, ids
        )


@dataclass(frozen=True)
class MultimodalDataset:
    """train / val / test splits with a shared class list."""

    train: MultimodalSplit
    val: MultimodalSplit
    test: MultimodalSplit
    name: str

    def split(self, name: str) -> MultimodalSplit:
        """The split named ``name`` (train, val or test), so callers can pick one from a CLI string."""
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split {name!r} (choose train, val or test)")
        return getattr(self, name)


def resample_frames(frames: np.ndarray, n_steps: int) -> np.ndarray:
    """Average a variable-length [L, F] frame sequence into exactly ``n_steps`` equal-width bins.

    Bins partition [0, L); a bin narrower than one frame takes the frame it falls in, so short
    clips are stretched rather than zero-padded (zero frames would look like silence to the SNN).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or len(frames) == 0:
        raise DataError(f"expected a non-empty [frames, features] array, got shape {frames.shape}")
    length = len(frames)
    edges = np.linspace(0.0, length, n_steps + 1)
    out = np.empty((n_steps, frames.shape[1]), dtype=np.float64)
    for k in range(n_steps):
        lo = int(np.floor(edges[k]))
        hi = max(int(np.ceil(edges[k + 1])), lo + 1)
        out[k] = frames[lo:min(hi, length)].mean(axis=0)
    return out.astype(np.float32)
