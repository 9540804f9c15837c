"""CREMA-D and AVE loaders on generated fixtures in the OGM-GE layouts (no downloads)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from av_fixtures import (
    AVE_CATEGORIES,
    AVE_DISTRACTOR_HZ,
    AVE_TONES_HZ,
    CREMA_TONES_HZ,
    make_ave_root,
    make_crema_d_root,
)
from taaf.data.ave import AVE_CLASSES, load_ave
from taaf.data.base import MultimodalDataset, MultimodalSplit
from taaf.data.crema_d import CREMA_D_CLASSES, load_crema_d
from taaf.data.layout import stratified_holdout
from taaf.data.media import log_spectrogram, read_frames, read_wav, resample_audio
from taaf.errors import ConfigError, DataError

N_STEPS = 8
SIZE = 16


def peak_hz(split: MultimodalSplit, sample_rate: int) -> np.ndarray:
    """Frequency of the strongest bin of each clip's time-averaged log spectrum."""
    return split.audio.mean(axis=1).argmax(axis=1) * sample_rate / 512


# --- media ------------------------------------------------------------------------------------


def test_log_spectrogram_of_3s_at_22050_is_188_by_257() -> None:
    spec = log_spectrogram(np.zeros(3 * 22050, dtype=np.float32))
    assert spec.shape == (188, 257) and spec.dtype == np.float32
    assert np.allclose(spec, np.log(1e-7))


def test_log_spectrogram_matches_a_direct_hann_stft_frame() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000)
    spec = log_spectrogram(x, n_fft=512, hop=353)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512)  # periodic, as librosa
    frame = x[353 * 3 - 256: 353 * 3 + 256]  # frame 3 is centred on sample 3 * hop
    assert np.allclose(spec[3], np.log(np.abs(np.fft.rfft(frame * hann)) + 1e-7), atol=1e-4)
    assert len(spec) == 1 + len(x) // 353


@pytest.mark.parametrize(
    "dtype, full_scale, offset",
    [(np.int16, 32767, 0), (np.int32, 2**31 - 1, 0), (np.uint8, 127, 128), (np.float32, 1.0, 0)],
)
def test_read_wav_scales_formats_and_averages_stereo(
    tmp_path: Path, dtype: type, full_scale: float, offset: int
) -> None:
    left = np.array([1.0, -1.0, 0.5, 0.0])
    stereo = np.stack([left, np.zeros(4)], axis=1) * full_scale + offset
    wavfile.write(tmp_path / "x.wav", 8000, stereo.astype(dtype))
    rate, samples = read_wav(tmp_path / "x.wav")
    assert rate == 8000 and samples.dtype == np.float32 and samples.shape == (4,)
    assert np.allclose(samples, left / 2, atol=0.01)


def test_resample_audio_keeps_duration_and_pitch() -> None:
    t = np.arange(16000) / 16000
    y = resample_audio(np.sin(2 * np.pi * 1000 * t), 16000, 22050)
    assert y.dtype == np.float32 and len(y) == 22050
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(spectrum.argmax() * 22050 / len(y) - 1000) < 2


def test_read_frames_averages_evenly_spaced_frames_in_natural_order(tmp_path: Path) -> None:
    for k in range(1, 12):  # frame_1 .. frame_11, brightness 10 * k
        frame = Image.fromarray(np.full((8, 8, 3), 10 * k, np.uint8))
        frame.save(tmp_path / f"frame_{k}.jpg", quality=100)
    gray = read_frames(tmp_path, n_frames=3, size=4)
    assert gray.shape == (1, 4, 4) and gray.dtype == np.float32
    # natural order picks frames 1, 6, 11 -> mean brightness 60 (lexical order would not)
    assert abs(gray.mean() * 255 - 60) < 2
    rgb = read_frames(tmp_path, n_frames=1, size=5, grayscale=False)
    assert rgb.shape == (3, 5, 5) and 0.0 <= rgb.min() and rgb.max() <= 1.0


# --- CREMA-D ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crema_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_crema_d_root(tmp_path_factory.mktemp("crema"), n_per_class=5)


@pytest.fixture(scope="module")
def crema(crema_root: Path) -> MultimodalDataset:
    return load_crema_d(crema_root, N_STEPS, image_size=SIZE, val_fraction=0.2, seed=0)


def test_crema_d_shapes_dtypes_and_labels(crema: MultimodalDataset, crema_root: Path) -> None:
    assert (len(crema.train), len(crema.val), len(crema.test)) == (24, 6, 6)
    for split in (crema.train, crema.val, crema.test):
        assert split.audio.shape[1:] == (N_STEPS, 257) and split.audio.dtype == np.float32
        assert split.image.shape[1:] == (1, SIZE, SIZE) and split.image.dtype == np.float32
        assert split.labels.dtype == np.int64
        assert split.class_names == CREMA_D_CLASSES == ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
        assert all(split.class_names[y] == i.split("_")[2] for i, y in zip(split.ids, split.labels))
    assert sorted(crema.val.labels.tolist()) == list(range(6))  # stratified: one per class
    test_ids = [line.split(",")[0] for line in (crema_root / "test.csv").read_text().split()]
    assert list(crema.test.ids) == test_ids
    assert not set(crema.train.ids) & set(crema.val.ids)


