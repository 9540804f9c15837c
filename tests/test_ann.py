"""The ANN baseline: layer-for-layer twin of the SNN, trained and evaluated by the same CLI,
exported whole to ONNX, MACs counted, and the GPU energy path (its arithmetic without a GPU)."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks import ann_baseline
from export.ann_onnx import ann_onnx, run_ann_onnx
from taaf.checkpoint import load_checkpoint
from taaf.cli import main
from taaf.config import ModelConfig, from_dict, to_dict
from taaf.errors import ConfigError
from taaf.model.ann import AVANNNet
from taaf.model.network import AVSpikingNet, build_network


def _inputs(cfg: ModelConfig, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, cfg.n_steps, cfg.audio.in_features, generator=g),
            torch.rand(batch, *cfg.visual.in_shape, generator=g))


def _synapse_shapes(net: nn.Module) -> dict[str, tuple]:
    return {name: (type(m).__name__, tuple(m.weight.shape), m.bias is None)
            for name, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


@pytest.fixture(scope="module")
def ann_cfg(small_model_config) -> ModelConfig:
    return replace(small_model_config, model="ann", time_warp=False)


@pytest.mark.parametrize("fusion", ["taaf", "concat"])
def test_ann_has_the_snn_layers_with_the_same_shapes(ann_cfg, fusion):
    cfg = replace(ann_cfg, fusion=fusion)
    ann, snn = build_network(cfg), build_network(replace(cfg, model="snn"))
    assert isinstance(ann, AVANNNet) and isinstance(snn, AVSpikingNet)
    expected = _synapse_shapes(snn)
    expected.pop("fusion.temporal_score", None)  # a softmax over one step: no counterpart
    assert _synapse_shapes(ann) == expected
    assert not any("neurons" in name or "warp" in name for name, _ in ann.named_modules())


@pytest.mark.parametrize("fusion", ["taaf", "concat"])
def test_ann_output_is_a_one_step_head_output(ann_cfg, fusion):
    torch.manual_seed(0)
    net = build_network(replace(ann_cfg, fusion=fusion))
    audio, image = _inputs(ann_cfg)
    out = net(audio, image)
    assert out.logits.shape == (3, 10) and out.step_logits.shape == (3, 1, 10)
    assert out.audio_logits.shape == out.visual_logits.shape == (3, 10)
    torch.testing.assert_close(out.alpha, torch.ones(3, 1))
    assert out.beta.shape == (3, 1, 2)
    torch.testing.assert_close(out.beta.sum(-1), torch.ones(3, 1))
    if fusion == "concat":
        torch.testing.assert_close(out.logits, out.audio_logits + out.visual_logits)
    else:
        beta = out.beta[:, 0]
        torch.testing.assert_close(out.logits, beta[:, :1] * out.audio_logits + beta[:, 1:] * out.visual_logits)
    # No time dimension: the audio is averaged, so the order of the frames does not matter.
    torch.testing.assert_close(net(audio.flip(1), image).logits, out.logits)
    net.constrain_()  # a no-op, but the trainer calls it
    groups = net.modality_parameters()
    assert sum(len(g) for g in groups.values()) == len(list(net.parameters()))


def test_model_field_is_validated_and_old_configs_default_to_snn(small_model_config):
    with pytest.raises(ConfigError, match="unknown model"):
        replace(small_model_config, model="cnn")
    old = to_dict(small_model_config)
    del old["model"]  # a checkpoint written before the ANN existed
    assert from_dict(ModelConfig, old).model == "snn"


def _hand_macs(cfg: ModelConfig) -> int:
    """Linear: in * out per sample; Conv2d: out_h * out_w * out_c * in_c * k * k."""
    sizes = (cfg.audio.in_features, *cfg.audio.hidden)
    macs = sum(a * b for a, b in pairwise(sizes))
    c, h, w = cfg.visual.in_shape
    k, pad = cfg.visual.kernel_size, cfg.visual.kernel_size // 2
    for out_c, stride in zip(cfg.visual.channels, cfg.visual.strides):
        h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        macs += h * w * out_c * c * k * k
        c = out_c
    macs += c * h * w * cfg.visual.hidden
    macs += (cfg.audio.hidden[-1] + cfg.visual.hidden) * cfg.n_classes  # evidence readouts
    if cfg.fusion == "taaf":
        macs += (cfg.audio.hidden[-1] + cfg.visual.hidden) * cfg.fused_hidden + cfg.fused_hidden * 2
    return macs


@pytest.mark.parametrize("fusion", ["taaf", "concat"])
def test_mac_count_matches_the_hand_count(ann_cfg, fusion):
    cfg = replace(ann_cfg, fusion=fusion)
    count = ann_baseline.count_macs(build_network(cfg), _inputs(cfg, batch=5))
    assert count.macs == _hand_macs(cfg) and count.batch == 5
    # 13*32 + 32*32 + 8*8*4*1*9 + 4*4*8*4*9 + 128*32 + 64*10 (+ 64*32 + 32*2 for TAAF)
    assert count.macs == (15200 if fusion == "taaf" else 13088)
    assert sum(count.by_op.values()) == count.macs and count.flops == 2 * 5 * count.macs


def test_ann_onnx_equals_pytorch(ann_cfg):
    torch.manual_seed(0)
    net = build_network(ann_cfg).eval()
    data = ann_onnx(net)
    for batch in (1, 7):
        audio, image = _inputs(ann_cfg, batch=batch, seed=batch)
        with torch.no_grad():
            expected = net(audio, image).logits.numpy()
        np.testing.assert_allclose(run_ann_onnx(data, audio.numpy(), image.numpy()), expected, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def trained_ann(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ann")
    assert main(["train", "--model", "ann", "--steps", "4", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    return out / "model.pt"


def test_taaf_train_model_ann_and_eval(trained_ann, capsys):
    ckpt = load_checkpoint(trained_ann)
    assert ckpt.model_config.model == "ann" and isinstance(ckpt.model, AVANNNet)
    assert ckpt.model_config.n_steps == 4 and ckpt.train_config.method == "taaf"
    capsys.readouterr()
    assert main(["eval", str(trained_ann), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 600
    assert report["fused"] > 0.2  # one epoch clearly beats chance (0.1)


def test_taaf_export_writes_the_whole_ann_as_onnx(trained_ann, tmp_path, capsys):
    from export.cli import main as export_main
    from taaf.data import load_dataset

    assert export_main([str(trained_ann), "--target", "onnx", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "model.onnx").is_file() and not (tmp_path / "host_head.onnx").exists()
    ckpt = load_checkpoint(trained_ann)
    split = load_dataset(ckpt.data_spec).test
    audio, image = split.audio[:32], split.image[:32]
    with torch.no_grad():
        expected = ckpt.model(torch.from_numpy(audio), torch.from_numpy(image)).logits.numpy()
    got = run_ann_onnx((tmp_path / "model.onnx").read_bytes(), audio, image)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    capsys.readouterr()
    assert export_main([str(trained_ann), "--target", "nir", "-o", str(tmp_path / "nir")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ANN baseline" in err[0]


def test_time_onnx_reports_latency_and_throughput(ann_cfg):
    data = ann_onnx(build_network(ann_cfg).eval())
    audio, image = (t.numpy() for t in _inputs(ann_cfg, batch=3))
    timing = ann_baseline.time_onnx(data, {"audio": audio, "image": image}, batch=8, runs=5, warmup=1, threads=1)
    assert timing.batch == 8 and timing.runs == 5 and timing.threads == 1
    assert 0 < timing.min_ms <= timing.median_ms <= timing.p90_ms
    assert timing.samples_per_second == pytest.approx(8 / (timing.median_ms / 1e3))
    assert set(timing.as_dict()) >= {"median_ms", "samples_per_second"}


def test_benchmark_main_prints_the_table(trained_ann, capsys):
    assert ann_baseline.main(["--ann", str(trained_ann), "--runs", "50", "--batch", "64", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    for row in ("test accuracy", "MACs per inference", "ONNX CPU latency, batch 1", "batch 64 (samples/s)",
                "GPU energy per inference, batch 1 (J)"):
        assert row in text, row


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: energy can be measured")
def test_gpu_energy_is_not_measured_without_cuda(ann_cfg):
    result = ann_baseline.measure_gpu_energy(build_network(ann_cfg), batch=1)
    assert not result.measured and result.reason == ann_baseline.NO_CUDA
    assert result.joules_per_inference is None and result.as_dict()["measured"] is False


# --------------------------------------------------------------------------- fake NVML + CUDA

IDLE_W, JOULES_PER_CALL, SECONDS_PER_CALL = 50.0, 0.5, 0.25
WORLD = {"t": 0.0, "dynamic_j": 0.0}  # module-level: the benchmark deep-copies the model


class _SlowModel(nn.Module):
    """Wraps the ANN; every call takes SECONDS_PER_CALL and JOULES_PER_CALL above idle."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.config = net, net.config

    def forward(self, audio, image):
        WORLD["t"] += SECONDS_PER_CALL
        WORLD["dynamic_j"] += JOULES_PER_CALL
        return self.net(audio, image)


