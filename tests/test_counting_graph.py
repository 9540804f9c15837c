"""Counting any NIR graph from its chip IR (:func:`benchmarks.metrics.count_graph`): hand counts
on tiny graphs, the TAAF export equal to the model-based counts, and a graph snnTorch wrote."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.metrics.harness import count_graph, count_run, count_torch
from benchmarks.metrics.topology import chip_topology
from export.nir_export import model_to_nir
from hardware.backends import exported_twin, run_reference, time_major_inputs
from hardware.ir.lower import lower_graph
from hardware.reference import ReferenceSimulator
from taaf.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig
from taaf.model.network import AVSpikingNet

DT = 1e-4


def _lif(n) -> nir.LIF:
    shape = (n,) if isinstance(n, int) else tuple(n)
    return nir.LIF(tau=np.full(shape, 10 * DT), r=np.full(shape, 10.0), v_leak=np.zeros(shape),
                   v_threshold=np.ones(shape), v_reset=np.zeros(shape))


def _graph(nodes: dict, chain: list[str]) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])), metadata={"dt": DT})


# ---------------------------------------------------------------- hand counts on tiny graphs

W1 = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # non-zeros per input: 2, 1, 2
W2 = np.array([[1.0, 0.0, 0.0, 1.0], [2.0, 3.0, 0.0, 0.0]])  # per input: 2, 1, 0, 1


def test_dense_graph_hand_count():
    graph = _graph({"x": nir.Input(input_type={"input": np.array([3])}),
                    "fc0": nir.Affine(weight=W1, bias=np.full(4, 0.5)), "lif0": _lif(4),
                    "fc1": nir.Linear(weight=W2), "lif1": _lif(2),
                    "y": nir.Output(output_type={"output": np.array([2])})},
                   ["x", "fc0", "lif0", "fc1", "lif1", "y"])
    chip = lower_graph(graph)
    assert [t.name for t in chip.neurons["lif0"].terms] == ["fc0"] and chip.neurons["lif1"].terms[0].name == "fc1"
    x = np.array([[[0.5, 0.0, -1.0]], [[0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0]]])  # [T=3, B=1, 3], analog
    lif0 = np.array([[[1, 0, 0, 0]], [[0, 1, 1, 0]], [[0, 0, 0, 0]]], float)
    lif1 = np.array([[[0, 0]], [[1, 0]], [[1, 1]]], float)
    counts = count_graph(chip, {"x": x}, {"lif0": {"spikes": lif0}, "lif1": {"spikes": lif1}})
    fc0, fc1 = counts.group("fc0"), counts.group("fc1")
    assert (fc0.op, fc0.effective, fc0.dense, fc0.biases) == ("MAC", (2 + 2) + 0 + (2 + 1), 4 * 3 * 3, 4)
    assert (fc1.op, fc1.effective, fc1.dense, fc1.biases) == ("AC", 2 + (1 + 0) + 0, 2 * 4 * 3, 0)
    assert (counts.effective_macs, counts.effective_acs, counts.dense_ops) == (7, 3, 36 + 24)
    assert counts.population("lif0")[0].spikes_per_step == (1, 2, 0)
    assert counts.population("lif1")[0].spikes_per_step == (0, 1, 2)
    assert counts.neuron_updates == 4 * 3 + 2 * 3 and counts.host is None
    assert counts.memory.weights == 12 + 8 and counts.memory.biases == 4 and counts.memory.neurons == 6


def test_conv_graph_hand_count():
    w = np.ones((2, 1, 3, 3))
    w[1, 0, 1, 1] = 0.0  # channel 1 has no centre tap
    graph = _graph({"x": nir.Input(input_type={"input": np.array([1, 3, 3])}),
                    "conv": nir.Conv2d(input_shape=(3, 3), weight=w, stride=1, padding=1, dilation=1, groups=1,
                                       bias=np.array([0.1, 0.2])),
                    "lif": _lif((2, 3, 3)), "y": nir.Output(output_type={"output": np.array([2, 3, 3])})},
                   ["x", "conv", "lif", "y"])
    chip = lower_graph(graph)
    term = chip.neurons["lif"].terms[0]
    assert term.name == "conv" and term.conv is not None and term.conv.out_shape == (2, 3, 3)
    assert term.matrix.shape == (18, 9)  # the unrolled matrix stays
    x = np.zeros((2, 1, 1, 3, 3))
    x[0, 0, 0, 1, 1] = 0.7  # the centre pixel reaches 9 outputs of channel 0 and 8 of channel 1
    x[1, 0, 0, 0, 0] = 0.3  # a corner reaches 4 outputs of channel 0 and 3 of channel 1
    spikes = np.zeros((2, 1, 2, 3, 3))
    spikes[0, 0, 0, 1, 1] = spikes[1, 0, :, 0, 0] = 1
    counts = count_graph(chip, {"x": x}, {"lif": {"spikes": spikes}})
    c = counts.group("conv")
    assert (c.op, c.effective, c.biases, c.weights) == ("MAC", (9 + 8) + (4 + 3), 2, 18)
    assert c.dense == 2 * (2 + 3 + 2) ** 2 * 2  # valid (non-padding) kernel taps only, 2 channels, 2 steps
    assert counts.population("lif")[0].spikes_per_step == (1, 2)
    assert chip_topology(chip).groups[0].weight.dim() == 4


# ---------------------------------------------------------------- the TAAF export

T, B = 6, 5


@pytest.mark.parametrize("delays", [None, [0.0, 1.0, 2.5]], ids=["identity-warp", "warp"])
def test_taaf_graph_counts_equal_model_counts(delays):
    cfg = ModelConfig(n_classes=10, n_steps=T, audio=AudioEncoderConfig(13, hidden=(32, 32)),
                      visual=VisualEncoderConfig((1, 8, 8), channels=(4, 8), strides=(1, 2), hidden=32),
                      fused_hidden=32)
    torch.manual_seed(0)
    net = AVSpikingNet(cfg).eval()
    if delays is not None:
        with torch.no_grad():
            for warp in (net.audio_warp, net.visual_warp):
                warp.delay.copy_(torch.tensor(delays).repeat(warp.delay.numel())[: warp.delay.numel()])
    g = np.random.default_rng(1)
    audio = g.standard_normal((B, T, 13))
    image = g.random((B, 1, 8, 8)) * (g.random((B, 1, 8, 8)) > 0.3)
    graph = model_to_nir(net)
    inputs = time_major_inputs(audio, image)
    ours = count_graph(lower_graph(graph), inputs, ReferenceSimulator(graph).run(inputs, record=True).states)
    run = count_run(net, run_reference(net, audio, image), audio, image)
    twin = count_torch(exported_twin(net, graph), audio, image)
    host_free = lambda c: {k: v for k, v in c.as_dict().items() if k not in ("host", "host_macs")}  # noqa: E731
    assert host_free(ours) == host_free(run) == host_free(twin)
    assert ours.effective_acs > 0 and ours.effective_macs > 0
    if delays is not None:
        assert {"fusion_audio_synapses@tap0", "readout_audio@tap2"} <= {c.name for c in ours.groups}


# ---------------------------------------------------------------- a graph snnTorch wrote

def test_snntorch_export_counts():
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    def leaky(n, output=False):
        return snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n), init_hidden=True,
                         reset_mechanism="zero", reset_delay=False, output=output)

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), leaky(8), nn.Linear(8, 3), leaky(3, True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight[:, ::3] = 0.0  # some absent synapses
    graph = export_to_nir(net, torch.randn(1, 5), ignore_dims=[0])
    chip = lower_graph(graph, DT)
    x = np.random.default_rng(0).standard_normal((10, 4, 5))
    states = ReferenceSimulator(graph, DT).run({"input": x}, record=True).states
    counts = count_graph(chip, {"input": x}, states)
    (hidden,) = [n for n, layer in chip.neurons.items() if layer.size == 8]
    spikes = states[hidden]["spikes"]
    assert spikes.sum() > 0
    per_input = (net[2].weight.detach().numpy() != 0).sum(axis=0)  # non-zero synapses each hidden spike drives
    assert counts.effective_acs * x.shape[1] == (spikes.reshape(-1, 8) * per_input).sum()
    assert counts.effective_macs * x.shape[1] == (x.reshape(-1, 5) != 0).sum() * 8
    assert [p.population for p in counts.firing] == list(chip.neurons)
