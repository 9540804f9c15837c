"""Native convolution in netx ``.net`` files (issue 15): conv layers (a SumPool in front folded
into the kernel) written as lava-dl conv blocks with one shared kernel
(:mod:`hardware.netx.conv`, :func:`hardware.netx.bundle.part_layers`), run by lava-dl's own
``netx.hdf5.Network`` bit for bit as our whole-graph program (NetxRule, emulated), and counted
by the resource report as the chip stores them (the kernel once per core).

Measured (``taaf-export G --target loihi2``, 2026-12-05): the NIR paper's sinabs CNN
``part0.net`` 113,981,559 -> 609,003 bytes, synaptic memory 1055.2 -> 131.8 KiB, 10 -> 5
cores; our demo model's ``visual.net`` 812,873 -> 166,189 bytes (121.2 -> 103.6 KiB in all).
Our netx emulation (:func:`~hardware.netx.emulate.emulated_netx_run`, graded inputs included)
and lava-dl agree with the program on every layer's spikes (sinabs CNN: 4 N-MNIST-like samples
x 30 steps, lava-dl 5.2 s).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foreign_graphs import hand_built_if_cnn, nmnist_like
from hardware.loihi.emulator import LoihiEmulator
from hardware.loihi.resources import netx_resource_report
from hardware.netx.bundle import export_netx
from hardware.netx.conv import conv_matrix, shared_kernel
from hardware.netx.emulate import emulated_netx_run
from hardware.netx.format import NetxLayer, read_net
from hardware.netx.run import run_netx_bundle

DT = 1e-4
CNN = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "nir-paper" / "02_cnn__cnn_sinabs.nir"


def test_shared_kernel_recovers_convolutions_and_pooled_convolutions():
    rng = np.random.default_rng(0)
    k = rng.integers(-5, 6, (4, 2, 5, 5))
    m = conv_matrix(NetxLayer("conv", (4, 16, 16), k, stride=(2, 2), padding=(1, 1), dilation=(1, 1)), (2, 34, 34))
    got = shared_kernel(m, (2, 34, 34), (4, 16, 16))
    assert np.array_equal(got.weight, k) and (got.stride, got.padding) == ((2, 2), (1, 1))
    pool = np.zeros((2 * 8 * 8, 2 * 16 * 16), np.int64)  # SumPool 2x2 / 2, then conv 3x3 / pad 1
    for c in range(2):
        for y in range(16):
            for x in range(16):
                pool[(c * 8 + y // 2) * 8 + x // 2, (c * 16 + y) * 16 + x] = 1
    k3 = rng.integers(-5, 6, (3, 2, 3, 3))
    m = conv_matrix(NetxLayer("conv", (3, 8, 8), k3, stride=(1, 1), padding=(1, 1), dilation=(1, 1)), (2, 8, 8)) @ pool
    got = shared_kernel(m, (2, 16, 16), (3, 8, 8))
    assert got.weight.shape == (3, 2, 6, 6) and (got.stride, got.padding) == ((2, 2), (2, 2))
    assert np.array_equal(got.weight, np.kron(k3, np.ones((2, 2), np.int64)))
    m[0, 0] += 1  # no longer a convolution: stays dense
    assert shared_kernel(m, (2, 16, 16), (3, 8, 8)) is None


@pytest.fixture(scope="module")
def if_cnn_bundle(tmp_path_factory):
    b = export_netx(hand_built_if_cnn(0), {"input": 1.0}, DT)
    folder = tmp_path_factory.mktemp("netx_conv")
    for name, data in b.files.items():
        (folder / name).write_bytes(data)
    return folder, b


def test_conv_blocks_written_and_counted_as_shared_kernels(if_cnn_bundle):
    folder, b = if_cnn_bundle
    (part,) = b.parts
    net = read_net(folder / f"{part.name}.net")
    assert [layer.type for layer in net.layers] == ["input", "conv", "conv", "flatten", "dense", "dense"]
    assert net.layers[2].weight.shape == (8, 8, 6, 6)  # pool0 folded into conv1's kernel
    report = netx_resource_report(net)
    conv_rows = [r for r in report.layers if r.kind == "conv"]
    dense = {(s.dst, s.src): s for s in b.program.synapses}
    for row, layer in zip(conv_rows, ("if0", "if1")):
        w = next(s.weights for (dst, _), s in dense.items() if dst == layer)
        assert row.synapses_nonzero == np.count_nonzero(w) and row.synapses_dense == w.size  # what it computes
        assert row.memory_bits < row.synapses_nonzero * 8 / 10  # what the chip stores: the kernel


@pytest.mark.slow
def test_lava_dl_runs_conv_blocks_bit_exact_with_our_program(if_cnn_bundle):
    folder, b = if_cnn_bundle
    inputs = {"input": nmnist_like(2, 8, seed=3, size=16).astype(np.float64)}
    got = run_netx_bundle(folder, inputs, timeout=300.0)  # lava-dl's netx.hdf5.Network, Loihi2SimCfg fixed_pt
    emulated = run_netx_bundle(folder, inputs, runner=emulated_netx_run)  # our netx emulation of the files
    want = LoihiEmulator(b.program).run(inputs, record=True)
    assert want.states["if1"]["spikes"].sum() > 10
    for name in b.program.layers:
        np.testing.assert_array_equal(got.spikes[name], want.states[name]["spikes"], err_msg=name)
        np.testing.assert_array_equal(emulated.spikes[name], want.states[name]["spikes"], err_msg=name)


@pytest.mark.skipif(not CNN.is_file(), reason=f"peer file {CNN} not found")
def test_sinabs_cnn_exports_its_convolutions_as_conv_blocks(tmp_path):
    from hardware.reference import load_graph

    b = export_netx(load_graph(CNN), {"input": 1.0}, DT)
    for name, data in b.files.items():
        (tmp_path / name).write_bytes(data)
    inputs = {"input": nmnist_like(2, 12, seed=1).astype(np.float64)}
    want = LoihiEmulator(b.program).run(inputs, record=True)
    lava = run_netx_bundle(tmp_path, inputs, timeout=300.0)  # measured: 4 samples x 30 steps identical too
    emulated = run_netx_bundle(tmp_path, inputs, runner=emulated_netx_run)
    assert want.states["6"]["spikes"].sum() > 50
    for name in b.program.layers:
        np.testing.assert_array_equal(lava.spikes[name], want.states[name]["spikes"], err_msg=name)
        np.testing.assert_array_equal(emulated.spikes[name], want.states[name]["spikes"], err_msg=name)
    net = read_net(b.files["part0.net"])
    assert [layer.type for layer in net.layers] == ["input", "conv", "conv", "conv", "flatten", "dense", "dense"]
    assert len(b.files["part0.net"]) < 1_000_000  # measured 609,003 bytes (unrolled: 113,981,559)
    report = netx_resource_report(net)
    assert sum(r.memory_bits for r in report.layers) / 8 / 1024 < 140  # measured 131.8 KiB (unrolled: 1055.2)
