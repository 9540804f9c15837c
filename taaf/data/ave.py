"""AVE (Audio-Visual Event, Tian et al. 2018) in the preprocessed layout of OGM-GE (CVPR 2022).

Layout under ``root``::

    trainSet.txt, testSet.txt      lines ``Category&VideoID&Quality&StartTime&EndTime``
    valSet.txt                     optional; without it, val is a seeded stratified hold-out
                                   of trainSet.txt
    AudioWAV/<VideoID>.wav         the clip's audio track (OGM-GE extracts 16 kHz mono)
    Image-01-FPS/<VideoID>/*.jpg   frames extracted at 1 fps

A header line ``Category&VideoID&Quality&StartTime&EndTime`` (as in AVE's Annotations.txt) is
skipped. Categories contain commas (``Baby cry, infant cry``), hence the ``&`` separator.
Audio is the annotated event segment StartTime..EndTime (seconds) of the wav, resampled to
``sample_rate``, as a log-magnitude STFT (512 / 353) averaged into ``n_steps`` frames. The
image averages frames spread over the whole video, as OGM-GE samples them from the whole video.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taaf.data.base import MultimodalDataset, resample_frames
from taaf.data.decode_cache import cached_decode
from taaf.data.layout import SplitShapes, assemble_dataset, check_root, stratified_holdout
from taaf.data.media import log_spectrogram, read_frames, read_wav, resample_audio
from taaf.errors import DataError

#: The 28 AVE event categories, sorted as OGM-GE does (``self.classes = sorted(classes)``).
AVE_CLASSES: tuple[str, ...] = (
    "Accordion",
    "Acoustic guitar",
    "Baby cry, infant cry",
    "Banjo",
    "Bark",
    "Bus",
    "Cat",
    "Chainsaw",
    "Church bell",
    "Clock",
    "Female speech, woman speaking",
    "Fixed-wing aircraft, airplane",
    "Flute",
    "Frying (food)",
    "Goat",
    "Helicopter",
    "Horse",
    "Male speech, man speaking",
    "Mandolin",
    "Motorcycle",
    "Race car, auto racing",
    "Rodents, rats, mice",
    "Shofar",
    "Toilet flush",
    "Train horn",
    "Truck",
    "Ukulele",
    "Violin, fiddle",
)
AUDIO_DIR = "AudioWAV"
FRAME_DIR = "Image-01-FPS"
N_FFT = 512
HOP = 353
_FIELDS = ("Category", "VideoID", "Quality", "StartTime", "EndTime")


@dataclass(frozen=True)
class AveClip:
    """One parsed line of an AVE split file; times are in seconds."""

    video_id: str
    label: int
    quality: str
    start: float
    end: float


def load_ave(
    root: Path,
    n_steps: int,
    image_size: int = 32,
    val_fraction: float = 0.1,
    seed: int = 0,
    sample_rate: int = 16000,
    n_frames: int = 3,
    grayscale: bool = True,
    use_cache: bool = True,
) -> MultimodalDataset:
    """Load AVE as train / val / test :class:`MultimodalSplit` arrays over the 28 categories, decoded
    once and then loaded from the user cache (:mod:`taaf.data.decode_cache`).

    When ``root/valSet.txt`` exists it is the val split and ``val_fraction`` / ``seed`` are
    unused; otherwise val is a stratified ``val_fraction`` of trainSet.txt chosen by ``seed``.
    """
    root = check_root(root, "AVE")
    train_clips = read_ave_split(root / "trainSet.txt")
    test_clips = read_ave_split(root / "testSet.txt")
    if (root / "valSet.txt").exists():
        val_clips = read_ave_split(root / "valSet.txt")
    else:
        labels = np.array([c.label for c in train_clips], dtype=np.int64)
        keep, held = stratified_holdout(labels, val_fraction, seed)
        train_clips, val_clips = [train_clips[i] for i in keep], [train_clips[i] for i in held]

    def load_clip(clip: AveClip) -> tuple[np.ndarray, np.ndarray]:
        samples = _segment_audio(root / AUDIO_DIR / f"{clip.video_id}.wav", clip, sample_rate)
        audio = resample_frames(log_spectrogram(samples, N_FFT, HOP), n_steps)
        image = read_frames(root / FRAME_DIR / clip.video_id, n_frames, image_size, grayscale)
        return audio, image

    shapes = SplitShapes(n_steps, N_FFT // 2 + 1, (1 if grayscale else 3, image_size, image_size))

    splits = {"train": train_clips, "val": val_clips, "test": test_clips}
    params = {"n_steps": n_steps, "image_size": image_size, "sample_rate": sample_rate, "n_frames": n_frames,
              "grayscale": grayscale}
    return cached_decode(
        "ave", params, splits,
        lambda c: (root / AUDIO_DIR / f"{c.video_id}.wav", root / FRAME_DIR / c.video_id),
        lambda: assemble_dataset("ave", splits, load_clip, lambda c: c.video_id, AVE_CLASSES, shapes),
        use_cache)


def _segment_audio(wav: Path, clip: AveClip, sample_rate: int) -> np.ndarray:
    """The event segment of ``wav`` at ``sample_rate``, clipped to [-1, 1].

    An EndTime slightly past the end of the recording is clamped (AVE videos are often a few
    milliseconds short of 10 s); a segment that starts after the recording ends is an error.
    """
    rate, samples = read_wav(wav)
    lo = int(round(clip.start * rate))
    hi = min(int(round(clip.end * rate)), samples.size)
    if hi <= lo:
        raise DataError(
            f"{wav}: segment {clip.start:g}-{clip.end:g} s of {clip.video_id} lies outside "
            f"the {samples.size / rate:.2f} s recording"
        )
    segment = resample_audio(samples[lo:hi], rate, sample_rate)
    if segment.size == 0:
        raise DataError(f"{wav}: segment {clip.start:g}-{clip.end:g} s is too short to resample")
    return np.clip(segment, -1.0, 1.0)


def read_ave_split(path: Path) -> list[AveClip]:
    """Parse ``Category&VideoID&Quality&StartTime&EndTime`` lines, skipping a header line."""
    if not path.is_file():
        raise DataError(f"missing AVE split file {path}")
    clips: list[AveClip] = []
    with path.open(encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            fields = [field.strip() for field in line.strip().split("&")]
            if not any(fields):
                continue
            if not clips and [x.lower() for x in fields] == [x.lower() for x in _FIELDS]:
                continue
            clips.append(_parse_ave_fields(fields, path, line_no))
    return clips


def _parse_ave_fields(fields: list[str], path: Path, line_no: int) -> AveClip:
    where = f"{path}:{line_no}"
    if len(fields) != 5 or not fields[1]:
        got = "&".join(fields)
        raise DataError(f"{where}: expected '{'&'.join(_FIELDS)}', got {got!r}")
    category, video_id, quality, start_text, end_text = fields
    if category not in AVE_CLASSES:
        raise DataError(f"{where}: unknown AVE category {category!r} (not one of the 28 classes)")
    if "/" in video_id or "\\" in video_id:
        raise DataError(f"{where}: video id {video_id!r} must not contain a path separator")
    try:
        start, end = float(start_text), float(end_text)
    except ValueError:
        times = f"{start_text!r}, {end_text!r}"
        raise DataError(f"{where}: StartTime/EndTime must be numbers, got {times}") from None
    if not (0.0 <= start < end and np.isfinite(end)):
        raise DataError(f"{where}: need 0 <= StartTime < EndTime, got {start_text}..{end_text}")
    return AveClip(video_id, AVE_CLASSES.index(category), quality, start, end)
