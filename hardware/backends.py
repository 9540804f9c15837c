"""Run the chip part of a trained model on a backend and return one batch-first result.

Every backend answers the same question — given audio [B, T, F] and images [B, C, H, W] (or a
visual stream as seen at each step, [B, T, C, H, W]), what do the chip's readouts and spiking
layers do at every step — so agreement checks and accuracy need no backend-specific code. The
host head (ONNX) turns readouts into predictions.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

import nir

from export.nir_export import model_to_nir, spiking_layers, synapses_into
from hardware.reference import ReferenceSimulator
from taaf.dynamics import DEFAULT_DT, nir_lif_to_discrete
from taaf.model.network import AVSpikingNet
from taaf.model.neurons import LIFLayer

READOUT_NAMES = ("z_audio", "z_visual", "modality_scores", "temporal_scores", "z_fused")


@dataclass(frozen=True)
class ChipRun:
    """One batch on one backend, in the common batch-first layout that agreement checks compare.

    readouts: host-input name -> [B, T, ...]; spikes: NIR spiking node -> [B, T, ...]."""

    readouts: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray] = field(default_factory=dict)


def time_major_inputs(audio: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    """Model inputs -> NIR Input arrays [T, B, ...]. A static image [B, C, H, W] is presented at
    every step; a per-step stream [B, T, C, H, W] (``MultimodalSplit.dense_visual``) step by step."""
    steps = audio.shape[1]
    if image.ndim == 5:
        if image.shape[:2] != audio.shape[:2]:
            raise ValueError(f"a visual stream {image.shape} must match the audio's batch and steps {audio.shape[:2]}")
        visual = np.moveaxis(image, 1, 0)
    else:
        visual = np.broadcast_to(image[None], (steps, *image.shape))
    return {"audio_input": np.ascontiguousarray(audio.transpose(1, 0, 2)),
            "visual_input": np.ascontiguousarray(visual)}


def stream_schedule(image: torch.Tensor) -> torch.Tensor | None:
    """The model's schedule for a per-step stream [B, T, C, H, W]: frame t at step t (identity);
    None for a static image."""
    if image.dim() != 5:
        return None
    b, t = image.shape[:2]
    return torch.eye(t, dtype=image.dtype).expand(b, t, t)


@torch.no_grad()
def run_torch(model: AVSpikingNet, audio: np.ndarray, image: np.ndarray,
              dtype: torch.dtype = torch.float32) -> ChipRun:
    """The PyTorch model itself (a float64 copy when ``dtype=torch.float64``)."""
    net = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
    net.eval()
    image = torch.as_tensor(image, dtype=dtype)
    out = net.chip(torch.as_tensor(audio, dtype=dtype), image, record=True, schedule=stream_schedule(image))
    r = out.readouts
    readouts = {"z_audio": r.audio, "z_visual": r.visual}
    if r.modality_scores is not None:
        readouts.update(modality_scores=r.modality_scores, temporal_scores=r.temporal_scores)
    if r.fused is not None:
        readouts["z_fused"] = r.fused
    names = spiking_layers(model)
    return ChipRun(
        readouts={k: v.double().numpy() for k, v in readouts.items()},
        spikes={names[k]: v.double().numpy() for k, v in out.spikes.items()},
    )


def exported_twin(model: AVSpikingNet, graph: nir.NIRGraph) -> AVSpikingNet:
    """A float64 copy of ``model`` with the dynamics *as exported*.

    The NIR file stores float32 ``tau`` and ``r``; their forward-Euler coefficients
    (decay = 1 - dt/tau, gain = r dt/tau) differ from the trained float32 ``beta`` (and 1) by
    ~1e-7, enough to flip the odd spike whose voltage lands that close to threshold. The twin
    uses exactly those coefficients (decay as beta, gain folded into the incoming synapses), so
    it must agree with the reference simulator spike for spike.
    """
    twin = copy.deepcopy(model).to(torch.float64).eval()
    dt = float(graph.metadata["dt"])
    layers = dict(zip(spiking_layers(model).values(), _lif_layers(twin)))
    incoming = synapses_into(twin)
    with torch.no_grad():
        for name, layer in layers.items():
            node = graph.nodes[name]
            coeff = nir_lif_to_discrete(node.tau, node.r, node.v_leak, dt)
            decay, gain = np.unique(coeff.decay), np.unique(coeff.gain)
            if len(decay) != 1 or len(gain) != 1:
                raise ValueError(f"{name}: per-neuron time constants differ; the model has one per layer")
            layer.lif.beta.fill_(float(decay[0]))
            for synapse in incoming[name]:
                for p in synapse.parameters():
                    p.mul_(float(gain[0]))
    return twin


def _lif_layers(model: AVSpikingNet) -> list[LIFLayer]:
    """LIF layers in :func:`spiking_layers` order (audio, visual, fused)."""
    layers = [*model.audio_encoder.neurons, *model.visual_encoder.neurons]
    return layers + ([model.fusion.neurons] if model.fusion is not None else [])


def run_reference(model: AVSpikingNet, audio: np.ndarray, image: np.ndarray, dt: float = DEFAULT_DT,
                  simulator: ReferenceSimulator | None = None) -> ChipRun:
    """The exported NIR graph on the numpy reference simulator (float64)."""
    sim = simulator or ReferenceSimulator(model_to_nir(model, dt), dt)
    layers = list(spiking_layers(model).values())
    result = sim.run(time_major_inputs(audio.astype(np.float64), image.astype(np.float64)), record=layers)
    readouts = {name: _batch_first(result.outputs[name]) for name in READOUT_NAMES if name in result.outputs}
    if "temporal_scores" in readouts:
        readouts["temporal_scores"] = readouts["temporal_scores"][..., 0]
    return ChipRun(readouts=readouts, spikes={n: _batch_first(result.states[n]["spikes"]) for n in layers})


def _batch_first(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(a, 0, 1))
