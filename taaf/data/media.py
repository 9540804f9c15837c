"""Decode the raw files of the audio-visual data sets (wav, jpg frames) into float32 arrays.

Shared by the CREMA-D and AVE loaders. The audio front end reproduces OGM-GE (CVPR 2022):
``log(|STFT| + 1e-7)`` with a 512-point Hann window and a hop of 353 samples, computed with
numpy/scipy so the toolkit does not depend on librosa. Every decoding failure becomes a
:class:`~taaf.errors.DataError` that names the offending file.
"""
from __future__ import annotations

import math
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile
from scipy.signal import get_window, resample_poly

from taaf.errors import DataError

FRAME_SUFFIXES = (".jpg", ".jpeg")


def read_wav(path: Path | str) -> tuple[int, np.ndarray]:
    """Read a wav file as ``(rate, float32 mono samples in [-1, 1])``.

    Integer PCM is scaled by its full-scale value; stereo is averaged to mono because every
    data set here is classified from a single audio channel.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing wav file {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError, IndexError, struct.error) as exc:
        raise DataError(f"cannot read wav file {path}: {exc}") from exc
    samples = _pcm_to_float(np.asarray(data), path)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or samples.size == 0:
        raise DataError(f"wav file {path} holds no audio samples")
    return int(rate), samples.astype(np.float32)


def _pcm_to_float(data: np.ndarray, path: Path) -> np.ndarray:
    """Scale PCM to [-1, 1]; scipy returns 24-bit files as left-justified int32."""
    if data.dtype == np.int16:
        return data.astype(np.float64) / 32768.0
    if data.dtype == np.int32:
        return data.astype(np.float64) / 2147483648.0
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.floating):
        return np.clip(data.astype(np.float64), -1.0, 1.0)
    raise DataError(f"wav file {path} has unsupported sample format {data.dtype}")


def resample_audio(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Polyphase-resample ``samples`` from ``rate`` to ``target_rate`` Hz (float32 out)."""
    rate, target_rate = int(rate), int(target_rate)
    if rate <= 0 or target_rate <= 0:
        raise DataError(f"sample rates must be positive, got {rate} -> {target_rate}")
    x = np.asarray(samples, dtype=np.float64)
    if rate == target_rate:
        return x.astype(np.float32)
    g = math.gcd(rate, target_rate)
    return resample_poly(x, target_rate // g, rate // g).astype(np.float32)


def tile_to_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Repeat a clip until it fills ``length`` samples, then crop.

    OGM-GE tiles CREMA-D clips (``np.tile(x, 3)[:3 * sr]``) instead of zero-padding, so a short
    utterance never ends in silence; tiling as often as needed also covers clips under 1 s.
    """
    x = np.asarray(samples)
    if x.size == 0:
        raise DataError("cannot tile an empty audio clip")
    return np.tile(x, math.ceil(length / x.size))[:length]


def log_spectrogram(samples: np.ndarray, n_fft: int = 512, hop: int = 353) -> np.ndarray:
    """``log(|STFT| + 1e-7)`` as float32 ``[frames, n_fft // 2 + 1]``.

    Matches ``librosa.stft(x, n_fft, hop_length=hop)`` (periodic Hann window, ``center=True``
    with librosa >= 0.10's zero padding of ``n_fft // 2`` at both ends), so 3 s at 22050 Hz
    gives 188 frames of 257 bins, as in OGM-GE. Frames come first because the SNN consumes
    one frame per time step.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise DataError(f"expected a non-empty mono signal, got shape {x.shape}")
    padded = np.pad(x, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * get_window("hann", n_fft), axis=1)
    return np.log(np.abs(spectrum) + 1e-7).astype(np.float32)


def read_frames(folder: Path | str, n_frames: int, size: int, grayscale: bool = True) -> np.ndarray:
    """Average ``n_frames`` evenly spaced jpg frames of one clip into float32 ``[C, size, size]``.

    The SNN shows one static image at every time step, so a clip needs a single image. The
    mean of frames spread over the clip is deterministic (OGM-GE samples frames at random,
    which would make evaluation depend on the draw) and less sensitive than one frame to a
    blink, a cut or a black first frame. Frames are taken in natural order of their names
    (``frame_2`` before ``frame_10``). C is 1 for grayscale, 3 for RGB; values lie in [0, 1].
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"missing frame folder {folder}")
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()),
        key=_natural_key,
    )
    if not files:
        raise DataError(f"frame folder {folder} holds no .jpg frames")
    if n_frames < 1:
        raise DataError(f"n_frames must be at least 1, got {n_frames}")
    picks = np.unique(np.linspace(0, len(files) - 1, n_frames).round().astype(int))
    images = [_read_image(files[i], size, grayscale) for i in picks]
    return np.mean(images, axis=0).astype(np.float32)


def _read_image(path: Path, size: int, grayscale: bool) -> np.ndarray:
    """One frame as float32 [C, size, size] in [0, 1]; decoding errors name the file."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if grayscale else "RGB")
            img = img.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc
    return pixels[None] if grayscale else pixels.transpose(2, 0, 1)


def _natural_key(path: Path) -> list[object]:
    """Sort key that orders embedded numbers by value, so ``frame_10`` follows ``frame_9``."""
    parts = re.split(r"(\d+)", path.name)
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]
