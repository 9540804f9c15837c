"""Lava backends (:mod:`hardware.loihi`): fixed-point rules, the NIR -> Lava mapper, the
watchdog, and peer references.

* fixed point: :mod:`hardware.loihi.fixed_point`'s integer functions against hand-computed
  traces and Lava's own weight utilities; every register range raises a clear error;
* Lava fixed == :func:`~oracles.emulate_network` (the integer rules) bit for
  bit, voltages included; float Lava == the reference simulator spike for spike, on a random
  feed-forward graph (fan-in, Delay, biases) and on a small TAAF model with a real time-warp;
* the watchdog ends a failing Lava run with a LavaError and leaves no process behind;
* the NIR paper's 01_lif Lava traces (fixed: bit-exact; float: float32 precision).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import nir
import numpy as np
import pytest

from hardware.loihi import (
    FixedPointRangeError,
    LavaError,
    LavaMappingError,
    LavaRunError,
    LavaTimeoutError,
)
from hardware.loihi import fixed_point as fp
from hardware.loihi import quant_rules as qr
from hardware.ir import BatchLayout, lower_graph
from hardware.isolation import LAST_RUN, group_members, run_in_watchdog
from hardware.loihi.lava_runtime import run_graph, run_with_watchdog
from hardware.loihi.network import NetworkSpec
from hardware.loihi.program import LayerParams, SynapseParams, map_graph
from oracles import emulate_network

DT = 1e-4
PEER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "nir-paper"
TIMEOUT = 120.0


# --- fixed point: integer rules ----------------------------------------------------------------

def test_lif_fixed_step_hand_trace():
    """du = 4095 (no current state), dv = 163, vth = 25: the NIR paper's LIF. One input of 10."""
    u = v = np.zeros(1, np.int64)
    trace = []
    for a in [10, 0, 0, 0, 10, 10, 10]:
        u, v, s = fp.lif_fixed_step(u, v, np.array([a]), du=4095, dv=163, effective_bias=0, effective_vth=25 << 6)
        trace.append((int(u[0]), int(v[0]), bool(s[0])))
    # u = a << 6 each step; v = (v * (4096 - 163)) >> 12 + u; spike when v > 1600, then v = 0
    assert trace == [(640, 640, False), (0, 614, False), (0, 589, False), (0, 565, False),
                     (640, 1182, False), (640, 0, True), (640, 640, False)]


def test_decay_truncates_toward_zero_and_state_limits():
    assert fp.decay_toward_zero(np.array([-101, 101, -100]), 2048).tolist() == [-50, 50, -50]
    # u wraps beyond 2^23 (strictly), as Lava's model does; v clips at +-(2^23 - 1)
    assert fp.wrap_u(np.array([2 ** 23, 2 ** 23 + 64, -(2 ** 23)])).tolist() == [2 ** 23, -(2 ** 23) + 64, 2 ** 23]
    u, v, s = fp.lif_fixed_step(np.zeros(1, np.int64), np.array([-(2 ** 23) + 10]), np.array([-(2 ** 10)]),
                                du=4095, dv=0, effective_bias=0, effective_vth=0)
    assert int(u[0]) == -(2 ** 16) and int(v[0]) == -(2 ** 23) + 1 and not s[0]
    a = fp.dense_accumulate(np.array([[2, -4], [6, 8]]), np.array([3, 1]), -1)
    assert a.tolist() == [1, 13]  # (6 - 4) >> 1, (18 + 8) >> 1: arithmetic shift of the sum
    assert fp.dense_accumulate(np.array([[-2, 0]]), np.array([1, 0]), -2).tolist() == [-1]  # floor


def test_lava_weights_match_lavas_own_utilities():
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    rng = np.random.default_rng(0)
    w = rng.integers(-300, 300, size=(20, 30))
    for mode in (SignMode.MIXED, SignMode.EXCITATORY, SignMode.INHIBITORY):
        for bits in (8, 6):
            lava = truncate_weights(clip_weights(w, mode, num_bits=8), mode, bits)
            assert np.array_equal(fp.lava_weights(w, fp.SignMode(mode.value), bits), lava), (mode, bits)


