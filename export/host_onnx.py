"""The host head as ONNX: softmaxes and the attention-weighted sum, run with onnxruntime.

Inputs are the chip readouts stacked over time, batch first: ``z_audio``/``z_visual``
[B, T, C], ``modality_scores`` [B, T, 2], ``temporal_scores`` [B, T] (TAAF only), ``z_fused``
[B, T, C] (``taaf-fused`` only); outputs
``logits`` [B, C], ``alpha`` [B, T], ``beta`` [B, T, 2]. Batch and T are dynamic axes.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from taaf.model.host import HostHead, Readouts

INPUTS_TAAF = ("z_audio", "z_visual", "modality_scores", "temporal_scores")
INPUTS_TAAF_FUSED = (*INPUTS_TAAF, "z_fused")
INPUTS_CONCAT = ("z_audio", "z_visual")
OUTPUTS = ("logits", "alpha", "beta")
OPSET = 17


class _HostGraph(nn.Module):
    """Positional-tensor wrapper around :class:`HostHead` for tracing."""

    def __init__(self, fusion: str):
        super().__init__()
        self.head = HostHead(fusion)
        self.fusion = fusion

    def forward(self, z_audio, z_visual, modality_scores=None, temporal_scores=None, z_fused=None):
        out = self.head(Readouts(z_audio, z_visual, modality_scores, temporal_scores, z_fused))
        return out.logits, out.alpha, out.beta


def host_input_names(fusion: str) -> tuple[str, ...]:
    """Names of the host head's ONNX inputs (the chip streams it consumes) for ``fusion``."""
    return {"taaf": INPUTS_TAAF, "taaf-fused": INPUTS_TAAF_FUSED}.get(fusion, INPUTS_CONCAT)


def host_head_onnx(fusion: str, n_classes: int) -> bytes:
    """Serialized ONNX model of the host head for ``fusion`` (taaf or concat)."""
    names = host_input_names(fusion)
    example = {"z_audio": torch.zeros(1, 2, n_classes), "z_visual": torch.zeros(1, 2, n_classes),
               "modality_scores": torch.zeros(1, 2, 2), "temporal_scores": torch.zeros(1, 2),
               "z_fused": torch.zeros(1, 2, n_classes)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _HostGraph(fusion), tuple(example[n] for n in names), buffer,
            input_names=list(names), output_names=list(OUTPUTS),
            dynamic_axes={n: {0: "batch", 1: "steps"} for n in (*names, "alpha", "beta")} | {"logits": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
    return buffer.getvalue()


def run_host_head(onnx_bytes: bytes, readouts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the exported head with onnxruntime on batch-first readouts."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {n: np.ascontiguousarray(readouts[n], dtype=np.float32) for n in names}
    return dict(zip(OUTPUTS, session.run(list(OUTPUTS), feeds)))
