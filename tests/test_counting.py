"""Operation counting (:mod:`benchmarks.metrics`): hand counts on tiny layers, NeuroBench 2.x's
own metrics on the same snnTorch networks (identical numbers required), and torch model vs
backend ChipRuns (identical counts required)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from benchmarks.metrics import (FLOAT32, LOIHI, Activity, Counter, HostHead, Population, SynapseGroup,
                                Topology, count_run, count_torch, memory_footprint, taaf_topology)
from benchmarks.metrics.harness import host_counts
from benchmarks.metrics.neurons import MembraneUpdates
from benchmarks.metrics.synops import contributions
from hardware.backends import exported_twin, run_reference, run_torch
from export.nir_export import model_to_nir
from taaf.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig
from taaf.model.network import AVSpikingNet

T, B = 6, 5


@pytest.fixture(scope="module")
def cfg():
    return ModelConfig(n_classes=10, n_steps=T, audio=AudioEncoderConfig(13, hidden=(32, 32)),
                       visual=VisualEncoderConfig((1, 8, 8), channels=(4, 8), strides=(1, 2), hidden=32),
                       fused_hidden=32)


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    audio = torch.randn(B, T, 13, generator=g)
    image = torch.rand(B, 1, 8, 8, generator=g) * (torch.rand(B, 1, 8, 8, generator=g) > 0.3)  # analog, with zeros
    return audio, image


def _net(cfg, delays: list[float] | None = None) -> AVSpikingNet:
    torch.manual_seed(0)
    net = AVSpikingNet(cfg).eval()
    if delays is not None:
        with torch.no_grad():
            for warp in (net.audio_warp, net.visual_warp):
                warp.delay.copy_(torch.tensor(delays).repeat(warp.delay.numel() // len(delays) + 1)[: warp.delay.numel()])
    return net


# ---------------------------------------------------------------- hand counts on tiny layers

def _one(group: SynapseGroup, x: torch.Tensor, pops=()) -> Counter:
    return Counter(Topology((group,), tuple(pops)))(Activity.of({group.source: x}))


def test_linear_hand_count():
    w = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])  # non-zero weights per input: 1, 0, 2
    g = SynapseGroup("fc", "x", "y", w, torch.tensor([0.5, 0.5]))
    x = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])  # B=1, T=2
    c = _one(g, x).group("fc")
    assert (c.effective, c.dense, c.op) == (3 + 2, 2 * 3 * 2, "AC")  # bias excluded
    analog = _one(SynapseGroup("fc", "x", "y", w, None, binary_input=False), x * -0.7).group("fc")
    assert (analog.effective, analog.op) == (5, "MAC")
    two = _one(g, torch.cat([x, torch.zeros_like(x)])).group("fc")
    assert two.effective == 2.5 and two.dense == 12  # averaged per sample


def test_conv_hand_count():
    w = torch.ones(1, 1, 3, 3)
    conv = lambda x, **kw: _one(SynapseGroup("c", "x", "y", w, None, **kw), x).group("c").effective  # noqa: E731
    x = torch.zeros(1, 1, 1, 3, 3)
    x[..., 1, 1] = 1  # centre pixel reaches all 9 outputs of a 'same' conv
    assert conv(x, padding=(1, 1)) == 9
    x = torch.zeros(1, 1, 1, 3, 3)
    x[..., 0, 0] = 1  # a corner pixel reaches 4 outputs
    assert conv(x, padding=(1, 1)) == 4
    assert conv(x, padding=(1, 1), stride=(2, 2)) == 1  # outputs at 0 and 2 only: (0, 0) via the centre tap
    w[..., 1, 1] = 0  # a zero weight drives nothing
    x = torch.zeros(1, 1, 1, 3, 3)
    x[..., 1, 1] = 1
    assert conv(x, padding=(1, 1)) == 8
    dense = _one(SynapseGroup("c", "x", "y", w, None, padding=(1, 1)), x).group("c").dense
    assert dense == (2 + 3 + 2) ** 2  # kernel rows x cols inside the image, summed over the outputs


@pytest.mark.parametrize("stride,padding,shape", [((1, 1), (1, 1), (3, 7, 7)), ((2, 2), (1, 1), (3, 8, 8)),
                                                  ((2, 1), (0, 2), (2, 9, 6))])
def test_conv_fanout_equals_conv_of_masks(stride, padding, shape):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, shape[0], 3, 3, generator=g) * (torch.rand(5, shape[0], 3, 3, generator=g) > 0.4)
    x = (torch.rand(4, 3, *shape, generator=g) > 0.7).float()
    group = SynapseGroup("c", "x", "y", w, None, stride=stride, padding=padding)
    ours = _one(group, x).group("c")
    masks = F.conv2d(x.reshape(-1, *shape), (w != 0).float(), stride=stride, padding=padding)
    assert ours.effective_total == int(masks.sum()) == int(contributions(group, x).sum())
    assert ours.dense_total == int(F.conv2d(torch.ones_like(x.reshape(-1, *shape)), torch.ones_like(w),
                                            stride=stride, padding=padding).sum())


def test_delayed_group_reads_earlier_steps():
    g = SynapseGroup("d", "x", "y", torch.ones(2, 1), None, delay=2)
    x = torch.tensor([[[1.0], [1.0], [1.0], [1.0]]])  # spikes at t = 0..3; t = 2, 3 fall off the end
    assert _one(g, x).group("d").effective == 2 * 2


def test_membrane_updates_hand_count():
    # No bias. Neuron 0 gets one input at t=0 and decays (changes every step); neuron 1 never
    # gets any (its membrane stays 0, counted only at t=0 as NeuroBench does).
    w = torch.tensor([[1.0], [0.0]])
    g = SynapseGroup("fc", "x", "p", w, None)
    pop = Population("p", (2,), decay=0.5)
    x = torch.tensor([[[1.0], [0.0], [0.0]]])
    counts = Counter(Topology((g,), (pop,)))(Activity.of({"x": x, "p": torch.zeros(1, 3, 2)}))
    firing, updates = counts.population("p")
    assert updates.membrane_updates == 2 + 2 and updates.neuron_updates == 6
    assert firing.firing_rate == 0 and firing.activation_sparsity == 1
    # A neuron at 0 (just reset) that spikes again ends at 0 again: unchanged. With a bias every
    # other step changes, so updates = N*T - (back-to-back spikes).
    g = SynapseGroup("fc", "x", "p", torch.ones(1, 1), torch.ones(1))
    spikes = torch.tensor([[[1.0], [1.0], [1.0], [0.0], [1.0]]])
    counts = Counter(Topology((g,), (Population("p", (1,), 0.9),)))(Activity.of({"x": spikes, "p": spikes}))
    assert counts.population("p")[1].membrane_updates == 5 - 2
    assert counts.population("p")[0].firing_rate_per_step == (1, 1, 1, 0, 1)


def test_membrane_update_fast_path_equals_scan():
    g = torch.Generator().manual_seed(0)
    spikes = torch.rand(7, 9, 3, 4, generator=g) < 0.4
    scan = MembraneUpdates.changed(spikes, torch.ones_like(spikes), decay=0.9)
    assert MembraneUpdates.changed_with_current(spikes.float()) == scan  # the float mask
    # beta = 1 (no leak): without input and spike the membrane keeps its value
    quiet = torch.zeros(1, 3, 1, dtype=torch.bool)
    assert MembraneUpdates.changed(quiet, torch.tensor([[[True], [False], [False]]]), decay=1.0) == 1
    assert MembraneUpdates.changed(quiet, torch.tensor([[[True], [False], [False]]]), decay=0.5) == 3


def test_memory_footprint_hand_count():
    groups = (SynapseGroup("a", "in", "p", torch.ones(4, 3), torch.ones(4), binary_input=False),
              SynapseGroup("b", "p", "out", torch.ones(2, 4), None, delay=2),
              SynapseGroup("c", "p", "out", torch.ones(2, 4), torch.ones(2), delay=1))
    m = memory_footprint(Topology(groups, (Population("p", (4,), 0.9),)))
    assert (m.weights, m.biases, m.neurons, m.delay_entries) == (12 + 8 + 8, 6, 4, 4 * 2)
    assert m.parameter_bytes(FLOAT32) == 34 * 4 and m.state_bytes(FLOAT32) == (4 + 8) * 4
    assert m.parameter_bytes(LOIHI) == 28 + 6 * 2 and m.state_bytes(LOIHI) == 4 * 2 * 3 + 8 / 8


def test_host_head_counts():
    assert host_counts(HostHead("taaf", n_classes=10), steps=6).as_dict() == {"macs": 6 * 2 * 10 + 6 * 10, "exps": 6 * 2 + 6}
    assert host_counts(HostHead("concat", n_classes=10), steps=6).exps == 0


# ---------------------------------------------------------------- the TAAF topology

def test_taaf_topology_names_and_taps(cfg):
    topo = taaf_topology(_net(cfg))
    names = [g.name for g in topo.groups]
    assert names[:5] == ["audio_fc0", "audio_fc1", "visual_conv0", "visual_conv1", "visual_fc"]
    assert {g.name for g in topo.into("fusion_lif")} == {"fusion_audio_synapses", "fusion_visual_synapses"}
    assert [g.binary_input for g in topo.groups[:3]] == [False, True, False]
    warped = taaf_topology(_net(cfg, delays=[0.0, 1.5, 2.0]))
    taps = [g for g in warped.into("fusion_lif") if g.source == "audio_lif1"]
    assert [(g.name, g.delay) for g in taps] == [("fusion_audio_synapses@tap0", 0), ("fusion_audio_synapses@tap1", 1),
                                                 ("fusion_audio_synapses@tap2", 2)]
    assert taps[0].bias is not None and taps[1].bias is None  # the bias is stored once
    assert memory_footprint(warped).delay_entries == 32 * 2 + 32 * 2


def test_torch_and_chiprun_counts_agree(cfg, inputs):
    net = _net(cfg, delays=[0.0, 1.0, 2.5])
    audio, image = inputs
    direct = count_torch(net, audio, image)
    via_run = count_run(net, run_torch(net, audio.numpy(), image.numpy()), audio.numpy(), image.numpy())
    assert direct.as_dict() == via_run.as_dict()
    assert direct.effective_acs > 0 and 0 < direct.activation_sparsity < 1


def test_concat_network_counts(cfg, inputs):
    from dataclasses import replace

    torch.manual_seed(0)
    net = AVSpikingNet(replace(cfg, fusion="concat", time_warp=False)).eval()
    counts = count_torch(net, *inputs)
    assert "fusion_lif" not in [u.population for u in counts.updates]
    assert [g.name for g in counts.groups][-2:] == ["readout_audio", "readout_visual"]
    assert counts.host.exps == 0 and counts.memory.delay_entries == 0


@pytest.mark.parametrize("delays", [None, [0.0, 1.0, 2.5]])
def test_reference_simulator_counts_equal_exported_twin(cfg, inputs, delays):
    net = _net(cfg, delays)
    audio, image = (a.numpy() for a in inputs)
    twin = exported_twin(net, model_to_nir(net))
    expected = count_torch(twin, audio.astype(np.float64), image.astype(np.float64))
    got = count_run(net, run_reference(net, audio, image), audio, image)
    assert got.as_dict() == expected.as_dict()


# ---------------------------------------------------------------- NeuroBench's own metrics

class _Stepwise(nn.Module):
    """An snnTorch network in NeuroBench's convention: called once per step, returns (spk, mem),
    keeps its membranes between calls; ``trace`` records every layer's input and spikes."""

    def __init__(self, layers: list[nn.Module], lifs: list[nn.Module]):
        super().__init__()
        self.layers, self.lifs = nn.ModuleList(layers), nn.ModuleList(lifs)
        self.reset()

    def reset(self) -> None:
        self.mems: list[torch.Tensor | None] = [None] * len(self.lifs)
        self.trace: dict[str, list[torch.Tensor]] = {}

    def forward(self, x):
        self.trace.setdefault("input", []).append(x)
        for i, (layer, lif) in enumerate(zip(self.layers, self.lifs)):
            cur = layer(x.flatten(1) if isinstance(layer, nn.Linear) else x)
            mem = torch.zeros_like(cur) if self.mems[i] is None else self.mems[i]
            x, self.mems[i] = lif(cur, mem)
            self.trace.setdefault(f"lif{i}", []).append(x)
        return x, self.mems[-1]

    def activity(self) -> Activity:
        return Activity({k: torch.stack(v, dim=1) for k, v in self.trace.items()})

    def topology(self, analog_input: bool = True) -> Topology:
        groups, pops = [], []
        for i, (layer, lif) in enumerate(zip(self.layers, self.lifs)):
            src = "input" if i == 0 else f"lif{i - 1}"
            groups.append(SynapseGroup.from_module(f"syn{i}", layer, src, f"lif{i}", binary_input=i > 0 or not analog_input))
            pops.append(Population(f"lif{i}", tuple(self.trace[f"lif{i}"][0].shape[1:]), float(lif.beta)))
        return Topology(tuple(groups), tuple(pops))


