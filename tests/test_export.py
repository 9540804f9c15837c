"""The NIR emitter, the ONNX host head and the taaf-export command."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace

import nir
import numpy as np
import pytest
import torch

from export.artifacts import nir_bytes
from export.cli import export
from export.host_onnx import host_head_onnx, host_input_names, run_host_head
from export.nir_export import READOUTS, branch_graphs, model_to_nir
from taaf.checkpoint import save_checkpoint
from taaf.config import TrainConfig
from taaf.data import DataSpec
from taaf.dynamics import DEFAULT_DT
from taaf.model.host import HostHead, Readouts
from taaf.model.network import AVSpikingNet
from taaf.paths import MARKER


@pytest.fixture()
def model(small_model_config):
    torch.manual_seed(0)
    net = AVSpikingNet(small_model_config)
    with torch.no_grad():
        net.audio_warp.delay.copy_(torch.linspace(0.0, 2.5, net.audio_warp.delay.numel()))
    return net.eval()


@pytest.fixture()
def checkpoint(tmp_path, model):
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, TrainConfig(), DataSpec(n_steps=4))
    return path


def _arrays(node) -> list[np.ndarray]:
    return [v for v in vars(node).values() if isinstance(v, np.ndarray)]


def test_graph_has_two_inputs_fan_in_fusion_and_readouts(model):
    g = model_to_nir(model)
    inputs = [k for k, n in g.nodes.items() if isinstance(n, nir.Input)]
    outputs = {k for k, n in g.nodes.items() if isinstance(n, nir.Output)}
    assert sorted(inputs) == ["audio_input", "visual_input"]
    assert outputs == set(READOUTS)  # the default (fused evidence) reads z_fused out too
    into_fusion = sorted(src for src, dst in g.edges if dst == "fusion_lif")
    assert into_fusion == ["fusion_audio_synapses", "fusion_visual_synapses"]
    assert g.metadata["dt"] == DEFAULT_DT and "zero" in g.metadata["reset"]


def test_parameters_are_per_neuron_float32_arrays(model):
    g = model_to_nir(model)
    lif = g.nodes["visual_lif0"]
    assert lif.tau.shape == (4, 8, 8) and lif.tau.dtype == np.float32
    np.testing.assert_allclose(1 - DEFAULT_DT / lif.tau, model.visual_encoder.neurons[0].beta, rtol=1e-5)
    for node in g.nodes.values():
        for array in _arrays(node):
            if array.dtype.kind == "f":
                assert array.ndim >= 1 and array.dtype == np.float32


def test_time_warp_becomes_delays_and_taps(model):
    g = model_to_nir(model)
    delays = {k: n for k, n in g.nodes.items() if isinstance(n, nir.Delay)}
    assert set(delays) == {"audio_warp_delay1", "audio_warp_delay2", "audio_warp_delay3"}
    np.testing.assert_allclose(delays["audio_warp_delay2"].delay, 2 * DEFAULT_DT)
    taps = np.stack([g.nodes[f"audio_warp_tap{s}"].scale for s in range(4)])
    np.testing.assert_allclose(taps, model.audio_warp.taps().detach().numpy()[:4], atol=1e-7)
    assert not any(k.startswith("visual_warp") for k in g.nodes)  # identity warp: nothing emitted


def test_concat_graph_has_no_fusion_layer(small_model_config):
    net = AVSpikingNet(replace(small_model_config, fusion="concat", time_warp=False))
    g = model_to_nir(net)
    assert "fusion_lif" not in g.nodes and {"z_audio", "z_visual"} <= set(g.nodes)


def test_written_graph_reads_back_identically(model):
    g = model_to_nir(model)
    back = nir.read(io.BytesIO(nir_bytes(g)))
    assert set(back.nodes) == set(g.nodes) and sorted(back.edges) == sorted(g.edges)
    np.testing.assert_array_equal(back.nodes["fusion_audio_synapses"].weight, g.nodes["fusion_audio_synapses"].weight)


def test_branch_graphs_have_one_input_each(model):
    graphs = branch_graphs(model)
    for name, g in graphs.items():
        assert [k for k, n in g.nodes.items() if isinstance(n, nir.Input)] == [f"{name}_input"]


@pytest.mark.parametrize("fusion", ["taaf", "taaf-fused", "concat"])
def test_onnx_host_head_equals_pytorch(fusion):
    g = torch.Generator().manual_seed(1)
    r = {"z_audio": torch.randn(3, 5, 10, generator=g), "z_visual": torch.randn(3, 5, 10, generator=g),
         "modality_scores": torch.randn(3, 5, 2, generator=g), "temporal_scores": torch.randn(3, 5, generator=g),
         "z_fused": torch.randn(3, 5, 10, generator=g)}
    names = host_input_names(fusion)
    expected = HostHead(fusion)(Readouts(*(r[n] if n in names else None for n in
                                           ("z_audio", "z_visual", "modality_scores", "temporal_scores", "z_fused"))))
    out = run_host_head(host_head_onnx(fusion, 10), {k: v.numpy() for k, v in r.items() if k in names})
    np.testing.assert_allclose(out["logits"], expected.logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(out["alpha"], expected.alpha.numpy(), atol=1e-6)
    np.testing.assert_allclose(out["beta"], expected.beta.numpy(), atol=1e-6)
    if fusion == "taaf-fused":  # the fused evidence reaches the prediction
        gate_only = HostHead("taaf")(Readouts(r["z_audio"], r["z_visual"], r["modality_scores"], r["temporal_scores"]))
        shift = (expected.alpha.unsqueeze(-1) * r["z_fused"]).sum(1)
        torch.testing.assert_close(expected.logits, gate_only.logits + shift)


def test_fused_evidence_model_exports_and_simulates_spike_exact(small_model_config):
    """taaf-fused: z_fused is a NIR Output; the reference and the float emulator give the
    PyTorch model's spikes exactly and its readouts to float precision."""
    from dataclasses import replace

    from hardware.backends import run_reference, run_torch
    from hardware.loihi.emulator import emulator_runner
    from taaf.model.network import AVSpikingNet

    torch.manual_seed(0)
    net = AVSpikingNet(replace(small_model_config, fusion="taaf-fused")).eval()
    graph = model_to_nir(net)
    assert isinstance(graph.nodes["z_fused"], nir.Output) and ("readout_fused", "z_fused") in graph.edges
    rng = np.random.default_rng(0)
    audio = rng.random((3, 4, 13)).astype(np.float32) * 3
    image = rng.random((3, 1, 8, 8)).astype(np.float32) * 3
    want = run_torch(net, audio, image, dtype=torch.float64)
    for got in (run_reference(net, audio, image), emulator_runner(net, fixed=False)(audio, image)):
        assert set(got.readouts) >= {"z_fused", "z_audio", "modality_scores"}
        for layer, spikes in want.spikes.items():
            np.testing.assert_array_equal(got.spikes[layer], spikes)
        np.testing.assert_allclose(got.readouts["z_fused"], want.readouts["z_fused"], atol=1e-6)