def _fake_pynvml(supported: bool = True) -> types.ModuleType:
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # pynvml's name
        pass

    def energy(handle):
        if not supported:
            raise NVMLError_NotSupported()
        return 7_000.0 + 1e3 * (IDLE_W * WORLD["t"] + WORLD["dynamic_j"])  # mJ

    def by_uuid(uuid):
        raise NVMLError("unknown uuid")

    m.NVMLError, m.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported
    m.nvmlInit = m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    m.nvmlDeviceGetHandleByUUID = by_uuid
    m.nvmlDeviceGetTotalEnergyConsumption = energy
    m.nvmlDeviceGetName = lambda handle: b"Fake GPU"
    return m


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(ann_baseline, "_now", lambda: WORLD["t"])
    monkeypatch.setattr(ann_baseline, "_sleep", lambda s: WORLD.__setitem__("t", WORLD["t"] + s))
    WORLD.update(t=0.0, dynamic_j=0.0)
    return monkeypatch


def test_gpu_energy_arithmetic_with_a_fake_nvml(fake_cuda, ann_cfg):
    fake_cuda.setitem(sys.modules, "pynvml", _fake_pynvml())
    batch = 4
    result = ann_baseline.measure_gpu_energy(_SlowModel(build_network(ann_cfg)), batch, min_seconds=2.0,
                                             device="cpu", warmup=3)
    assert result.measured and result.device == "Fake GPU"
    calls = 8  # 0.25 s each until >= 2 s have passed
    assert result.seconds == pytest.approx(2.0) and result.inferences == calls * batch
    assert result.idle_watts == pytest.approx(IDLE_W)
    # (E_end - E_start) / n - idle share: (50 W * 2 s + 8 * 0.5 J) / 32 - 50 W * 2 s / 32
    gross = (IDLE_W * 2.0 + calls * JOULES_PER_CALL) / (calls * batch)
    assert result.gross_joules_per_inference == pytest.approx(gross)
    assert result.joules_per_inference == pytest.approx(JOULES_PER_CALL / batch)
    assert result.active_watts == pytest.approx(IDLE_W + calls * JOULES_PER_CALL / 2.0)
    assert ann_baseline.net_energy_per_inference(1000.0, 5000.0, 2.0, 4, 1.5) == pytest.approx((4.0 - 3.0) / 4)


def test_gpu_energy_reasons_with_fake_cuda(fake_cuda, ann_cfg):
    net = build_network(ann_cfg)
    fake_cuda.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    assert ann_baseline.measure_gpu_energy(net, 1, device="cpu").reason == ann_baseline.NO_NVML
    fake_cuda.setitem(sys.modules, "pynvml", _fake_pynvml(supported=False))
    result = ann_baseline.measure_gpu_energy(net, 1, device="cpu")
    assert not result.measured and result.reason == ann_baseline.NO_COUNTER


def test_simulating_an_ann_checkpoint_is_a_clear_error(tmp_path):
    from taaf.cli import main

    out = tmp_path / "ann"
    assert main(["train", "--model", "ann", "--steps", "4", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    result = subprocess.run([sys.executable, "-m", "taaf.cli", "simulate", str(out / "model.pt")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "no spiking part" in result.stderr and "Traceback" not in result.stderr
