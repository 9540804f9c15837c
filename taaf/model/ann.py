"""The ANN baseline: :class:`~taaf.model.network.AVSpikingNet`'s layers with ReLU instead of LIF
and no time dimension, for comparing accuracy, MACs, latency and energy with the SNN.

Layer for layer (same ``ModelConfig``, same Linear / Conv2d shapes, same attribute names):
    audio   mean_t x[t] -> Linear -> ReLU -> ... (``audio_encoder.synapses``)
    visual  image -> strided Conv2d -> ReLU -> ... -> Linear -> ReLU (``visual_encoder.convs/fc``)
    z_m     = U_m m + c_m                                (``audio_evidence`` / ``visual_evidence``)
    TAAF    h = ReLU(W_a a + W_v v + b), s = G h + g, z_f = U_f h  (``fusion.*``; z_f for taaf-fused only)
    concat  logits = z_audio + z_visual
What has no counterpart without time: the LIF neurons (-> ReLU), the time-warp delays, and the
temporal score readout q (a softmax over a single step is constant 1 and its gradient is zero,
so the layer would be dead weight). The SNN's ``init_gain`` is not applied either: it makes
sparse spike inputs drive deeper LIF layers; dense ReLU activations train from PyTorch's
default initialisation, which is what an ANN baseline normally uses.

"No time dimension": the audio input [B, T, F] is averaged over T. It is the simplest reading
that keeps the first layer's shape (F -> hidden[0]): the first Linear is affine, so it sees
exactly the time-average of the SNN's first-layer current. (Flattening to T*F would change that
shape and the MAC count.) The image is static already and goes through the conv stack once.

The output is the SNN's :class:`~taaf.model.host.HeadOutput` with T = 1 (alpha [B, 1] = 1,
beta [B, 1, 2]), produced by the same :class:`~taaf.model.host.HostHead`, so the trainer's
losses and TAAF balancing (importance from alpha * beta) and ``taaf.evaluate`` run unchanged.
"""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from taaf.config import ATTENTION_FUSIONS, MODALITIES, AudioEncoderConfig, ModelConfig, VisualEncoderConfig
from taaf.model.encoders import visual_synapses
from taaf.model.host import HeadOutput, HostHead, Readouts


class AudioMLP(nn.Module):
    """Time-averaged MFCC frame -> Linear -> ReLU -> ... (the ANN twin of ``AudioEncoder``)."""

    def __init__(self, cfg: AudioEncoderConfig):
        super().__init__()
        sizes = (cfg.in_features, *cfg.hidden)
        self.synapses = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        self.out_features = cfg.hidden[-1]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio [B, T, F] -> features [B, hidden[-1]]."""
        x = audio.mean(dim=1)
        for syn in self.synapses:
            x = torch.relu(syn(x))
        return x


class VisualCNN(nn.Module):
    """Image -> strided Conv2d + ReLU layers -> Linear + ReLU (the ANN twin of ``VisualEncoder``)."""

    def __init__(self, cfg: VisualEncoderConfig):
        super().__init__()
        self.convs, self.fc = visual_synapses(cfg)
        self.out_features = cfg.hidden

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image [B, C, H, W] -> features [B, hidden]."""
        x = image
        for conv in self.convs:
            x = torch.relu(conv(x))
        return torch.relu(self.fc(x.flatten(1)))


class StaticFusion(nn.Module):
    """TAAF's fused layer without time: two synapse groups into one ReLU layer, modality scores."""

    def __init__(self, audio_features: int, visual_features: int, cfg: ModelConfig):
        super().__init__()
        self.audio_synapses = nn.Linear(audio_features, cfg.fused_hidden)
        self.visual_synapses = nn.Linear(visual_features, cfg.fused_hidden, bias=False)
        self.modality_score = nn.Linear(cfg.fused_hidden, len(MODALITIES))
        self.fused_evidence = nn.Linear(cfg.fused_hidden, cfg.n_classes) if cfg.fusion == "taaf-fused" else None

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features [B, Fa], [B, Fv] -> modality score logits [B, M] and fused evidence [B, C]
        (None for the gate-only ``taaf``)."""
        h = torch.relu(self.audio_synapses(audio) + self.visual_synapses(visual))
        return self.modality_score(h), (self.fused_evidence(h) if self.fused_evidence is not None else None)


class AVANNNet(nn.Module):
    """The ANN baseline; same constructor, forward and training hooks as ``AVSpikingNet``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.audio_encoder = AudioMLP(cfg.audio)
        self.visual_encoder = VisualCNN(cfg.visual)
        fa, fv = self.audio_encoder.out_features, self.visual_encoder.out_features
        self.audio_evidence = nn.Linear(fa, cfg.n_classes)
        self.visual_evidence = nn.Linear(fv, cfg.n_classes)
        self.fusion = StaticFusion(fa, fv, cfg) if cfg.fusion in ATTENTION_FUSIONS else None
        self.head = HostHead(cfg.fusion)

    def readouts(self, audio: torch.Tensor, image: torch.Tensor, schedule: torch.Tensor | None = None) -> Readouts:
        """audio [B, T, F], image [B, C, H, W] -> the head's inputs as one step ([B, 1, ...]). A visual
        stream (frames [B, K, C, H, W], ``schedule`` [B, T, K]) is averaged over T like the audio."""
        if schedule is not None:
            image = torch.einsum("bk,bkchw->bchw", schedule.mean(dim=1), image)
        elif image.ndim != 4:
            from taaf.model.encoders import stream_needs_schedule

            raise stream_needs_schedule()
        a, v = self.audio_encoder(audio), self.visual_encoder(image)
        r = Readouts(audio=self.audio_evidence(a).unsqueeze(1), visual=self.visual_evidence(v).unsqueeze(1))
        if self.fusion is not None:
            scores, fused = self.fusion(a, v)
            r.modality_scores = scores.unsqueeze(1)
            r.fused = fused.unsqueeze(1) if fused is not None else None
            # One step: alpha = softmax over a single score = 1 whatever the score is.
            r.temporal_scores = torch.zeros_like(r.modality_scores[..., 0])
        return r

    def forward(self, audio: torch.Tensor, image: torch.Tensor, schedule: torch.Tensor | None = None) -> HeadOutput:
        """audio [B, T, F], image [B, C, H, W] (or stream frames + ``schedule``) -> the head's output with T = 1."""
        return self.head(self.readouts(audio, image, schedule))

    def constrain_(self) -> None:
        """Nothing to project (no neuron parameters); kept so the trainer treats both alike."""

    def modality_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The SNN's grouping: each modality's encoder and evidence readout; the fusion layer
        and modality scores are shared (TAAF modulates the per-modality learning rates)."""
        groups = {
            "audio": [*self.audio_encoder.parameters(), *self.audio_evidence.parameters()],
            "visual": [*self.visual_encoder.parameters(), *self.visual_evidence.parameters()],
        }
        owned = {id(p) for ps in groups.values() for p in ps}
        groups["shared"] = [p for p in self.parameters() if id(p) not in owned]
        return groups
