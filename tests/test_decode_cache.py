"""CREMA-D / AVE are decoded once: the second load comes from the cache, and any change to a
source file, a parameter or the cache file itself makes it decode again (generated fixtures)."""
from __future__ import annotations

import numpy as np
import pytest
from av_fixtures import make_ave_root, make_crema_d_root, write_tone_wav

from taaf.data import ave, crema_d


@pytest.fixture()
def crema_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TAAF_CACHE_DIR", str(tmp_path / "cache"))
    return make_crema_d_root(tmp_path, n_per_class=2, n_test_per_class=1)


def forbid_decoding(monkeypatch, module):
    """Make any decode fail loudly, so a successful load proves it came from the cache."""
    def boom(*args, **kwargs):
        raise AssertionError("decoded although the cache should have been used")

    monkeypatch.setattr(module, "read_frames", boom)


def assert_same(a, b):
    for split in ("train", "val", "test"):
        x, y = a.split(split), b.split(split)
        np.testing.assert_array_equal(x.audio, y.audio)
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.labels, y.labels)
        assert x.ids == y.ids and x.class_names == y.class_names


def test_second_load_is_cached_and_identical(crema_root, monkeypatch):
    first = crema_d.load_crema_d(crema_root, n_steps=4)
    with monkeypatch.context() as m:
        forbid_decoding(m, crema_d)
        second = crema_d.load_crema_d(crema_root, n_steps=4)
    assert_same(first, second)
    with pytest.raises(AssertionError, match="decoded"):  # another T is another entry
        forbid_decoding(monkeypatch, crema_d)
        crema_d.load_crema_d(crema_root, n_steps=5)


def test_a_changed_source_file_decodes_again(crema_root, monkeypatch):
    crema_d.load_crema_d(crema_root, n_steps=4)
    wav = sorted((crema_root / "AudioWAV").glob("*.wav"))[0]
    write_tone_wav(wav, 16000, [(440.0, 0.5)], np.random.default_rng(1))
    forbid_decoding(monkeypatch, crema_d)
    with pytest.raises(AssertionError, match="decoded"):
        crema_d.load_crema_d(crema_root, n_steps=4)


def test_a_corrupt_cache_entry_is_rebuilt(crema_root, tmp_path):
    first = crema_d.load_crema_d(crema_root, n_steps=4)
    (entry,) = (tmp_path / "cache").rglob("crema-d-*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    assert_same(first, crema_d.load_crema_d(crema_root, n_steps=4))


def test_ave_is_cached_too(tmp_path, monkeypatch):
    monkeypatch.setenv("TAAF_CACHE_DIR", str(tmp_path / "cache"))
    root = make_ave_root(tmp_path)
    first = ave.load_ave(root, n_steps=4)
    forbid_decoding(monkeypatch, ave)
    assert_same(first, ave.load_ave(root, n_steps=4))
