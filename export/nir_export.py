"""Our NIR emitter for trained TAAF / concat networks (nir 1.0.8).

The graph holds everything with synapses (the chip part); the host head (softmaxes and the
weighted sum, :mod:`taaf.model.host`) is exported separately by :mod:`export.host_onnx`.

    audio_input  -> audio_fc0 -> audio_lif0 -> audio_fc1 -> audio_lif1 -+-> [audio warp] -> ...
    visual_input -> visual_conv0 -> visual_lif0 -> visual_conv1 -> visual_lif1
                 -> visual_flatten -> visual_fc -> visual_lif2 -------+-> [visual warp] -> ...

    [m warp]  m_lif -> m_warp_delay{s} (Delay s*dt) -> m_warp_tap{s} (Scale w_s) -> m_warp (Scale 1)
              (several edges into m_warp sum: the per-channel fractional delay of TimeWarp;
              left out when every learned delay is 0, where the warp is the identity)
    fusion    audio_warp -> fusion_audio_synapses (Affine) -+
              visual_warp -> fusion_visual_synapses (Linear) +-> fusion_lif   (fan-in = fusion)
    readouts  audio_warp -> readout_audio -> z_audio (Output), likewise z_visual;
              fusion_lif -> readout_modality -> modality_scores (Output) and
              fusion_lif -> readout_temporal -> temporal_scores (Output)   [TAAF only]
              fusion_lif -> readout_fused -> z_fused (Output)              [fusion taaf-fused only]

Conventions, also written to the graph metadata: dt = 1e-4 s unless given; LIF from snnTorch
``beta`` as tau = dt / (1 - beta), r = tau / dt, v_leak = 0, v_reset = 0 (reset to zero in the
same step); every parameter is a per-neuron float32 array with at least one dimension (nir
1.0.8's writer breaks on 0-d arrays); Delay values are in seconds (integer multiples of dt).
Feed-forward edges act within a step (the PyTorch model's semantics).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from taaf.dynamics import DEFAULT_DT, RESET_CONVENTION, beta_to_nir
from taaf.model.network import AVSpikingNet
from taaf.errors import TaafError
from taaf.model.neurons import BETA_MAX, LIFLayer
from taaf.model.timewarp import TimeWarp

READOUTS = ("z_audio", "z_visual", "modality_scores", "temporal_scores", "z_fused")


def _f32(t: torch.Tensor | np.ndarray) -> np.ndarray:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return np.atleast_1d(a.astype(np.float32))


@dataclass
class _GraphBuilder:
    dt: float
    nodes: dict[str, nir.NIRNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, node: nir.NIRNode, *sources: str) -> str:
        if name in self.nodes:
            raise ValueError(f"duplicate NIR node name {name!r}")
        self.nodes[name] = node
        self.edges.extend((src, name) for src in sources)
        return name

    def connect(self, src: str, dst: str) -> None:
        self.edges.append((src, dst))

    def lif(self, name: str, layer: LIFLayer, shape: tuple[int, ...], source: str) -> str:
        if not 0.0 <= layer.beta < 1.0:
            raise TaafError(f"{name}: beta = {layer.beta} has no finite time constant (train with a "
                            f"current taaf, which keeps beta <= {BETA_MAX})")
        tau, r = beta_to_nir(np.full(shape, layer.beta, dtype=np.float64), self.dt)
        node = nir.LIF(
            tau=tau.astype(np.float32), r=r.astype(np.float32), v_leak=np.zeros(shape, np.float32),
            v_threshold=np.full(shape, layer.threshold, np.float32), v_reset=np.zeros(shape, np.float32),
        )
        return self.add(name, node, source)

    def affine(self, name: str, linear: torch.nn.Linear, source: str) -> str:
        if linear.bias is None:
            return self.add(name, nir.Linear(weight=_f32(linear.weight)), source)
        return self.add(name, nir.Affine(weight=_f32(linear.weight), bias=_f32(linear.bias)), source)

    def warp(self, prefix: str, warp: TimeWarp | None, source: str) -> str:
        """Delayed, weighted copies of ``source`` summed in one node; returns the node to read."""
        if warp is None:
            return source
        taps = warp.taps().detach().cpu().numpy().astype(np.float32)  # [S, F]
        used = [s for s in range(taps.shape[0]) if np.any(taps[s] != 0)]
        if used == [0] and np.all(taps[0] == 1):
            return source  # identity: nothing to emit
        out = self.add(f"{prefix}_warp", nir.Scale(scale=np.ones(taps.shape[1], np.float32)))
        for s in used:
            tapped = source
            if s > 0:
                tapped = self.add(f"{prefix}_warp_delay{s}",
                                  nir.Delay(delay=np.full(taps.shape[1], s * self.dt, np.float32)), source)
            self.add(f"{prefix}_warp_tap{s}", nir.Scale(scale=taps[s]), tapped)
            self.connect(f"{prefix}_warp_tap{s}", out)
        return out

    def graph(self, metadata: dict) -> nir.NIRGraph:
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata, type_check=True)


def _audio_branch(b: _GraphBuilder, model: AVSpikingNet) -> str:
    enc = model.audio_encoder
    src = b.add("audio_input", nir.Input(input_type={"input": np.array([enc.synapses[0].in_features])}))
    for i, (syn, lif) in enumerate(zip(enc.synapses, enc.neurons)):
        src = b.affine(f"audio_fc{i}", syn, src)
        src = b.lif(f"audio_lif{i}", lif, (syn.out_features,), src)
    return src


def _visual_branch(b: _GraphBuilder, model: AVSpikingNet) -> str:
    enc, cfg = model.visual_encoder, model.config.visual
    shape = tuple(cfg.in_shape)
    src = b.add("visual_input", nir.Input(input_type={"input": np.array(shape)}))
    for i, conv in enumerate(enc.convs):
        node = nir.Conv2d(input_shape=shape[1:], weight=_f32(conv.weight), stride=conv.stride,
                          padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                          bias=_f32(conv.bias))
        src = b.add(f"visual_conv{i}", node, src)
        shape = tuple(int(s) for s in node.output_type["output"])
        src = b.lif(f"visual_lif{i}", enc.neurons[i], shape, src)
    src = b.add("visual_flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), src)
    src = b.affine("visual_fc", enc.fc, src)
    return b.lif(f"visual_lif{len(enc.convs)}", enc.neurons[-1], (enc.fc.out_features,), src)


def _metadata(model: AVSpikingNet, dt: float, kind: str) -> dict:
    cfg = model.config
    return {
        "producer": "taaf-toolkit",
        "kind": kind,
        "dt": float(dt),
        "n_steps": int(cfg.n_steps),
        "reset": RESET_CONVENTION,
        "neuron_model": "LIF forward Euler: v = (1 - dt/tau) v + (r dt/tau) I; spike v > v_threshold",
        "edge_semantics": "feed-forward edges act within the same step; fan-in edges sum",
        "fusion": cfg.fusion,
        "time_warp": "yes" if cfg.time_warp else "no",
    }


def model_to_nir(model: AVSpikingNet, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """The chip part of ``model`` as one NIR graph with two Inputs and the readout Outputs."""
    b = _GraphBuilder(dt)
    _fusion_part(b, model, _audio_branch(b, model), _visual_branch(b, model))
    return b.graph(_metadata(model, dt, "taaf-chip"))


def fusion_graph(model: AVSpikingNet, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """Everything after the encoders, fed by the encoders' output spikes as two Inputs named
    after the last encoder layers. Lets a peer simulator that can only run the encoder
    branches (:func:`branch_graphs`) be completed by the reference simulator."""
    b = _GraphBuilder(dt)
    names = encoder_outputs(model)
    audio = b.add(names["audio"], nir.Input(input_type={"input": np.array([model.audio_encoder.out_features])}))
    visual = b.add(names["visual"], nir.Input(input_type={"input": np.array([model.visual_encoder.out_features])}))
    _fusion_part(b, model, audio, visual)
    return b.graph(_metadata(model, dt, "taaf-fusion"))


def _fusion_part(b: _GraphBuilder, model: AVSpikingNet, audio: str, visual: str) -> None:
    audio = b.warp("audio", model.audio_warp, audio)
    visual = b.warp("visual", model.visual_warp, visual)
    b.affine("readout_audio", model.audio_evidence, audio)
    b.affine("readout_visual", model.visual_evidence, visual)
    n_classes = model.config.n_classes
    b.add("z_audio", nir.Output(output_type={"output": np.array([n_classes])}), "readout_audio")
    b.add("z_visual", nir.Output(output_type={"output": np.array([n_classes])}), "readout_visual")
    if model.fusion is not None:
        f = model.fusion
        b.affine("fusion_audio_synapses", f.audio_synapses, audio)
        b.affine("fusion_visual_synapses", f.visual_synapses, visual)
        b.lif("fusion_lif", f.neurons, (f.audio_synapses.out_features,), "fusion_audio_synapses")
        b.connect("fusion_visual_synapses", "fusion_lif")
        b.affine("readout_modality", f.modality_score, "fusion_lif")
        b.affine("readout_temporal", f.temporal_score, "fusion_lif")
        b.add("modality_scores", nir.Output(output_type={"output": np.array([2])}), "readout_modality")
        b.add("temporal_scores", nir.Output(output_type={"output": np.array([1])}), "readout_temporal")
        if f.fused_evidence is not None:
            b.affine("readout_fused", f.fused_evidence, "fusion_lif")
            b.add("z_fused", nir.Output(output_type={"output": np.array([n_classes])}), "readout_fused")


def spiking_layers(model: AVSpikingNet) -> dict[str, str]:
    """PyTorch spike-record key (``AVSpikingNet.chip(record=True)``) -> NIR node name."""
    layers = {f"audio{i}": f"audio_lif{i}" for i in range(len(model.audio_encoder.neurons))}
    layers.update({f"visual{i}": f"visual_lif{i}" for i in range(len(model.visual_encoder.neurons))})
    if model.fusion is not None:
        layers["fused"] = "fusion_lif"
    return layers


def synapses_into(model: AVSpikingNet) -> dict[str, list[torch.nn.Module]]:
    """NIR spiking node -> the PyTorch synapse modules whose currents it integrates."""
    enc_a, enc_v = model.audio_encoder, model.visual_encoder
    out: dict[str, list[torch.nn.Module]] = {f"audio_lif{i}": [syn] for i, syn in enumerate(enc_a.synapses)}
    out.update({f"visual_lif{i}": [conv] for i, conv in enumerate(enc_v.convs)})
    out[f"visual_lif{len(enc_v.convs)}"] = [enc_v.fc]
    if model.fusion is not None:
        out["fusion_lif"] = [model.fusion.audio_synapses, model.fusion.visual_synapses]
    return out


def encoder_outputs(model: AVSpikingNet) -> dict[str, str]:
    """The NIR node of each encoder's last spiking layer."""
    return {"audio": f"audio_lif{len(model.audio_encoder.neurons) - 1}",
            "visual": f"visual_lif{len(model.visual_encoder.neurons) - 1}"}


def branch_graphs(model: AVSpikingNet, dt: float = DEFAULT_DT) -> dict[str, nir.NIRGraph]:
    """One single-Input graph per modality encoder, ending at its last spiking layer.

    For importers that cannot take two Inputs (nirtorch 2.6, which snnTorch and Norse use);
    the fusion and readouts are identical to the full graph's and need no simulator check.
    """
    graphs = {}
    for name, branch in (("audio", _audio_branch), ("visual", _visual_branch)):
        b = _GraphBuilder(dt)
        last = branch(b, model)
        size = int(np.prod(next(n for k, n in b.nodes.items() if k == last).tau.shape))
        b.add("output", nir.Output(output_type={"output": np.array([size])}), last)
        graphs[name] = b.graph(_metadata(model, dt, f"taaf-{name}-encoder"))
    return graphs
