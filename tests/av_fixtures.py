"""Tiny CREMA-D and AVE roots with real files, in the OGM-GE layouts the loaders read.

Audio is 16-bit PCM written with scipy: a class-dependent tone plus a little noise, so the
classes are separable by the peak of the mean spectrum. Frames are small RGB jpgs whose
brightness rises with the class index. Each root stays well under 1 MB.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile

CREMA_CLASSES = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
CREMA_TONES_HZ = (400.0, 1000.0, 1600.0, 2200.0, 2800.0, 3400.0)
CREMA_SENTENCES = (
    "DFA", "IEO", "IOM", "ITH", "ITS", "IWL", "IWW", "MTI", "TAI", "TIE", "TSI", "WSI",
)

# A few real AVE categories (two contain commas), one tone each; a shared distractor tone
# fills the audio outside the annotated event segment.
AVE_CATEGORIES = ("Church bell", "Baby cry, infant cry", "Violin, fiddle", "Bark")
AVE_TONES_HZ = (500.0, 900.0, 1300.0, 1700.0)
AVE_DISTRACTOR_HZ = 3000.0
AVE_EVENT = (1, 2)  # StartTime, EndTime in seconds; the wav lasts 2 s


def write_tone_wav(
    path: Path, rate: int, pieces: list[tuple[float, float]], rng: np.random.Generator
) -> None:
    """Write int16 PCM made of consecutive (frequency Hz, seconds) tones plus faint noise."""
    chunks = []
    for freq, seconds in pieces:
        t = np.arange(int(round(rate * seconds))) / rate
        chunks.append(np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)))
    tone = np.concatenate(chunks)
    x = rng.uniform(0.3, 0.6) * tone + 0.01 * rng.standard_normal(tone.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, np.round(np.clip(x, -1, 1) * 32767).astype(np.int16))


def write_frames(
    folder: Path, level: int, n: int, rng: np.random.Generator, size: int = 16
) -> None:
    """Write ``n`` RGB jpgs around gray ``level``, named like OGM-GE's (frame_00001.jpg ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, n + 1):
        pixels = np.clip(level + rng.normal(0, 4, (size, size, 1)), 0, 255)
        rgb = np.repeat(pixels, 3, axis=2).astype(np.uint8)
        Image.fromarray(rgb).save(folder / f"frame_0000{k}.jpg", quality=90)


def crema_clip_id(index: int, label: str) -> str:
    return f"{1001 + index:04d}_{CREMA_SENTENCES[index % len(CREMA_SENTENCES)]}_{label}_XX"


def make_crema_d_root(
    tmp_path: Path,
    n_per_class: int = 4,
    n_test_per_class: int = 1,
    seed: int = 0,
    rate: int = 16000,
    seconds: float = 0.4,
    header: bool = False,
) -> Path:
    """A CREMA-D root (train.csv, test.csv, AudioWAV/, Image-01-FPS/) under ``tmp_path``."""
    root = Path(tmp_path) / "CREMA-D"
    rng = np.random.default_rng(seed)
    index = 0
    for split, count in (("train", n_per_class), ("test", n_test_per_class)):
        lines = ["clip_id,label"] if header else []
        for _ in range(count):
            for k, label in enumerate(CREMA_CLASSES):
                clip = crema_clip_id(index, label)
                index += 1
                tone = [(CREMA_TONES_HZ[k], seconds)]
                write_tone_wav(root / "AudioWAV" / f"{clip}.wav", rate, tone, rng)
                write_frames(root / "Image-01-FPS" / clip, 40 + 35 * k, 3, rng)
                lines.append(f"{clip},{label}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def make_ave_root(
    tmp_path: Path,
    n_train_per_class: int = 3,
    n_val_per_class: int = 1,
    n_test_per_class: int = 1,
    with_val: bool = True,
    header: bool = True,
    seed: int = 0,
    rate: int = 8000,
) -> Path:
    """An AVE root (trainSet/valSet/testSet.txt, AudioWAV/, Image-01-FPS/) under ``tmp_path``.

    Each wav is 2 s: the distractor tone, then the class tone during the event segment 1..2 s.
    """
    root = Path(tmp_path) / "AVE"
    rng = np.random.default_rng(seed)
    start, end = AVE_EVENT
    counts = {"trainSet": n_train_per_class, "valSet": n_val_per_class, "testSet": n_test_per_class}
    for split, count in counts.items():
        if split == "valSet" and not with_val:
            continue
        lines = ["Category&VideoID&Quality&StartTime&EndTime"] if header else []
        for i in range(count):
            for k, category in enumerate(AVE_CATEGORIES):
                video = f"{split[:2]}{k:02d}{i:02d}-a_Bc"
                pieces = [(AVE_DISTRACTOR_HZ, float(start)), (AVE_TONES_HZ[k], float(end - start))]
                write_tone_wav(root / "AudioWAV" / f"{video}.wav", rate, pieces, rng)
                write_frames(root / "Image-01-FPS" / video, 40 + 50 * k, 3, rng)
                lines.append(f"{category}&{video}&good&{start}&{end}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
