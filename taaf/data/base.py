"""The one in-memory form every data set is converted to.

Each loader (AV-Digits, CREMA-D, AVE) turns its files into :class:`MultimodalSplit` arrays, so
the model, the trainer and later the exporters never need to know where data came from.
Audio is a sequence with one frame per SNN time step; the image is presented at every step, or,
for temporal data, a per-step visual stream is given as a few frames per sample mixed by a
per-step schedule (``frame[t] = sum_k schedule[t, k] * image[k]``), which never stores T copies.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taaf.errors import DataError


@dataclass(frozen=True)
class MultimodalSplit:
    """One split of a paired audio-visual data set.

    audio:    float32 [N, T, F]    one feature frame per time step
    image:    float32 [N, C, H, W] presented unchanged at every time step, or, with a schedule,
              float32 [N, K, C, H, W], K frames per sample
    labels:   int64   [N]
    schedule: float32 [N, T, K] or None: the visual input at step t is sum_k schedule[t, k] image[k]
              (a per-step visual stream; the first synapse group is linear, so the encoder
              convolves the K frames once and mixes the currents)
    """

    audio: np.ndarray
    image: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str = "split"
    ids: tuple[str, ...] = field(default=())
    schedule: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.audio.ndim != 3:
            raise DataError(f"{self.name}: audio must be [N, T, F], got shape {self.audio.shape}")
        if self.schedule is None and self.image.ndim != 4:
            raise DataError(f"{self.name}: image must be [N, C, H, W], got shape {self.image.shape}")
        if self.schedule is not None:
            if self.image.ndim != 5 or self.schedule.shape != (n, self.audio.shape[1], self.image.shape[1]):
                raise DataError(f"{self.name}: a visual stream needs image [N, K, C, H, W] and schedule "
                                f"[N, T, K], got {self.image.shape} and {self.schedule.shape}")
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
        """Per-frame image shape (C, H, W): the input shape of the visual encoder."""
        return tuple(int(s) for s in self.image.shape[-3:])  # type: ignore[return-value]

    @property
    def is_stream(self) -> bool:
        """Whether the visual input changes over time (a schedule is given), which static-image backends refuse."""
        return self.schedule is not None

    def dense_visual(self) -> np.ndarray:
        """The visual input as it is seen at each step, [N, T, C, H, W] (static images repeated T times):
        for export to other tools and plots, never for training (it is T times larger)."""
        if self.schedule is None:
            return np.repeat(self.image[:, None], self.n_steps, axis=1)
        return np.einsum("ntk,nkchw->ntchw", self.schedule, self.image, optimize=True).astype(np.float32)

    def chip_visual(self) -> np.ndarray:
        """The visual input as a chip runner takes it (:func:`hardware.backends.time_major_inputs`):
        the static image [N, C, H, W], or a stream as seen at each step [N, T, C, H, W]. Call it
        on a batch (``subset``): a stream is expanded T-fold."""
        return self.dense_visual() if self.is_stream else self.image

    def mean_visual(self) -> np.ndarray:
        """The visual input averaged over time, [N, C, H, W] (the static image itself when there is
        no schedule): what the time-averaging ANN baseline sees, computed without the dense stream."""
        if self.schedule is None:
            return self.image
        return np.einsum("nk,nkchw->nchw", self.schedule.mean(axis=1), self.image, optimize=True).astype(np.float32)

    def subset(self, index: np.ndarray | slice) -> "MultimodalSplit":
        """A split holding only the samples selected by ``index`` (ids kept aligned), e.g. for quick runs."""
        ids = tuple(np.asarray(self.ids, dtype=object)[index]) if self.ids else ()
        schedule = None if self.schedule is None else self.schedule[index]
        return MultimodalSplit(
            self.audio[index], self.image[index], self.labels[index], self.class_names, self.name, ids, schedule
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