def _leaky(beta: float):
    import snntorch as snn

    return snn.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero", reset_delay=False)


def _prune(*layers: nn.Module, frac: float = 0.3) -> None:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer in layers:
            layer.weight.mul_((torch.rand(layer.weight.shape, generator=g) > frac).float()).mul_(2.5)


def _neurobench_benchmark(model, data: torch.Tensor, labels: torch.Tensor) -> dict:
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, labels), batch_size=len(labels))
    bench = Benchmark(model, loader, [], [], [[], [SynapticOperations, ActivationSparsity, MembraneUpdates]])
    return bench.run(quiet=True)


def _ours(counts, groups=None, pops=None, harness: bool = False) -> dict:
    """Our counts restricted to some groups / populations, in NeuroBench's result format
    (totals summed first, then divided, exactly as NeuroBench does). ``harness``: also apply
    the Benchmark harness's batch weighting of non-accumulated metrics, ``0 + x * B / N``."""
    gs = [g for g in counts.groups if groups is None or g.name in groups]
    fs = [f for f in counts.firing if pops is None or f.population in pops]
    us = [u for u in counts.updates if pops is None or u.population in pops]
    n = counts.samples
    spikes, slots = sum(sum(f.spikes_per_step) for f in fs), sum(f.neurons * f.steps * f.samples for f in fs)
    return {"SynapticOperations": {"Effective_MACs": sum(g.effective_total for g in gs if g.op == "MAC") / n,
                                   "Effective_ACs": sum(g.effective_total for g in gs if g.op == "AC") / n,
                                   "Dense": sum(g.dense_total for g in gs) / n},
            "ActivationSparsity": _weighted((slots - spikes) / slots, n) if harness else (slots - spikes) / slots,
            "MembraneUpdates": sum(u.membrane_updates_total for u in us) / n}


