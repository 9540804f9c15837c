"""The whole ANN baseline as one ONNX graph, run with onnxruntime (the benchmarks time it).

Unlike the SNN, nothing of the ANN is meant for the chip, so there is no chip/host cut: inputs
``audio`` [B, T, F] and ``image`` [B, C, H, W], output ``logits`` [B, C] (the fused prediction,
the same tensor as ``AVANNNet(...).logits``). The batch axis is dynamic; so is T, since the
first thing the network does is average over it. Legacy TorchScript exporter (``dynamo=False``)
at opset 17, as for the host head: it needs no extra packages and gives a small static graph.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from taaf.model.ann import AVANNNet

INPUTS = ("audio", "image")
OUTPUTS = ("logits",)
OPSET = 17


class _LogitsGraph(nn.Module):
    """Positional tensors in, the fused logits out: what ONNX can trace."""

    def __init__(self, model: AVANNNet):
        super().__init__()
        self.model = model

    def forward(self, audio: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.model(audio, image).logits


def ann_onnx(model: AVANNNet) -> bytes:
    """Serialized ONNX model of the full ANN (eval mode, weights as initializers)."""
    cfg = model.config
    example = (torch.zeros(1, cfg.n_steps, cfg.audio.in_features), torch.zeros(1, *cfg.visual.in_shape))
    was_training = model.training
    model.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LogitsGraph(model).cpu(), example, buffer,
                input_names=list(INPUTS), output_names=list(OUTPUTS),
                dynamic_axes={"audio": {0: "batch", 1: "steps"}, "image": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )
    finally:
        model.train(was_training)
    return buffer.getvalue()


def ort_session(onnx_bytes: bytes, threads: int | None = None):
    """A CPU onnxruntime session; ``threads`` pins intra-op threads (None: onnxruntime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def run_ann_onnx(onnx_bytes: bytes, audio: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Logits [B, C] of the exported ANN for batch-first float inputs."""
    feeds = {"audio": np.ascontiguousarray(audio, dtype=np.float32),
             "image": np.ascontiguousarray(image, dtype=np.float32)}
    return ort_session(onnx_bytes).run(list(OUTPUTS), feeds)[0]