def test_crema_d_is_deterministic_per_seed(crema: MultimodalDataset, crema_root: Path) -> None:
    again = load_crema_d(crema_root, N_STEPS, image_size=SIZE, val_fraction=0.2, seed=0)
    for name in ("train", "val", "test"):
        a, b = crema.split(name), again.split(name)
        assert a.ids == b.ids
        assert np.array_equal(a.audio, b.audio) and np.array_equal(a.image, b.image)
    other = load_crema_d(crema_root, N_STEPS, image_size=SIZE, val_fraction=0.2, seed=1)
    assert set(other.val.ids) != set(crema.val.ids)


def test_crema_d_classes_are_separable_by_tone_and_brightness(crema: MultimodalDataset) -> None:
    for split in (crema.train, crema.test):
        expected = np.asarray(CREMA_TONES_HZ)[split.labels]
        assert np.all(np.abs(peak_hz(split, 22050) - expected) < 2 * 22050 / 512)
        brightness = split.image.mean(axis=(1, 2, 3))
        class_means = [brightness[split.labels == k].mean() for k in range(6)]
        assert np.all(np.diff(class_means) > 0.05)


def test_crema_d_tolerates_a_header_line(tmp_path: Path) -> None:
    root = make_crema_d_root(tmp_path, n_per_class=1, header=True)
    data = load_crema_d(root, N_STEPS, image_size=SIZE)
    assert (len(data.train), len(data.val), len(data.test)) == (6, 0, 6)
    assert data.val.audio.shape == (0, N_STEPS, 257) and data.val.image.shape == (0, 1, SIZE, SIZE)


# Error cases: each helper breaks a fresh root and returns what the DataError must name.


def gone(path: Path) -> str:
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    return path.name