@pytest.mark.parametrize("make, words", [
    (lambda: fp.QuantizedLIF("L", du=4096, dv=0, vth=1, bias_mant=[0], bias_exp=[0]), ["L", "du = 4096", "[0, 4095]"]),
    (lambda: fp.QuantizedLIF("L", du=0, dv=0, vth=2 ** 17, bias_mant=[0], bias_exp=[0]), ["vth = 131072", "131071"]),
    (lambda: fp.QuantizedLIF("L", du=0, dv=0, vth=1, bias_mant=[5000], bias_exp=[0]), ["bias_mant = 5000", "[-4096, 4095]"]),
    (lambda: fp.QuantizedLIF("L", du=0, dv=0, vth=1, bias_mant=[1], bias_exp=[8]), ["bias_exp = 8", "[0, 7]"]),
    (lambda: fp.QuantizedLIF("L", du=0.5, dv=0, vth=1, bias_mant=[0], bias_exp=[0]), ["du must be an integer"]),
    (lambda: fp.QuantizedSynapses("S", np.array([[0.5]])), ["S", "integers", "float64"]),
    (lambda: fp.QuantizedSynapses("S", np.array([[3]])), ["weight 3", "not representable", "Lava would use 2"]),
    (lambda: fp.QuantizedSynapses("S", np.array([[2]]), weight_exp=8), ["weight_exp = 8", "[-8, 7]"]),
    (lambda: fp.InputEncoding("in", frac_bits=4, bits=8, max_abs=16.0), ["in", "127"]),
    (lambda: fp.InputEncoding("in", 3, 12, 2.0).encode(np.array([2.5])), ["2.5", "[-2.0, 2.0]"]),
    (lambda: qr.PowerOfTwoRule().layer("L", [qr.FloatTerm("x", np.ones((2, 2)))],
                                       qr.FloatNeuron(dv=1.0, du=1.0, threshold=1.0, bias=np.zeros(2))),
     ["L", "dv", "tau = dt"]),
    (lambda: qr.PowerOfTwoRule().layer("L", [qr.FloatTerm("x", np.full((2, 2), 1e-3))],
                                       qr.FloatNeuron(dv=0.1, du=1.0, threshold=1e6, bias=np.zeros(2))),
     ["L", "vanish", "threshold 1e+06"]),
])
def test_range_checks_raise_clear_errors(make, words):
    with pytest.raises(FixedPointRangeError) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_power_of_two_rule_is_the_largest_fitting_scale():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(16, 40)) * 0.2
    bias = rng.normal(size=16) * 0.05
    rule = qr.PowerOfTwoRule()
    q = rule.layer("L", [qr.FloatTerm("s", w)], qr.FloatNeuron(dv=0.1, du=1.0, threshold=1.0, bias=bias))
    (syn,) = q.synapses
    s, e = q.scale_exp, syn.weight_exp
    k = s - 7 - e  # mantissa exponent: weight = 2 m 2^(s-7-k) ... in a_in units 2^e, << 6
    assert np.abs(syn.weights // 2).max() <= fp.MANTISSA_MAX and np.all(syn.weights % 2 == 0)
    assert np.abs(syn.weights / 2 * 2.0 ** -k - w).max() <= 2.0 ** -k / 2 + 1e-12  # round to nearest
    assert q.lif.vth == round(2.0 ** (s - 6)) and q.lif.dv == round(0.1 * 4096) and q.lif.du == 4095
    assert np.abs(q.lif.effective_bias - bias * 2.0 ** s).max() <= 2.0 ** q.lif.bias_exp.max() / 2
    assert fp.u_bound(np.maximum(q.activation_pos, q.activation_neg), 4095).max() < 2 ** 23
    # one step finer would break a register (here: the weight exponent or the current bound)
    bigger = rule._synapses("L", [qr.FloatTerm("s", w)], s + 1, fp.ACT_SHIFT)
    assert bigger is None or fp.u_bound(qr.activation_bounds(bigger, [qr.FloatTerm("s", w)])[0], 4095).max() >= 2 ** 23 \
        or round(2.0 ** (s + 1 - 6)) > fp.VTH_MAX


# --- small graphs --------------------------------------------------------------------------------

def _lif(n, tau=2e-3, thr=0.5):
    f = np.float32
    return nir.LIF(tau=np.full(n, tau, f), r=np.full(n, tau / DT, f), v_leak=np.zeros(n, f),
                   v_threshold=np.full(n, thr, f), v_reset=np.zeros(n, f))


@pytest.fixture(scope="module")
def random_graph():
    """Input -> Affine(+bias) -> LIF -> Affine(+bias) -> LIF -> Delay(2) -> Scale -> Affine -+-> LIF -> readout
                                    `-> Linear (fan-in, one hop shorter) -------------------'      + direct Output"""
    rng = np.random.default_rng(1)
    f = np.float32
    nodes = {
        "in": nir.Input(input_type={"input": np.array([5])}),
        "a0": nir.Affine(weight=rng.normal(size=(8, 5)).astype(f), bias=(rng.normal(size=8) * 0.1).astype(f)),
        # a bias that alone fires l1 in its second step: nothing of it may leak through the Delay
        "l0": _lif(8), "a1": nir.Affine(weight=rng.normal(size=(6, 8)).astype(f), bias=np.full(6, 0.4, f)),
        "l1": _lif(6),
        "d": nir.Delay(delay=np.full(6, 2 * DT, f)), "sc": nir.Scale(scale=rng.uniform(0.5, 1.5, 6).astype(f)),
        "a2": nir.Affine(weight=rng.normal(size=(4, 6)).astype(f), bias=np.full(4, 0.05, f)),
        "a3": nir.Linear(weight=rng.normal(size=(4, 8)).astype(f)), "l2": _lif(4, tau=5e-3),
        "ro": nir.Affine(weight=rng.normal(size=(3, 4)).astype(f), bias=np.ones(3, f)),
        "out": nir.Output(output_type={"output": np.array([3])}),
        "spk": nir.Output(output_type={"output": np.array([4])}),
    }
    edges = [("in", "a0"), ("a0", "l0"), ("l0", "a1"), ("a1", "l1"), ("l1", "d"), ("d", "sc"), ("sc", "a2"),
             ("a2", "l2"), ("l0", "a3"), ("a3", "l2"), ("l2", "ro"), ("ro", "out"), ("l2", "spk")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})
    x = rng.normal(size=(10, 4, 5)) * 2.0
    return graph, {"in": x}


