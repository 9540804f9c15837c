"""Shared fixtures. AV-Digits is built once per session (real FSDD + scikit-learn digits)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

# One thread: the suite's tensors are tiny, and on a 2-core machine extra threads only add
# synchronisation cost (measured: 38 s -> 4 s for the reference-simulator tests).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def av_digits_t4():
    from taaf.data import DataSpec, load_dataset

    return load_dataset(DataSpec(n_steps=4))


@pytest.fixture(scope="session")
def small_model_config():
    from taaf.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig

    return ModelConfig(
        n_classes=10, n_steps=4,
        audio=AudioEncoderConfig(in_features=13, hidden=(32, 32)),
        visual=VisualEncoderConfig(in_shape=(1, 8, 8), channels=(4, 8), strides=(1, 2), hidden=32),
        fused_hidden=32,
    )


@pytest.fixture(scope="module")
def taaf_net(small_model_config):
    """A small untrained TAAF network (layers fire 15-30 %) with a real time-warp: audio delays
    up to 2.5 steps, i.e. Delay taps 0..3 in the exported graph."""
    from taaf.model.network import AVSpikingNet

    cfg = replace(small_model_config, n_steps=6)
    torch.manual_seed(0)
    net = AVSpikingNet(cfg).eval()
    with torch.no_grad():
        net.audio_warp.delay.copy_(torch.linspace(0, 2.5, 32))
    return net


@pytest.fixture(scope="module")
def taaf_split():
    """Eight real AV-Digits test samples at T = 6, for the small network above."""
    from taaf.data import DataSpec, load_dataset

    return load_dataset(DataSpec(n_steps=6)).test.subset(slice(0, 8))
