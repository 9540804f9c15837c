"""The audio-visual SNN: encoders -> time-warp -> fusion (chip) -> host head.

``chip(audio, image)`` is everything with synapses, i.e. what the exporter writes to NIR;
``head`` is the host part. ``forward`` = head(chip(...)).

TAAF fusion (on chip, per step t):
    a~, v~ = warp_a(a), warp_v(v)                 delayed, weighted synapses
    h[t]   = LIF(W_a a~[t] + W_v v~[t] + b)       fused spiking layer: two synapse groups, fan-in
    z_m[t] = U_m m~[t] + c_m                      per-modality class evidence
    s[t]   = G h[t] + g,  e[t] = q h[t] + q0      modality and temporal score logits
    z_f[t] = U_f h[t] + c_f                       fused class evidence (fusion "taaf-fused", the
                                                  default; not in "taaf", the gate-only design)
Concat fusion: z_m[t] only (the fused classifier split per modality). The host head
(:mod:`taaf.model.host`) integrates them: modality level, then temporal level.

:func:`build_network` picks this network or its ANN baseline (:mod:`taaf.model.ann`) from
``ModelConfig.model``; the trainer and the checkpoint loader build models through it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from taaf.config import ATTENTION_FUSIONS, MODALITIES, ModelConfig
from taaf.model.ann import AVANNNet
from taaf.model.encoders import AudioEncoder, VisualEncoder
from taaf.model.host import HeadOutput, HostHead, Readouts
from taaf.model.neurons import LIFLayer
from taaf.model.timewarp import TimeWarp


@dataclass
class ChipOutput:
    """What the on-chip part returns: the readouts for the host head and, when recorded, each layer's spikes."""

    readouts: Readouts
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)  # layer name -> [B, T, ...]


class TAAFFusion(nn.Module):
    """TAAF's on-chip fused spiking layer and its modality / temporal score readouts (and, for
    fusion ``taaf-fused``, its class evidence readout)."""

    def __init__(self, audio_features: int, visual_features: int, cfg: ModelConfig):
        super().__init__()
        self.audio_synapses = nn.Linear(audio_features, cfg.fused_hidden)
        self.visual_synapses = nn.Linear(visual_features, cfg.fused_hidden, bias=False)
        self.neurons = LIFLayer(cfg.neuron)
        self.modality_score = nn.Linear(cfg.fused_hidden, len(MODALITIES))
        self.temporal_score = nn.Linear(cfg.fused_hidden, 1)
        self.fused_evidence = nn.Linear(cfg.fused_hidden, cfg.n_classes) if cfg.fusion == "taaf-fused" else None

    def forward(self, audio: torch.Tensor, visual: torch.Tensor):
        """Per-step audio and visual spikes -> fused spikes, modality score logits [B, T, M], temporal score
        logits [B, T] and fused evidence [B, T, C] (None for the gate-only ``taaf``)."""
        fused = self.neurons(self.audio_synapses(audio) + self.visual_synapses(visual))
        evidence = self.fused_evidence(fused) if self.fused_evidence is not None else None
        return fused, self.modality_score(fused), self.temporal_score(fused).squeeze(-1), evidence


def mean_firing_rate(spikes: dict[str, torch.Tensor]) -> torch.Tensor:
    """Spikes per neuron per step over every recorded spiking layer together (differentiable
    through the surrogate gradient): what the spike-rate regulariser penalises, because synaptic
    events, and so energy, grow with it."""
    total = sum(s.sum() for s in spikes.values())
    count = sum(s.numel() for s in spikes.values())
    return total / count