def test_lowering_aligns_latencies(random_graph):
    graph, _ = random_graph
    low = lower_graph(graph)
    assert {n: layer.latency for n, layer in low.neurons.items()} == {"l0": 1, "l1": 2, "l2": 3}
    terms = {(t.source, t.delay): low.synaptic_delay("l2", t) for t in low.neurons["l2"].terms}
    # l1 -> Delay(2) arrives with k = 3 - 2 - 1 + 2; the shorter l0 path is delayed by 1
    assert terms == {("l1", 2): 2, ("l0", 0): 1}
    assert low.gap == 2 and low.gated == ("l1",)
    assert low.readouts["spk"].direct == "l2" and low.readouts["out"].latency == 4
    assert np.allclose(low.readouts["out"].bias, 1.0)


def test_float_lava_equals_reference_on_random_graph(random_graph):
    from hardware.reference import ReferenceSimulator

    graph, inputs = random_graph
    ref = ReferenceSimulator(graph).run(inputs, record=True)
    got = run_graph(map_graph(graph), inputs, record_v=("l0", "l2"), timeout=TIMEOUT)
    for name in ("l0", "l1", "l2"):
        spikes = ref.states[name]["spikes"]
        assert 0.05 < spikes.mean() < 0.95, name
        assert np.array_equal(got.states[name]["spikes"], spikes), name
    for name in ("l0", "l2"):
        assert np.allclose(got.states[name]["v"], ref.states[name]["v"], rtol=0, atol=1e-12)
    assert np.allclose(got.outputs["out"], ref.outputs["out"], rtol=0, atol=1e-12)
    assert np.array_equal(got.outputs["spk"], ref.outputs["spk"])
    assert group_members(LAST_RUN.pgid, include_zombies=True) == []