def _weighted(x: float, n: int) -> float:
    out = 0.0
    out += (x * n) / n  # neurobench WorkloadMetricManager.run_metrics, one batch of n samples
    return out


def test_neurobench_linear_net():
    nb = pytest.importorskip("neurobench")
    assert nb.__version__.startswith("2.")
    from neurobench.models import SNNTorchModel

    torch.manual_seed(0)
    fc1, fc2, fc3 = nn.Linear(13, 24), nn.Linear(24, 16, bias=False), nn.Linear(16, 10)
    _prune(fc1, fc2, fc3)
    net = _Stepwise([fc1, fc2, fc3], [_leaky(0.9), _leaky(0.8), _leaky(0.95)])
    data = torch.randn(B, T, 13) * (torch.rand(B, T, 13) > 0.2)
    result = _neurobench_benchmark(SNNTorchModel(net), data, torch.zeros(B))
    ours = Counter(net.topology())(net.activity())
    assert result == _ours(ours, harness=True)
    assert 0 < result["SynapticOperations"]["Effective_ACs"] and 0 < result["ActivationSparsity"] < 1


def test_neurobench_conv_net():
    pytest.importorskip("neurobench")
    from neurobench.models import SNNTorchModel

    torch.manual_seed(0)
    c1, c2, fc = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Linear(6 * 4 * 4, 10)
    _prune(c1, c2, fc)
    net = _Stepwise([c1, c2, fc], [_leaky(0.9), _leaky(0.85), _leaky(0.9)])
    frames = torch.relu(torch.randn(B, T, 2, 8, 8))  # a different analog frame per step, with zeros
    result = _neurobench_benchmark(SNNTorchModel(net), frames, torch.zeros(B))
    assert result == _ours(Counter(net.topology())(net.activity()), harness=True)
    assert result["SynapticOperations"]["Effective_MACs"] < result["SynapticOperations"]["Dense"]


