"""Neuron dynamics: the shared step function against a hand-computed trace, and snnTorch's
Leaky (as configured in the model) against the shared step function."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from taaf.config import NeuronConfig
from taaf.dynamics import DEFAULT_DT, beta_to_nir, lif_step, nir_lif_to_discrete
from taaf.model.neurons import LIFLayer


def test_lif_step_matches_hand_computed_trace():
    # beta 0.5, threshold 1, input 0.6 every step:
    # t0: v = 0.6            no spike
    # t1: v = 0.3 + 0.6 = 0.9 no spike
    # t2: v = 0.45 + 0.6 = 1.05 > 1 -> spike, reset to 0
    # t3: v = 0.6            no spike
    v = np.zeros(1)
    trace, spikes = [], []
    for _ in range(4):
        v, s = lif_step(v, np.array([0.6]), decay=0.5, threshold=1.0)
        trace.append(float(v[0]))
        spikes.append(float(s[0]))
    assert spikes == [0.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(trace, [0.6, 0.9, 0.0, 0.6])


def test_threshold_is_strict():
    v, s = lif_step(np.zeros(1), np.ones(1), decay=0.9, threshold=1.0)
    assert s[0] == 0.0 and v[0] == 1.0  # v == threshold does not fire (snnTorch: mem - thr > 0)


def test_lif_step_keeps_dtype_for_numpy_and_torch():
    v, s = lif_step(np.zeros(3, np.float32), np.ones(3, np.float32) * 2, decay=0.9, threshold=1.0)
    assert v.dtype == np.float32 and s.dtype == np.float32
    vt, st = lif_step(torch.zeros(3), torch.ones(3) * 2, decay=0.9, threshold=1.0)
    assert vt.dtype == torch.float32 and st.dtype == torch.float32


@pytest.mark.parametrize("beta,threshold", [(0.9, 1.0), (0.5, 0.3), (0.0, 1.0)])
def test_snntorch_leaky_equals_shared_step(beta, threshold):
    torch.manual_seed(0)
    layer = LIFLayer(NeuronConfig(beta=beta, threshold=threshold, learn_beta=False))
    currents = torch.randn(5, 30, 7) * 0.8
    spikes, voltages = layer(currents, record_voltage=True)
    v = np.zeros((5, 7), np.float32)
    for t in range(30):
        v, s = lif_step(v, currents[:, t].numpy(), decay=np.float32(beta), threshold=np.float32(threshold))
        np.testing.assert_array_equal(s, spikes[:, t].numpy())
        np.testing.assert_allclose(v, voltages[:, t].numpy(), atol=1e-6)
    assert spikes.sum() > 0


def test_beta_to_nir_roundtrip_gives_snntorch_coefficients():
    beta = np.array([0.0, 0.5, 0.9, 0.99])
    tau, r = beta_to_nir(beta)
    discrete = nir_lif_to_discrete(tau, r, v_leak=np.zeros(4), dt=DEFAULT_DT)
    np.testing.assert_allclose(discrete.decay, beta, atol=1e-12)
    np.testing.assert_allclose(discrete.gain, np.ones(4), atol=1e-12)
    np.testing.assert_allclose(discrete.bias, np.zeros(4))


def test_beta_one_has_no_time_constant():
    with pytest.raises(ValueError):
        beta_to_nir(np.array([1.0]))