def test_fixed_lava_is_the_integer_rules_bit_for_bit(random_graph):
    graph, inputs = random_graph
    program = map_graph(graph, fixed=True, input_ranges={"in": 8.0})
    spec = program.network(inputs, record_v=("l0", "l1", "l2"))
    raw = run_with_watchdog(spec, timeout=TIMEOUT)
    emulated = emulate_network(spec)
    assert sorted(raw) == sorted(emulated)
    for name in raw:
        assert np.array_equal(raw[name], emulated[name]), name
    assert raw["l1"].any() and raw["l2"].any()
    # and it is still the same network: most spikes agree with the float reference
    from hardware.reference import ReferenceSimulator

    ref = ReferenceSimulator(graph).run(inputs, record=True)
    got = program.unpack(spec, raw)
    for name in ("l0", "l1", "l2"):
        assert (got.states[name]["spikes"] == ref.states[name]["spikes"]).mean() > 0.9, name


def test_validation_rejects_bad_parameters_before_lava_runs(random_graph):
    import dataclasses

    graph, inputs = random_graph
    spec = map_graph(graph, fixed=True, input_ranges={"in": 8.0}).network(inputs)
    floats = tuple(dataclasses.replace(s, weights=s.weights.astype(np.float64)) if i == 0 else s
                   for i, s in enumerate(spec.synapses))
    with pytest.raises(FixedPointRangeError, match="integers"):
        run_with_watchdog(dataclasses.replace(spec, synapses=floats))
    far = tuple(dataclasses.replace(s, delay=64) if i == 0 else s for i, s in enumerate(spec.synapses))
    with pytest.raises(FixedPointRangeError, match=r"delay = 64 .*\[0, 63\]"):
        run_with_watchdog(dataclasses.replace(spec, synapses=far))
    with pytest.raises(FixedPointRangeError, match="outside the encoded range"):
        map_graph(graph, fixed=True, input_ranges={"in": 1.0}).network(inputs)
    with pytest.raises(LavaMappingError, match="input range"):
        map_graph(graph, fixed=True)


def test_unsupported_graphs_are_mapping_errors():
    f = np.float32
    nodes = {"in": nir.Input(input_type={"input": np.array([2])}), "l": _lif(2),
             "th": nir.Threshold(threshold=np.ones(2, f)), "out": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "l"), ("l", "th"), ("th", "out")], metadata={"dt": DT})
    with pytest.raises(LavaMappingError, match="'th'.*Threshold"):
        lower_graph(graph)
    # per-neuron thresholds are no longer refused: the IR splits the population
    # (tests/test_mapping_coverage.py runs such graphs on every backend)
    per_neuron = _lif(2)
    per_neuron.v_threshold[1] = 0.7
    nodes = {"in": nodes["in"], "l": per_neuron, "out": nodes["out"]}
    chip = lower_graph(nir.NIRGraph(nodes=nodes, edges=[("in", "l"), ("l", "out")], metadata={"dt": DT}))
    assert len(chip.neurons) == 2 and "l" in chip.split


# --- watchdog --------------------------------------------------------------------------------------

def _tiny_spec(delay: int) -> NetworkSpec:
    n, steps = 4, 20
    layer = LayerParams("lif", n, du=4095, dv=100, vth=10, bias_mant=np.zeros(n, np.int64),
                           bias_exp=np.zeros(n, np.int64), latency=1)
    syn = SynapseParams("syn", "in", "lif", np.full((n, 3), 2, np.int64), delay, graded=True)
    return NetworkSpec("fixed_pt", BatchLayout(steps, 1), {"in": np.ones((3, steps), np.int64)},
                          {"lif": layer}, {"lif": (steps, 2)}, (syn,), {}, ("lif",))


def test_watchdog_turns_a_failing_process_model_into_a_lava_error():
    """Lava's fixed DelayDense model raises in its child process for delay > 63; without the
    watchdog Lava would wait for it forever."""
    start = time.monotonic()
    with pytest.raises(LavaRunError, match="DelayDense.*between 0 and 63") as info:
        run_with_watchdog(_tiny_spec(delay=100), timeout=60.0, validate=False)
    assert not isinstance(info.value, LavaTimeoutError)
    assert time.monotonic() - start < 60.0
    assert LAST_RUN.leftover == []
    assert group_members(LAST_RUN.pgid, include_zombies=True) == []