class AVSpikingNet(nn.Module):
    """The deployable audio-visual SNN: spiking encoders, time-warp and fusion on chip, then the host head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.audio_encoder = AudioEncoder(cfg.audio, cfg.neuron)
        self.visual_encoder = VisualEncoder(cfg.visual, cfg.neuron)
        fa, fv = self.audio_encoder.out_features, self.visual_encoder.out_features
        self.audio_warp = TimeWarp(fa, cfg.max_delay) if cfg.time_warp else None
        self.visual_warp = TimeWarp(fv, cfg.max_delay) if cfg.time_warp else None
        self.audio_evidence = nn.Linear(fa, cfg.n_classes)
        self.visual_evidence = nn.Linear(fv, cfg.n_classes)
        self.fusion = TAAFFusion(fa, fv, cfg) if cfg.fusion in ATTENTION_FUSIONS else None
        self.head = HostHead(cfg.fusion)
        self._scale_initial_synapses(cfg.init_gain)

    @torch.no_grad()
    def _scale_initial_synapses(self, gain: float) -> None:
        spiking = [self.audio_encoder.synapses, self.visual_encoder.convs, self.visual_encoder.fc]
        if self.fusion is not None:
            spiking += [self.fusion.audio_synapses, self.fusion.visual_synapses]
        for module in spiking:
            for name, p in module.named_parameters():
                if name.endswith("weight"):
                    p.mul_(gain)

    def chip(self, audio: torch.Tensor, image: torch.Tensor, record: bool = False,
             schedule: torch.Tensor | None = None) -> ChipOutput:
        """audio [B, T, F], image [B, C, H, W] (or a visual stream: frames [B, K, C, H, W] and
        ``schedule`` [B, T, K]) -> per-step readouts (and spikes if ``record``)."""
        a_trace = self.audio_encoder(audio)
        v_trace = self.visual_encoder(image, audio.shape[1], schedule)
        a, v = a_trace.spikes[-1], v_trace.spikes[-1]
        if self.audio_warp is not None:
            a, v = self.audio_warp(a), self.visual_warp(v)
        readouts = Readouts(audio=self.audio_evidence(a), visual=self.visual_evidence(v))
        spikes: dict[str, torch.Tensor] = {}
        if self.fusion is not None:
            fused, readouts.modality_scores, readouts.temporal_scores, readouts.fused = self.fusion(a, v)
            spikes["fused"] = fused
        if record:
            spikes.update({f"audio{i}": s for i, s in enumerate(a_trace.spikes)})
            spikes.update({f"visual{i}": s for i, s in enumerate(v_trace.spikes)})
        return ChipOutput(readouts, spikes if record else {})

    def forward(self, audio: torch.Tensor, image: torch.Tensor, schedule: torch.Tensor | None = None) -> HeadOutput:
        """audio [B, T, F], image [B, C, H, W] (or stream frames + ``schedule``) -> head output; the full
        network as trained and evaluated."""
        chip = self.chip(audio, image, record=True, schedule=schedule)
        out = self.head(chip.readouts)
        out.spike_rate = mean_firing_rate(chip.spikes)
        return out

    def constrain_(self) -> None:
        """Project learned neuron parameters back into their deployable range."""
        for module in self.modules():
            if isinstance(module, LIFLayer):
                module.constrain_()

    def modality_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups for learning-rate modulation: each modality's encoder, warp and
        evidence readout; everything else (fusion synapses, score readouts) is shared."""
        groups = {
            "audio": [*self.audio_encoder.parameters(), *self.audio_evidence.parameters()],
            "visual": [*self.visual_encoder.parameters(), *self.visual_evidence.parameters()],
        }
        if self.audio_warp is not None:
            groups["audio"] += list(self.audio_warp.parameters())
            groups["visual"] += list(self.visual_warp.parameters())
        owned = {id(p) for ps in groups.values() for p in ps}
        groups["shared"] = [p for p in self.parameters() if id(p) not in owned]
        return groups


#: What the trainer, checkpoints and evaluation accept: the SNN or its ANN baseline.
AVNetwork = AVSpikingNet | AVANNNet


def build_network(cfg: ModelConfig) -> AVNetwork:
    """The network ``cfg.model`` names (snn or ann), freshly initialised; a config whose
    parameters exceed the memory budget is refused first (:class:`~taaf.budget.BudgetError`)."""
    from taaf import budget

    n = cfg.parameter_count()
    budget.check("the network's parameters", 4 * n, f"{n:,} float32 parameters")
    return AVANNNet(cfg) if cfg.model == "ann" else AVSpikingNet(cfg)
