"""CREMA-D in the preprocessed layout of OGM-GE (CVPR 2022).

Layout under ``root``::

    train.csv, test.csv            lines ``clip_id,LABEL`` (``1001_DFA_ANG_XX,ANG``);
                                   an optional header line is skipped
    AudioWAV/<clip_id>.wav         the original CREMA-D recordings (any rate, mono or stereo)
    Image-01-FPS/<clip_id>/*.jpg   frames extracted at 1 fps

Audio follows OGM-GE's ``CramedDataset``: resample to 22050 Hz, tile to 3 s, clip to [-1, 1],
log-magnitude STFT (512 / 353); the spectrogram is then averaged into ``n_steps`` frames.
OGM-GE has no validation split; here it is a seeded, stratified hold-out from ``train.csv``.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taaf.data.base import MultimodalDataset, resample_frames
from taaf.data.decode_cache import cached_decode
from taaf.data.layout import SplitShapes, assemble_dataset, check_root, stratified_holdout
from taaf.data.media import log_spectrogram, read_frames, read_wav, resample_audio, tile_to_length
from taaf.errors import DataError

#: OGM-GE's ``class_dict`` order: {'NEU':0, 'HAP':1, 'SAD':2, 'FEA':3, 'DIS':4, 'ANG':5}.
CREMA_D_CLASSES: tuple[str, ...] = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
AUDIO_DIR = "AudioWAV"
FRAME_DIR = "Image-01-FPS"
N_FFT = 512
HOP = 353

# Actor_Sentence_Emotion_Level; used only to tell a header line from a data line.
_CLIP_ID = re.compile(r"^\d{4}_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}$")


@dataclass(frozen=True)
class CremaClip:
    """One parsed line of ``train.csv`` / ``test.csv``."""

    clip_id: str
    label: int


def load_crema_d(
    root: Path,
    n_steps: int,
    image_size: int = 32,
    val_fraction: float = 0.1,
    seed: int = 0,
    audio_seconds: float = 3.0,
    sample_rate: int = 22050,
    n_frames: int = 3,
    grayscale: bool = True,
    use_cache: bool = True,
) -> MultimodalDataset:
    """Load CREMA-D as train / val / test :class:`MultimodalSplit` arrays, decoded once and then
    loaded from the user cache (:mod:`taaf.data.decode_cache`; ``use_cache=False`` always decodes).

    ``val`` is a stratified ``val_fraction`` of ``train.csv`` chosen with ``seed`` (the same
    seed always gives the same split). Images average ``n_frames`` evenly spaced frames.
    """
    root = check_root(root, "CREMA-D")
    train_clips = read_crema_split(root / "train.csv")
    test_clips = read_crema_split(root / "test.csv")
    train_idx, val_idx = stratified_holdout(
        np.array([c.label for c in train_clips], dtype=np.int64), val_fraction, seed
    )

    def load_clip(clip: CremaClip) -> tuple[np.ndarray, np.ndarray]:
        samples = _clip_audio(root / AUDIO_DIR / f"{clip.clip_id}.wav", sample_rate, audio_seconds)
        audio = resample_frames(log_spectrogram(samples, N_FFT, HOP), n_steps)
        image = read_frames(root / FRAME_DIR / clip.clip_id, n_frames, image_size, grayscale)
        return audio, image

    shapes = SplitShapes(n_steps, N_FFT // 2 + 1, (1 if grayscale else 3, image_size, image_size))

    splits = {"train": [train_clips[i] for i in train_idx], "val": [train_clips[i] for i in val_idx],
              "test": test_clips}
    params = {"n_steps": n_steps, "image_size": image_size, "audio_seconds": audio_seconds,
              "sample_rate": sample_rate, "n_frames": n_frames, "grayscale": grayscale}
    return cached_decode(
        "crema-d", params, splits,
        lambda c: (root / AUDIO_DIR / f"{c.clip_id}.wav", root / FRAME_DIR / c.clip_id),
        lambda: assemble_dataset("crema-d", splits, load_clip, lambda c: c.clip_id, CREMA_D_CLASSES, shapes),
        use_cache)


def _clip_audio(wav: Path, sample_rate: int, seconds: float) -> np.ndarray:
    """OGM-GE's CREMA-D waveform: resampled, tiled to ``seconds``, clipped to [-1, 1]."""
    rate, samples = read_wav(wav)
    samples = resample_audio(samples, rate, sample_rate)
    if samples.size == 0:
        raise DataError(f"wav file {wav} is too short to resample to {sample_rate} Hz")
    samples = tile_to_length(samples, int(round(seconds * sample_rate)))
    return np.clip(samples, -1.0, 1.0)


def read_crema_split(path: Path) -> list[CremaClip]:
    """Parse ``clip_id,LABEL`` lines; a first line that is not a CREMA-D clip is a header."""
    if not path.is_file():
        raise DataError(f"missing CREMA-D split file {path}")
    clips: list[CremaClip] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            row = [field.strip() for field in row]
            if not any(row):
                continue
            if not clips and _is_header(row):
                continue
            clips.append(_parse_crema_row(row, path, line_no))
    return clips


def _is_header(row: list[str]) -> bool:
    return len(row) == 2 and row[1] not in CREMA_D_CLASSES and not _CLIP_ID.match(row[0])


def _parse_crema_row(row: list[str], path: Path, line_no: int) -> CremaClip:
    if len(row) != 2 or not row[0] or not row[1]:
        raise DataError(f"{path}:{line_no}: expected 'clip_id,LABEL', got {','.join(row)!r}")
    clip_id, label = row
    if label not in CREMA_D_CLASSES:
        known = ", ".join(CREMA_D_CLASSES)
        raise DataError(f"{path}:{line_no}: unknown label {label!r} (expected one of {known})")
    if "/" in clip_id or "\\" in clip_id:
        raise DataError(f"{path}:{line_no}: clip id {clip_id!r} must not contain a path separator")
    return CremaClip(clip_id, CREMA_D_CLASSES.index(label))


# --- helpers shared with the AVE loader -------------------------------------------------------