def _hang_with_a_child():
    subprocess.Popen(["sleep", "120"])  # a grandchild in the same process group
    time.sleep(120)


def test_watchdog_timeout_kills_the_whole_process_group():
    start = time.monotonic()
    with pytest.raises(LavaTimeoutError, match="did not finish within 2 s"):
        run_in_watchdog(_hang_with_a_child, timeout=2.0)
    assert time.monotonic() - start < 15.0
    assert group_members(LAST_RUN.pgid, include_zombies=True) == []
    with pytest.raises(LavaError):  # and a normal run still works afterwards
        run_in_watchdog(lambda: 1 / 0, timeout=10.0)
    assert run_in_watchdog(os.getpgrp, timeout=10.0) == LAST_RUN.pgid != os.getpgrp()


# --- TAAF ---------------------------------------------------------------------------------------

def test_taaf_latencies(taaf_net):
    from export.nir_export import model_to_nir

    low = lower_graph(model_to_nir(taaf_net, DT))
    lat = {n: layer.latency for n, layer in low.neurons.items()}
    assert lat == {"audio_lif0": 1, "audio_lif1": 2, "visual_lif0": 1, "visual_lif1": 2, "visual_lif2": 3,
                   "fusion_lif": 4}
    delays = {(t.source, t.delay): low.synaptic_delay("fusion_lif", t) for t in low.neurons["fusion_lif"].terms}
    assert delays[("visual_lif2", 0)] == 0 and delays[("audio_lif1", 0)] == 1  # audio path waits one step
    assert delays[("audio_lif1", 3)] == 4 and low.gap == 3 and low.gated == ("audio_lif1",)


def test_float_lava_equals_reference_on_taaf(taaf_net, taaf_split):
    from hardware.backends import run_reference
    from hardware.loihi.lava_backend import run_lava

    ref = run_reference(taaf_net, taaf_split.audio, taaf_split.image, DT)
    got = run_lava(taaf_net, taaf_split.audio, taaf_split.image, fixed=False, dt=DT, timeout=TIMEOUT)
    assert sorted(got.spikes) == sorted(ref.spikes)
    for name, spikes in ref.spikes.items():
        assert spikes.mean() > 0.02, name
        assert got.spikes[name].shape == spikes.shape and np.array_equal(got.spikes[name], spikes), name
    for name, value in ref.readouts.items():
        assert got.readouts[name].shape == value.shape
        assert np.abs(got.readouts[name] - value).max() < 1e-12, name


@pytest.mark.slow
def test_fixed_lava_on_taaf_is_the_integer_rules(taaf_net, taaf_split):
    from export.nir_export import model_to_nir, spiking_layers
    from hardware.backends import run_reference, time_major_inputs
    from hardware.loihi.lava_backend import lava_program

    program = lava_program(taaf_net, fixed=True, dt=DT)
    inputs = time_major_inputs(taaf_split.audio.astype(np.float64), taaf_split.image.astype(np.float64))
    spec = program.network(inputs, record=tuple(spiking_layers(taaf_net).values()))
    raw = run_with_watchdog(spec, timeout=TIMEOUT)
    emulated = emulate_network(spec)
    for name in raw:
        assert np.array_equal(raw[name], emulated[name]), name
    got = program.unpack(spec, raw)
    ref = run_reference(taaf_net, taaf_split.audio, taaf_split.image, DT)
    for name, spikes in ref.spikes.items():
        assert (got.states[name]["spikes"].swapaxes(0, 1) == spikes).mean() > 0.9, name
    assert model_to_nir(taaf_net, DT).nodes  # the graph still exports


def test_backends_are_registered():
    from hardware.registry import BACKENDS, graph_backends

    assert {"lava", "lava-fixed"} <= set(BACKENDS)
    assert {"lava", "lava-fixed"} <= set(graph_backends())