@pytest.mark.slow
def test_fused_evidence_model_on_lava(small_model_config):
    """taaf-fused on real Lava processes: float Lava gives the PyTorch spikes exactly, and the
    fixed-point emulator is Lava fixed point bit for bit, z_fused included."""
    from dataclasses import replace

    from hardware.backends import run_torch
    from hardware.loihi.emulator import emulator_runner
    from hardware.loihi.lava_backend import run_lava
    from taaf.model.network import AVSpikingNet

    torch.manual_seed(0)
    net = AVSpikingNet(replace(small_model_config, fusion="taaf-fused")).eval()
    rng = np.random.default_rng(1)
    audio = rng.random((2, 4, 13)).astype(np.float32)
    image = rng.random((2, 1, 8, 8)).astype(np.float32)
    want = run_torch(net, audio, image, dtype=torch.float64)
    lava = run_lava(net, audio, image, fixed=False, timeout=120)
    for layer, spikes in want.spikes.items():
        np.testing.assert_array_equal(lava.spikes[layer], spikes, err_msg=layer)
    np.testing.assert_allclose(lava.readouts["z_fused"], want.readouts["z_fused"], atol=1e-6)
    fixed = run_lava(net, audio, image, fixed=True, timeout=120)
    emulated = emulator_runner(net, fixed=True)(audio, image)
    for name, value in fixed.readouts.items():
        np.testing.assert_array_equal(emulated.readouts[name], value, err_msg=name)
    for name, value in fixed.spikes.items():
        np.testing.assert_array_equal(emulated.spikes[name], value, err_msg=name)


@pytest.mark.parametrize("target,files", [
    ("nir", {"taaf.nir", "host_head.onnx", "manifest.json"}),
    ("onnx", {"host_head.onnx", "manifest.json"}),
    ("snntorch", {"audio_encoder.nir", "visual_encoder.nir", "manifest.json"}),
    ("norse", {"audio_encoder.nir", "visual_encoder.nir", "manifest.json"}),
])
def test_export_targets_write_complete_sets(checkpoint, tmp_path, target, files):
    out = tmp_path / target
    assert set(export(checkpoint, target, out)) == files
    assert {p.name for p in out.iterdir()} == files | {MARKER}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "taaf-export" and manifest["n_steps"] == 4
    assert {f["name"] for f in manifest["files"]} == files - {"manifest.json"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "export.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_errors_are_one_line_and_leave_no_output(checkpoint, tmp_path):
    result = _cli(str(checkpoint), "--target", "warp-drive", "-o", str(tmp_path / "a"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    result = _cli(str(bad), "--target", "nir", "-o", str(tmp_path / "b"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "b").exists()  # built in memory first: a failed export creates no folder
    blocker = tmp_path / "f"
    blocker.write_text("")
    result = _cli(str(checkpoint), "--target", "nir", "-o", str(blocker / "x"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_cli_help_lists_targets():
    text = _cli("--help").stdout
    for target in ("nir", "snntorch", "norse", "onnx"):
        assert target in text
