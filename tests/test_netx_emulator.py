"""The netx emulator (:mod:`hardware.netx.emulate`) against lava-dl's own
``netx.hdf5.Network`` run on Lava's CPU backend (``fixed_pt``, via
:func:`~hardware.netx.run.run_netx`): output spikes identical, bit for bit.

* the Oxford network of lava-dl's tutorial (``../shared/reference/lava-dl-netx``) on its own
  input events, binned as in ``test_netx.py``;
* a synthetic chain written with :func:`~hardware.netx.format.write_net` that exercises what
  Oxford does not: biases, a current decay (``iDecay < 4096``), per-synapse delays
  (``DelayDense``), odd weights (9 weight bits), an excitatory-only layer (a positive
  exponent shift) and netx's per-layer reset schedule;
* ``tiny.net`` (lava-dl's conv test network: (3, 16, 16) -> conv 5x5/2 -> 24 x 6 x 6 -> conv
  5x5/2 -> 36): its ``conv`` layers emulated as Lava's ``Conv`` computes them, inputs sent as
  Lava's (W, H, C); its ``input`` block is skipped on both sides (``skip_input``: lava-dl 0.6's
  ``Input`` block model does not compile on Lava 0.10). Measured: 3,033 conv and 72 output
  spikes on 20 steps of p = 0.3 input, identical.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from hardware.netx.emulate import emulate_net, netx_synapse_registers
from hardware.netx.format import NetxLayer, NetxNeuron, read_net, write_net
from hardware.netx.run import run_netx

TIMEOUT = 300.0
PEER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "lava-dl-netx"
needs_peer = pytest.mark.skipif(not PEER_DIR.is_dir(), reason="../shared/reference/lava-dl-netx is absent")


def _binned(events: np.ndarray, n: int = 200, steps: int = 2000) -> np.ndarray:
    """slayer ``read_np_spikes`` (rows x, polarity, t ms) + ``to_tensor`` at 1 ms: [steps, n]
    (the binning of ``test_netx.py::test_oxford_through_netx_reproduces_slayer_ground_truth``)."""
    out = np.zeros((steps, n), np.uint8)
    x, t = np.round(events[:, 0]).astype(int), np.round(events[:, 2]).astype(int)
    ok = (x >= 0) & (x < n) & (t >= 0) & (t < steps)
    out[t[ok], x[ok]] = 1
    return out


@needs_peer
@pytest.mark.slow
def test_oxford_emulator_matches_lava_netx_bit_for_bit():
    path = PEER_DIR / "oxford__Trained__network.net"
    net = read_net(path)
    assert all(layer.neuron.ref_delay <= 1 and layer.delay is None for layer in net.layers)
    inp = _binned(np.load(PEER_DIR / "oxford__input.npy"))
    t0 = time.perf_counter()
    lava = run_netx(path, inp, num_steps=2000, record_layers=True, timeout=TIMEOUT)
    t1 = time.perf_counter()
    out, layers = emulate_net(net, inp, num_steps=2000, record_layers=True)
    t2 = time.perf_counter()
    mismatches = int((out != lava.spikes).sum())
    print(f"\nOxford: Lava netx {int(lava.spikes.sum())} output spikes ({t1 - t0:.1f} s), emulator "
          f"{int(out.sum())} ({t2 - t1:.2f} s), {out.size} (step, neuron) entries compared, {mismatches} mismatches")
    assert out.dtype == np.uint8 and out.shape == lava.spikes.shape == (2000, 200)
    assert lava.spikes.sum() > 1000
    np.testing.assert_array_equal(out, lava.spikes)
    for i, spikes in enumerate(layers):
        np.testing.assert_array_equal(spikes, lava.layer_spikes[i])
    # batched (and torch) runs give the same spikes per sample
    rev = inp[::-1].copy()
    both = emulate_net(net, np.stack([inp, rev]), num_steps=2000)
    np.testing.assert_array_equal(both[0], out)
    np.testing.assert_array_equal(both[1], emulate_net(net, rev, num_steps=2000))
    pytest.importorskip("torch")
    np.testing.assert_array_equal(emulate_net(net, inp, engine="torch", num_steps=2000), out)


def _synthetic(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    w0 = rng.integers(-150, 151, (24, 10))  # mixed sign, odd values up to 150: 9 weight bits, exponent 0
    w1 = rng.integers(0, 40, (6, 24)) * 2  # excitatory only: netx shifts it up (negative exponent)
    layers = [
        NetxLayer("dense", (24,), w0, rng.integers(-3, 4, 24), rng.integers(0, 4, (24, 10)),
                  NetxNeuron("CUBA", 3000, 300, 40, 1, False)),
        NetxLayer("dense", (6,), w1, None, None, NetxNeuron("CUBA", 4096, 700, 1500, 1, False)),
    ]
    path = tmp_path / "synthetic.net"
    write_net(layers, path)
    return path


@pytest.mark.slow
def test_synthetic_delays_bias_decay_reset_match_lava(tmp_path):
    path = _synthetic(tmp_path)
    net = read_net(path)
    assert net.layers[0].delay is not None and int(net.layers[0].delay.max()) > 0
    regs = [netx_synapse_registers(layer.weight) for layer in net.layers]
    assert (regs[0].num_weight_bits, regs[0].weight_exp) == (9, 0) and regs[1].weight_exp < 0
    x = (np.random.default_rng(1).random((60, 10)) < 0.35).astype(np.uint8)
    for reset in (None, (17, 3)):
        kw = {} if reset is None else {"reset_interval": reset[0], "reset_offset": reset[1]}
        lava = run_netx(path, x, record_layers=True, timeout=TIMEOUT, **kw)
        out, layers = emulate_net(net, x, record_layers=True, **kw)
        print(f"\nsynthetic (reset {reset}): Lava {int(lava.spikes.sum())} output / "
              f"{int(lava.layer_spikes[0].sum())} hidden spikes, emulator {int(out.sum())} / {int(layers[0].sum())}, "
              f"mismatches {int((out != lava.spikes).sum())} / {int((layers[0] != lava.layer_spikes[0]).sum())}")
        assert lava.layer_spikes[0].sum() > 20 and lava.spikes.sum() > 5
        np.testing.assert_array_equal(layers[0], lava.layer_spikes[0])
        np.testing.assert_array_equal(out, lava.spikes)


@needs_peer
def test_tiny_net_conv_layers_bit_exact_with_lava_dl():
    path = PEER_DIR / "tiny.net"
    x = (np.random.default_rng(0).random((20, 768)) < 0.3).astype(np.int64)
    out, layers = emulate_net(read_net(path), x, record_layers=True, skip_input=True)
    lava = run_netx(path, x, record_layers=True, skip_input=True, timeout=TIMEOUT)
    assert layers[0].shape == (22, 24 * 6 * 6) and layers[0].sum() > 1000 and out.sum() > 20
    np.testing.assert_array_equal(layers[0], lava.layer_spikes[0])
    np.testing.assert_array_equal(out, lava.spikes)