class _AudioOnly(nn.Module):
    def __init__(self, net: AVSpikingNet):
        super().__init__()
        self.enc = net.audio_encoder

    def forward(self, audio):
        return self.enc(audio).spikes[-1]


class _VisualOnly(nn.Module):
    def __init__(self, net: AVSpikingNet, steps: int):
        super().__init__()
        self.enc, self.steps = net.visual_encoder, steps

    def forward(self, image):
        return self.enc(image, self.steps).spikes[-1]


class _VisualPerStep(nn.Module):
    """The same encoder modules (weights, snnTorch Leaky layers) stepped one step at a time with
    the image presented at every step, as the chip receives it."""

    def __init__(self, net: AVSpikingNet, steps: int):
        super().__init__()
        self.enc, self.steps = net.visual_encoder, steps

    def forward(self, image):
        enc, mems = self.enc, [None] * len(self.enc.neurons)
        for _ in range(self.steps):
            x = image
            for i, lif in enumerate(enc.neurons):
                syn = enc.convs[i] if i < len(enc.convs) else enc.fc
                cur = syn(x.flatten(1) if syn is enc.fc else x)
                mems[i] = torch.zeros_like(cur) if mems[i] is None else mems[i]
                x, mems[i] = lif.lif(cur, mems[i])
        return x