def overwrite(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return path.name


def truncate(path: Path, n_bytes: int) -> str:
    return overwrite(path, path.read_bytes()[:n_bytes])


def emptied(folder: Path) -> str:
    for p in folder.glob("*.jpg"):
        p.unlink()
    return folder.name


def appended(path: Path, line: str) -> str:
    path.write_text(path.read_text() + line + "\n")
    return f"{path.name}:"  # messages give path:line


def crema_clip(root: Path) -> str:
    return (root / "train.csv").read_text().split()[0].split(",")[0]


def crema_wav(root: Path) -> Path:
    return root / "AudioWAV" / f"{crema_clip(root)}.wav"


def crema_frames(root: Path) -> Path:
    return root / "Image-01-FPS" / crema_clip(root)


CREMA_BREAKS: dict[str, Callable[[Path], str]] = {
    "missing train.csv": lambda r: gone(r / "train.csv"),
    "missing test.csv": lambda r: gone(r / "test.csv"),
    "missing wav": lambda r: gone(crema_wav(r)),
    "missing frame folder": lambda r: gone(crema_frames(r)),
    "empty frame folder": lambda r: emptied(crema_frames(r)),
    "corrupt wav": lambda r: overwrite(crema_wav(r), b"not a wav"),
    "truncated wav": lambda r: truncate(crema_wav(r), 30),
    "corrupt jpg": lambda r: overwrite(crema_frames(r) / "frame_00001.jpg", b"\xff\xd8junk"),
    "malformed line": lambda r: appended(r / "train.csv", "1001_DFA_ANG_XX"),
    "extra field": lambda r: appended(r / "test.csv", "1001_DFA_ANG_XX,ANG,extra"),
    "unknown label": lambda r: appended(r / "train.csv", "1001_DFA_XYZ_XX,XYZ"),
}


@pytest.mark.parametrize("case", sorted(CREMA_BREAKS))
def test_crema_d_errors_name_the_bad_path(tmp_path: Path, case: str) -> None:
    root = make_crema_d_root(tmp_path, n_per_class=1, n_test_per_class=1)
    fragment = CREMA_BREAKS[case](root)
    with pytest.raises(DataError, match="XYZ" if case == "unknown label" else None) as info:
        load_crema_d(root, N_STEPS, image_size=SIZE)
    assert fragment in str(info.value)


def test_crema_d_missing_root_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no_such_root"):
        load_crema_d(tmp_path / "no_such_root", N_STEPS)


def test_val_fraction_out_of_range_is_a_config_error(crema_root: Path) -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        load_crema_d(crema_root, N_STEPS, val_fraction=1.0)


def test_stratified_holdout_is_seeded_and_disjoint() -> None:
    labels = np.repeat(np.arange(3), [10, 4, 1])
    keep, held = stratified_holdout(labels, 0.25, seed=3)
    assert np.array_equal(np.sort(np.concatenate([keep, held])), np.arange(15))
    assert np.bincount(labels[held], minlength=3).tolist() == [2, 1, 0]
    assert np.array_equal(held, stratified_holdout(labels, 0.25, seed=3)[1])


# --- AVE --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ave(tmp_path_factory: pytest.TempPathFactory) -> MultimodalDataset:
    return load_ave(make_ave_root(tmp_path_factory.mktemp("ave")), N_STEPS, image_size=SIZE)


def test_ave_class_list_is_the_28_sorted_categories() -> None:
    assert len(AVE_CLASSES) == 28 == len(set(AVE_CLASSES))
    assert list(AVE_CLASSES) == sorted(AVE_CLASSES)
    assert AVE_CLASSES[0] == "Accordion" and AVE_CLASSES[-1] == "Violin, fiddle"


def test_ave_shapes_labels_and_official_splits(ave: MultimodalDataset) -> None:
    assert (len(ave.train), len(ave.val), len(ave.test)) == (12, 4, 4)
    for split in (ave.train, ave.val, ave.test):
        assert split.audio.shape[1:] == (N_STEPS, 257) and split.audio.dtype == np.float32
        assert split.image.shape[1:] == (1, SIZE, SIZE) and split.labels.dtype == np.int64
        assert split.class_names == AVE_CLASSES
        assert {AVE_CLASSES[y] for y in split.labels} == set(AVE_CATEGORIES)
    assert all(i.startswith("va") for i in ave.val.ids)
    assert all(i.startswith("te") for i in ave.test.ids)


def test_ave_audio_is_the_event_segment(ave: MultimodalDataset) -> None:
    tone_of = {AVE_CLASSES.index(c): hz for c, hz in zip(AVE_CATEGORIES, AVE_TONES_HZ)}
    for split in (ave.train, ave.test):
        expected = np.array([tone_of[y] for y in split.labels])
        peaks = peak_hz(split, 16000)
        assert np.all(np.abs(peaks - expected) < 2 * 16000 / 512)
        assert np.all(np.abs(peaks - AVE_DISTRACTOR_HZ) > 500)


def test_ave_without_val_file_holds_out_a_seeded_stratified_val(tmp_path: Path) -> None:
    root = make_ave_root(tmp_path, n_train_per_class=4, with_val=False, header=False)
    a = load_ave(root, N_STEPS, image_size=SIZE, val_fraction=0.25, seed=0)
    b = load_ave(root, N_STEPS, image_size=SIZE, val_fraction=0.25, seed=0)
    c = load_ave(root, N_STEPS, image_size=SIZE, val_fraction=0.25, seed=1)
    assert (len(a.train), len(a.val)) == (12, 4)
    assert len(set(a.val.labels.tolist())) == 4
    assert a.val.ids == b.val.ids and np.array_equal(a.val.audio, b.val.audio)
    assert set(a.val.ids) != set(c.val.ids)


def ave_video(root: Path) -> str:
    return (root / "trainSet.txt").read_text().splitlines()[1].split("&")[1]


def ave_wav(root: Path) -> Path:
    return root / "AudioWAV" / f"{ave_video(root)}.wav"


def ave_frames(root: Path) -> Path:
    return root / "Image-01-FPS" / ave_video(root)


AVE_BREAKS: dict[str, Callable[[Path], str]] = {
    "missing trainSet.txt": lambda r: gone(r / "trainSet.txt"),
    "missing testSet.txt": lambda r: gone(r / "testSet.txt"),
    "missing wav": lambda r: gone(ave_wav(r)),
    "missing frame folder": lambda r: gone(ave_frames(r)),
    "empty frame folder": lambda r: emptied(ave_frames(r)),
    "corrupt wav": lambda r: overwrite(ave_wav(r), b"RIFF...."),
    "corrupt jpg": lambda r: overwrite(ave_frames(r) / "frame_00002.jpg", b"nope"),
    "malformed line": lambda r: appended(r / "valSet.txt", "Bark&only-three&good"),
    "bad times": lambda r: appended(r / "testSet.txt", f"Bark&{ave_video(r)}&good&5&3"),
    "unknown category": lambda r: appended(r / "trainSet.txt", "Kazoo&abc&good&0&1"),
    "segment past the end": lambda r: (
        appended(r / "trainSet.txt", f"Bark&{ave_video(r)}&good&7&10") and ave_wav(r).name
    ),
}


@pytest.mark.parametrize("case", sorted(AVE_BREAKS))
def test_ave_errors_name_the_bad_path(tmp_path: Path, case: str) -> None:
    root = make_ave_root(tmp_path, n_train_per_class=1, n_val_per_class=1, n_test_per_class=1)
    fragment = AVE_BREAKS[case](root)
    with pytest.raises(DataError, match="Kazoo" if case == "unknown category" else None) as info:
        load_ave(root, N_STEPS, image_size=SIZE)
    assert fragment in str(info.value)


def test_ave_missing_root_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no_such_ave"):
        load_ave(tmp_path / "no_such_ave", N_STEPS)