def test_simulate_graph_mode_on_lava(random_graph, tmp_path):
    from hardware import simulate_cli
    from hardware.reference import ReferenceSimulator

    graph, inputs = random_graph
    nir.write(str(tmp_path / "g.nir"), graph)
    np.savez(tmp_path / "in.npz", **inputs)
    args = argparse.Namespace(target=str(tmp_path / "g.nir"), backend="lava", input=str(tmp_path / "in.npz"),
                              out=str(tmp_path / "out.npz"), record=False, dt=None, save=None,
                              split="test", limit=0)
    assert simulate_cli._run_graph(args) == 0
    ref = ReferenceSimulator(graph).run(inputs)
    with np.load(tmp_path / "out.npz") as out:
        assert np.allclose(out["output__out"], ref.outputs["out"], rtol=0, atol=1e-9)
        assert np.array_equal(out["output__spk"], ref.outputs["spk"])


# --- peer references: the NIR paper's Lava runs of 01_lif --------------------------------------

@pytest.fixture(scope="module")
def lif_norse():
    if not PEER_DIR.is_dir():
        pytest.skip(f"{PEER_DIR} is absent")
    from hardware.reference import load_graph

    graph = load_graph(PEER_DIR / "01_lif__lif_norse.nir")
    fixed = np.loadtxt(PEER_DIR / "01_lif__lif_lava_cpu_fixed.csv", delimiter=",")
    floating = np.loadtxt(PEER_DIR / "01_lif__lif_lava_cpu_float.csv", delimiter=",")
    (inp,) = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    (lif,) = [n for n, node in graph.nodes.items() if isinstance(node, nir.LIF)]
    return graph, {inp: fixed[:, :1]}, lif, fixed, floating


def test_lif_norse_reproduces_lava_cpu_fixed_bit_exactly(lif_norse):
    graph, inputs, lif, fixed, _ = lif_norse
    program = map_graph(graph, DT, fixed=True, rule=qr.NirPaperRule(), input_ranges={k: 1.0 for k in inputs})
    q = program.quantized[lif]
    assert (q.lif.du, q.lif.dv, q.lif.vth, q.synapses[0].weights.tolist()) == (4095, 163, 25, [[10]])
    got = run_graph(program, inputs, record_v=(lif,), timeout=TIMEOUT)
    latency = program.chip.neurons[lif].latency
    assert latency == 1  # the CSV is Lava's raw time base: one step later than the reference
    v, spikes = got.states[lif]["v_int"][:, 0], got.states[lif]["spikes"][:, 0]
    assert np.array_equal(v[:-latency], fixed[latency:, 1])
    assert np.array_equal(spikes[:-latency], fixed[latency:, 2])
    assert np.flatnonzero(spikes).tolist() == [460, 510, 710, 760]  # == lif_exact.csv in our time base


def test_lif_norse_reproduces_lava_cpu_float(lif_norse):
    graph, inputs, lif, _, floating = lif_norse
    got = run_graph(map_graph(graph, DT), inputs, record_v=(lif,), timeout=TIMEOUT)
    v, spikes = got.states[lif]["v"][:, 0], got.states[lif]["spikes"][:, 0]
    assert np.array_equal(spikes[:-1], floating[1:, 2])
    # the paper's run used float32 parameters (0.04 -> 0.0399999991): float32 precision
    assert np.abs(v[:-1] - floating[1:, 1]).max() < 1e-6


def test_voltages_too_large_for_a_monitor_are_read_per_step(random_graph, monkeypatch):
    """A layer above the Monitor limit is recorded by reading its ``v`` whole after each step:
    the same voltages and spikes as the Monitor gives, bit for bit (fixed point)."""
    from hardware.loihi import network

    graph, inputs = random_graph
    program = map_graph(graph, fixed=True, input_ranges={"in": 8.0})
    spec = program.network(inputs, record_v=("l0", "l1", "l2"))
    by_monitor = run_with_watchdog(spec, timeout=TIMEOUT)
    monkeypatch.setattr(network, "MONITOR_VALUES", spec.layers["l1"].size * spec.num_steps - 1)
    assert not network.monitored(spec, "l1") and network.monitored(spec, "l0") == (
        spec.layers["l0"].size <= spec.layers["l1"].size - 1)
    stepped = run_with_watchdog(spec, timeout=TIMEOUT)
    assert sorted(stepped) == sorted(by_monitor)
    for name in by_monitor:
        assert np.array_equal(stepped[name], by_monitor[name]), name
    assert group_members(LAST_RUN.pgid, include_zombies=True) == []