def _torch_model(module: nn.Module):
    import snntorch as snn
    from neurobench.models import TorchModel

    model = TorchModel(module)
    model.add_activation_module(snn.SpikingNeuron)
    return model


AUDIO = ["audio_fc0", "audio_fc1"], ["audio_lif0", "audio_lif1"]
VISUAL = ["visual_conv0", "visual_conv1", "visual_fc"], ["visual_lif0", "visual_lif1", "visual_lif2"]


def test_neurobench_taaf_audio_encoder(cfg, inputs):
    pytest.importorskip("neurobench")
    net = _net(cfg)
    audio, image = inputs
    result = _neurobench_benchmark(_torch_model(_AudioOnly(net)), audio, torch.zeros(B))
    assert result == _ours(count_torch(net, audio, image), *AUDIO, harness=True)


def test_neurobench_taaf_visual_encoder(cfg, inputs):
    """Identical when the image is presented every step; the encoder's own forward computes
    the first conv once (a software shortcut), so NeuroBench counts its MACs once, we T times."""
    pytest.importorskip("neurobench")
    net = _net(cfg)
    audio, image = inputs
    ours = count_torch(net, audio, image)
    stepped = _neurobench_benchmark(_torch_model(_VisualPerStep(net, T)), image, torch.zeros(B))
    assert stepped == _ours(ours, *VISUAL, harness=True)
    shortcut = _neurobench_benchmark(_torch_model(_VisualOnly(net, T)), image, torch.zeros(B))
    expected = _ours(ours, *VISUAL, harness=True)
    conv0 = ours.group("visual_conv0")
    assert shortcut["SynapticOperations"]["Effective_MACs"] == (conv0.effective_total // T) / B
    assert shortcut["SynapticOperations"]["Effective_MACs"] * B * T == pytest.approx(conv0.effective_total)
    assert shortcut["SynapticOperations"]["Effective_ACs"] == expected["SynapticOperations"]["Effective_ACs"]
    assert (shortcut["ActivationSparsity"], shortcut["MembraneUpdates"]) == (expected["ActivationSparsity"],
                                                                             expected["MembraneUpdates"])


class _Chip(nn.Module):
    def __init__(self, net: AVSpikingNet):
        super().__init__()
        self.net = net

    def forward(self, audio, image):
        return self.net.chip(audio, image).readouts.audio


def _neurobench_chip(net: AVSpikingNet, audio, image) -> dict:
    """NeuroBench's metric classes called directly on a wrapped TorchModel (two inputs)."""
    from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations

    model = _torch_model(_Chip(net))
    model.register_hooks()
    with torch.no_grad():
        preds = model.net(audio, image)
    data = (audio, torch.zeros(len(audio)))
    out = {m.__name__: m()(model, preds, data) for m in (SynapticOperations, ActivationSparsity, MembraneUpdates)}
    model.cleanup_hooks()
    return out


@pytest.mark.parametrize("delays", [None, [0.0, 1.0, 2.0, 3.0]], ids=["identity-warp", "integer-delays"])
def test_neurobench_whole_chip(cfg, inputs, delays):
    """Whole chip (fusion, readouts, warp taps): identical ACs, sparsity and membrane updates;
    MACs and Dense identical once the first conv is counted once (the static-image shortcut)."""
    pytest.importorskip("neurobench")
    net = _net(cfg, delays)
    audio, image = inputs
    ours = count_torch(net, audio, image)
    if delays is not None:
        assert any("@tap" in g.name for g in ours.groups)
    nb = _neurobench_chip(net, audio, image)
    expected = _ours(ours)
    conv0 = ours.group("visual_conv0")
    extra_mac = conv0.effective_total - conv0.effective_total // T  # (T - 1) presentations
    extra_dense = conv0.dense_total - conv0.dense_total // T
    macs = sum(g.effective_total for g in ours.groups if g.op == "MAC")
    assert nb["SynapticOperations"]["Effective_ACs"] == expected["SynapticOperations"]["Effective_ACs"]
    assert nb["SynapticOperations"]["Effective_MACs"] == (macs - extra_mac) / B
    assert nb["SynapticOperations"]["Dense"] == (sum(g.dense_total for g in ours.groups) - extra_dense) / B
    assert nb["ActivationSparsity"] == expected["ActivationSparsity"]
    assert nb["MembraneUpdates"] == expected["MembraneUpdates"]


def test_neurobench_fractional_warp_is_a_documented_difference(cfg, inputs):
    """Fractional delays make the warped signal analog: NeuroBench counts the fused layer's
    inputs as MACs; we count ACs per delayed tap (what a chip with synaptic delays does)."""
    pytest.importorskip("neurobench")
    net = _net(cfg, delays=[0.5, 1.5])
    audio, image = inputs
    ours = count_torch(net, audio, image)
    nb = _neurobench_chip(net, audio, image)
    conv0 = ours.group("visual_conv0")
    chip_macs = ours.effective_macs - conv0.effective + conv0.effective / T
    assert nb["SynapticOperations"]["Effective_MACs"] > chip_macs  # warped groups seen as analog
    assert nb["SynapticOperations"]["Effective_ACs"] < ours.effective_acs
    assert nb["MembraneUpdates"] == ours.membrane_updates


def test_counts_from_a_lava_run_equal_the_reference_and_the_exported_twin(taaf_net, taaf_split):
    """SynOps counted from float Lava's spikes equal those from the reference simulator and from
    the exported PyTorch twin: the three produce the same activity."""
    from benchmarks.metrics import count_run
    from export.nir_export import model_to_nir
    from hardware.backends import exported_twin, run_reference, run_torch
    from hardware.loihi.lava_backend import run_lava

    audio, image = taaf_split.audio, taaf_split.image
    twin = run_torch(exported_twin(taaf_net, model_to_nir(taaf_net)), audio, image, torch.float64)
    counts = {name: count_run(taaf_net, run, audio, image).as_dict()
              for name, run in (("twin", twin), ("reference", run_reference(taaf_net, audio, image)),
                                ("lava", run_lava(taaf_net, audio, image, fixed=False)))}
    assert counts["lava"] == counts["reference"] == counts["twin"]
    assert counts["lava"]["effective_acs"] > 0
