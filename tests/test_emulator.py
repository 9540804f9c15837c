"""The batched Loihi emulator (:mod:`hardware.loihi.emulator`) against Lava itself.

* property tests: random small networks (fan-in of two groups, synaptic delays 0..3,
  optionally a recurrent loop) with registers drawn at the edges of their ranges (weights
  +-254/-256/255 in every sign mode, weight exponents -8/7, vth near 2^17, du/dv 0 and 4095,
  bias mantissa/exponent extremes, graded inputs up to 2^23 - 1 that make ``u`` wrap and ``v``
  clip) run on Lava (watchdog) and on the emulator, numpy and torch: identical spikes,
  voltages and readouts (float: float precision); more examples against the mapper's
  numpy transcription :func:`~oracles.emulate_network`, without Lava;
* the small exported TAAF model on 8 AV-Digits samples: == ``run_lava`` fixed and float;
* the NIR paper's 01_lif Lava CPU fixed-point trace, bit for bit;
* what the emulator refuses (outside Lava's int32 range) and its registration as a backend.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import nir
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.loihi import FixedPointRangeError, engines
from hardware.loihi import emulator as emu
from hardware.loihi import fixed_point as fp
from hardware.loihi import quant_rules as qr
from hardware.loihi.lava_runtime import run_with_watchdog
from hardware.loihi.program import LavaResult, map_graph
from oracles import emulate_network
from hardware.loihi.emulator import (
    LoihiEmulator,
    emulate_graph,
    emulate_model,
    resolve_engine,
)

DT = 1e-4
PEER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "nir-paper"
TIMEOUT = 120.0
ENGINES = [("numpy", None), ("torch", "cpu")] + ([("torch", "cuda")] if torch.cuda.is_available() else [])


# --- random edge-of-range networks -------------------------------------------------------------

def _lif(n):
    f = np.float32
    return nir.LIF(tau=np.full(n, 2e-3, f), r=np.full(n, 20.0, f), v_leak=np.zeros(n, f),
                   v_threshold=np.full(n, 0.5, f), v_reset=np.zeros(n, f))


def _edge_ints(rng, shape, lo: int, hi: int, edges) -> np.ndarray:
    """Integers in [lo, hi], half of them one of ``edges``."""
    uniform = rng.integers(lo, hi + 1, size=shape)
    return np.where(rng.random(shape) < 0.5, rng.choice(np.asarray(edges), size=shape), uniform).astype(np.int64)


class EdgeRule:
    """A :class:`~hardware.loihi.quant_rules.QuantizationRule` that ignores the float network
    and draws every register at the edges of its range, then lowers weight exponents (and
    halves weights) only as far as needed to keep |a_in| < 2^18 (the emulated range) and, for
    gated layers, the gate's guarantees (the mapper's batch layout relies on them)."""

    name = "edges"

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def input_encoding(self, name: str, max_abs: float) -> fp.InputEncoding:
        return fp.InputEncoding(name, frac_bits=0, bits=24, max_abs=float(max_abs))

    def _synapse(self, layer: str, term: qr.FloatTerm) -> fp.QuantizedSynapses:
        rng, shape = self.rng, np.shape(term.weights)
        mode = fp.SignMode(rng.choice([1, 1, 2, 3]))
        if mode == fp.SignMode.MIXED:
            w = 2 * _edge_ints(rng, shape, -128, 127, [-128, 127, -127, 0])
        else:
            w = _edge_ints(rng, shape, 0, 255, [255, 254, 0]) * (1 if mode == fp.SignMode.EXCITATORY else -1)
        exp = int(_edge_ints(rng, (), fp.WEIGHT_EXP_MIN, fp.WEIGHT_EXP_MAX, [-8, 7, 0]))
        return fp.QuantizedSynapses(f"{layer}<-{term.name}", w, exp, mode)

    @staticmethod
    def _tame(syn: fp.QuantizedSynapses) -> fp.QuantizedSynapses:
        if syn.weight_exp > fp.WEIGHT_EXP_MIN:
            return dataclasses.replace(syn, weight_exp=syn.weight_exp - 1)
        unit = 2 if syn.sign_mode == fp.SignMode.MIXED else 1
        m = syn.weights // unit
        return dataclasses.replace(syn, weights=np.sign(m) * (np.abs(m) // 2) * unit)

    def layer(self, layer, terms, neuron, gated=False) -> fp.QuantizedLayer:
        rng = self.rng
        n = np.shape(terms[0].weights)[0] if terms else neuron.bias.size
        du = fp.DU_MAX if gated else int(_edge_ints(rng, (), 0, fp.DU_MAX, [0, 1, 4094, 4095]))
        lif = fp.QuantizedLIF(layer, du=du, dv=int(_edge_ints(rng, (), 0, fp.DV_MAX, [0, 1, 4094, 4095])),
                              vth=int(_edge_ints(rng, (), 0, fp.VTH_MAX, [0, 1, fp.VTH_MAX - 1, fp.VTH_MAX])),
                              bias_mant=_edge_ints(rng, n, fp.BIAS_MANT_MIN, fp.BIAS_MANT_MAX, [-4096, 4095, 0, 0]),
                              bias_exp=_edge_ints(rng, n, 0, 7, [0, 7]))
        synapses = [self._synapse(layer, t) for t in terms]
        while True:
            pos, neg = qr.activation_bounds(synapses, terms)
            ok = max(pos.max(initial=0), neg.max(initial=0)) < fp.EXACT_ACTIVATION_LIMIT
            if ok and gated:  # the gate conditions of PowerOfTwoRule.layer
                need = qr.gate_activation(pos, lif.effective_bias, du)
                ok = (fp.u_bound(np.maximum(pos, neg), du).max(initial=0) < fp.UV_MAX
                      and need.max(initial=0) <= 256 * 2 ** fp.WEIGHT_EXP_MAX)
                if ok:
                    w, e = qr.gate_weights(layer, need)
                    ok = fp.u_bound(neg - w[:, 0] * 2.0 ** e, du).max(initial=0) < fp.UV_MAX
            if ok:
                return fp.QuantizedLayer(layer, 0, lif, tuple(synapses), pos, neg)
            worst = int(np.argmax([np.abs(s.weights).sum(1).max(initial=0) * t.max_int * 2.0 ** s.weight_exp
                                   for s, t in zip(synapses, terms)]))
            synapses[worst] = self._tame(synapses[worst])

    def readout(self, layer, terms) -> fp.QuantizedReadout:
        return fp.QuantizedReadout(layer, 0, tuple(self._synapse(layer, t) for t in terms))


def edge_graph(n_in, n0, n1, n_out, d_a, d_b, d_c, loop) -> nir.NIRGraph:
    """in -> l0 -(Delay d_a)-> l1 <-(Delay d_b)- in  (fan-in of two groups);
    out <- l1 + (Delay d_c) l0 (fan-in); spk <- l1 (a recorded layer); loop: l1 -> l1 or
    l1 -(Delay 1)-> l0 (recurrent)."""
    rng = np.random.default_rng(0)

    def lin(m, n):
        return nir.Linear(weight=rng.uniform(0.2, 1.0, (m, n)).astype(np.float32))

    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])}), "w0": lin(n0, n_in), "l0": _lif(n0),
             "w1": lin(n1, n0), "w2": lin(n1, n_in), "l1": _lif(n1), "w3": lin(n_out, n1), "w4": lin(n_out, n0),
             "out": nir.Output(output_type={"output": np.array([n_out])}),
             "spk": nir.Output(output_type={"output": np.array([n1])})}
    edges = [("in", "w0"), ("w0", "l0"), ("l1", "w3"), ("w3", "out"), ("l1", "spk")]

    def path(src, w, dst, d, n):
        if d:
            nodes[f"d_{w}"] = nir.Delay(delay=np.full(n, d * DT, np.float32))
            edges.extend([(src, w), (w, f"d_{w}"), (f"d_{w}", dst)])
        else:
            edges.extend([(src, w), (w, dst)])

    path("l0", "w1", "l1", d_a, n1)
    path("in", "w2", "l1", d_b, n1)
    path("l0", "w4", "out", d_c, n_out)
    if loop == "self":
        nodes["wr"] = lin(n1, n1)
        edges += [("l1", "wr"), ("wr", "l1")]
    elif loop == "back":
        nodes["wr"] = lin(n0, n1)
        path("l1", "wr", "l0", 1, n0)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})


@st.composite
def edge_networks(draw, fixed: bool = True):
    """(program, inputs [T, B, n_in]) at the edges of the registers' ranges."""
    sizes = [draw(st.integers(1, 4)) for _ in range(4)]
    delays = [draw(st.integers(0, 3)) for _ in range(3)]
    loop = draw(st.sampled_from([None, None, "self", "back"]))
    graph = edge_graph(*sizes, *delays, loop)
    steps, batch = draw(st.integers(1, 7)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    shape = (steps, batch, sizes[0])
    if fixed:
        xmax = draw(st.sampled_from([1, 3, 255, 4095, 2 ** 16, 2 ** 23 - 1]))
        program = map_graph(graph, DT, fixed=True, rule=EdgeRule(seed), input_ranges={"in": xmax})
        x = np.where(rng.random(shape) < 0.5, rng.choice([-xmax, xmax, 0], size=shape),
                     rng.integers(-xmax, xmax + 1, size=shape)).astype(np.float64)
        return program, {"in": x}
    program = map_graph(graph, DT)
    gated = set(program.chip.gated)
    layers = {}
    for name, p in program.layers.items():
        du = 1.0 if name in gated else float(rng.choice([0.0, 1.0, rng.uniform()]))
        layers[name] = dataclasses.replace(p, du=du, dv=float(rng.choice([0.0, 1.0, rng.uniform()])),
                                           vth=float(rng.uniform(0, 2)), bias_mant=rng.normal(0, 0.3, p.size))
    synapses = tuple(dataclasses.replace(s, weights=rng.normal(0, 1.5, np.shape(s.weights)))
                     for s in program.synapses)
    return dataclasses.replace(program, layers=layers, synapses=synapses), {"in": rng.normal(0, 2, shape)}


def assert_same(got: LavaResult, want: LavaResult, exact: bool = True) -> None:
    assert sorted(got.outputs) == sorted(want.outputs)
    assert sorted(got.states) == sorted(want.states)
    for name, value in want.outputs.items():
        assert got.outputs[name].shape == value.shape, name
        if exact:
            np.testing.assert_array_equal(got.outputs[name], value, err_msg=name)
        else:
            np.testing.assert_allclose(got.outputs[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    for layer, states in want.states.items():
        assert sorted(got.states[layer]) == sorted(states), layer
        for var, value in states.items():
            assert got.states[layer][var].shape == value.shape, (layer, var)
            if exact or var == "spikes":
                np.testing.assert_array_equal(got.states[layer][var], value, err_msg=f"{layer}.{var}")
            else:
                np.testing.assert_allclose(got.states[layer][var], value, rtol=1e-12, atol=1e-12,
                                           err_msg=f"{layer}.{var}")


def _emulated(program, inputs, engine, device):
    return LoihiEmulator(program, engine, device).run(inputs, record_v=tuple(program.layers))


def _lava(program, inputs):
    spec = program.network(inputs, record_v=tuple(program.layers))
    return program.unpack(spec, run_with_watchdog(spec, timeout=TIMEOUT))


FEW = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))


@FEW
@given(net=edge_networks(fixed=True))
def test_fixed_emulator_is_lava_bit_for_bit_at_the_register_edges(net):
    program, inputs = net
    want = _lava(program, inputs)
    for engine, device in ENGINES:
        assert_same(_emulated(program, inputs, engine, device), want)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(net=edge_networks(fixed=False))
def test_float_emulator_is_float_lava(net):
    program, inputs = net
    want = _lava(program, inputs)
    for engine, device in ENGINES:
        assert_same(_emulated(program, inputs, engine, device), want, exact=False)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(net=st.one_of(edge_networks(fixed=True), edge_networks(fixed=False)))
def test_emulator_is_the_mappers_transcription(net):
    """Many more examples without Lava: the mapper's emulate_network (checked against Lava by
    test_lava) on the time-concatenated batch, gate included."""
    program, inputs = net
    spec = program.network(inputs, record_v=tuple(program.layers))
    want = program.unpack(spec, emulate_network(spec))
    for engine, device in ENGINES:
        assert_same(_emulated(program, inputs, engine, device), want, exact=program.fixed)


def test_edge_networks_reach_the_edges(monkeypatch):
    """The generator's registers and inputs really make u wrap, v clip and neurons spike."""
    seen = {"wrap": 0, "clip": 0, "spikes": 0}
    wrap, clip = fp.wrap_u, fp.clip_v

    def counting_wrap(u):
        out = wrap(u)
        seen["wrap"] += int((out != u).sum())
        return out

    def counting_clip(v):
        out = clip(v)
        seen["clip"] += int((out != v).sum())
        return out

    monkeypatch.setattr(fp, "wrap_u", counting_wrap)
    monkeypatch.setattr(fp, "clip_v", counting_clip)
    graph = edge_graph(3, 4, 4, 2, 0, 2, 1, None)
    for seed in range(6):
        program = map_graph(graph, DT, fixed=True, rule=EdgeRule(seed), input_ranges={"in": 2 ** 23 - 1})
        x = np.random.default_rng(seed).choice([-(2 ** 23 - 1), 2 ** 23 - 1, 0], size=(8, 2, 3)).astype(float)
        got = _emulated(program, {"in": x}, "numpy", None)
        seen["spikes"] += int(sum(s["spikes"].sum() for s in got.states.values()))
    assert min(seen.values()) > 0, seen


class GivenRule:
    """A quantisation rule that returns the given registers: ``layers[name] = (lif kwargs,
    {source: (weights, weight_exp, sign_mode)})``, ``readouts[name] = {source: (...)}``."""

    name = "given"

    def __init__(self, layers, readouts):
        self.layers, self.readouts = layers, readouts

    def input_encoding(self, name, max_abs):
        return fp.InputEncoding(name, frac_bits=0, bits=24, max_abs=float(max_abs))

    @staticmethod
    def _synapses(layer, terms, given):
        return [fp.QuantizedSynapses(f"{layer}<-{t.name}", np.asarray(given[t.name][0]), given[t.name][1],
                                     given[t.name][2]) for t in terms]

    def layer(self, layer, terms, neuron, gated=False):
        lif_kw, given = self.layers[layer]
        synapses = self._synapses(layer, terms, given)
        pos, neg = qr.activation_bounds(synapses, terms)
        return fp.QuantizedLayer(layer, 0, fp.QuantizedLIF(layer, **lif_kw), tuple(synapses), pos, neg)

    def readout(self, layer, terms):
        return fp.QuantizedReadout(layer, 0, tuple(self._synapses(layer, terms, self.readouts[layer])))


def test_register_corners_on_lava():
    """Hand-picked corners, one Lava run: u = 2^23 exactly (kept: Lava wraps only above it),
    u = -2^23 (wrapped to +2^23), u = 2^23 + 64 (wrapped), v clipped at -(2^23 - 1), vth at
    its maximum (a spike needs the clipped v), a current that wraps again and again (du = 0)."""
    exc, mixed = fp.SignMode.EXCITATORY, fp.SignMode.MIXED
    w_in = [[128, 0, 0], [0, 128, 0], [128, 0, 1], [0, 127, 0], [0, 0, 1]]  # x = +-[1024, -1024, 1]
    rule = GivenRule(
        layers={"l0": ({"du": 4095, "dv": 0, "vth": fp.VTH_MAX, "bias_mant": [-4096, 0, 0, 0, 4095],
                        "bias_exp": [7, 0, 0, 0, 7]}, {"in": (w_in, 0, exc)}),
                "l1": ({"du": 0, "dv": 4095, "vth": 1000, "bias_mant": [0, -4096, 4095], "bias_exp": [0, 7, 7]},
                       {"l0": (np.full((3, 5), 254), 7, mixed), "in": (np.zeros((3, 3), int), 0, mixed)})},
        readouts={"out": {"l1": (np.full((2, 3), -256), 7, mixed), "l0": (np.full((2, 5), 255), -8, exc)}})
    program = map_graph(edge_graph(3, 5, 3, 2, 0, 0, 0, None), DT, fixed=True, rule=rule,
                           input_ranges={"in": 1024})
    x = np.broadcast_to(np.array([1024.0, -1024.0, 1.0]), (8, 3))
    inputs = {"in": np.stack([x, -x], axis=1)}
    want = _lava(program, inputs)
    for engine, device in ENGINES:
        assert_same(_emulated(program, inputs, engine, device), want)
    v0 = want.states["l0"]["v_int"]
    assert v0[0, 0, 0] == 2 ** 23 - 2 ** 19 and want.states["l0"]["spikes"][1, 0, 0] == 1  # u = 2^23 kept
    assert np.any(v0[:, 0, 3] == -(2 ** 23 - 1))  # clipped
    assert want.states["l1"]["spikes"].any() and not want.states["l1"]["spikes"].all()


# --- the small TAAF model ------------------------------------------------------------------------

def _chip_runs_equal(got, want, exact=True):
    assert sorted(got.readouts) == sorted(want.readouts) and sorted(got.spikes) == sorted(want.spikes)
    for name, value in want.readouts.items():
        assert got.readouts[name].shape == value.shape, name
        if exact:
            np.testing.assert_array_equal(got.readouts[name], value, err_msg=name)
        else:
            np.testing.assert_allclose(got.readouts[name], value, rtol=0, atol=1e-12, err_msg=name)
    for name, value in want.spikes.items():
        assert value.mean() > 0.02, name
        np.testing.assert_array_equal(got.spikes[name], value, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "float"])
def test_taaf_emulator_is_lava(taaf_net, taaf_split, fixed):
    from export.nir_export import spiking_layers
    from hardware.backends import time_major_inputs
    from hardware.loihi.lava_backend import _chip_run, lava_program

    program = lava_program(taaf_net, fixed=fixed, dt=DT)
    assert program.chip.gap == 3 and program.chip.gated  # delayed terms, gate, fan-in
    layers = tuple(spiking_layers(taaf_net).values())
    inputs = time_major_inputs(taaf_split.audio.astype(np.float64), taaf_split.image.astype(np.float64))
    spec = program.network(inputs, record=layers, record_v=layers)
    lava = program.unpack(spec, run_with_watchdog(spec, timeout=TIMEOUT))  # what run_lava runs
    for engine, device in ENGINES:
        emulator = LoihiEmulator(program, engine, device)
        assert_same(emulator.run(inputs, record=layers, record_v=layers), lava, exact=fixed)
        got = emulate_model(taaf_net, taaf_split.audio, taaf_split.image, fixed, DT, emulator=emulator)
        _chip_runs_equal(got, _chip_run(taaf_net, lava), exact=fixed)


def test_taaf_emulate_model_matches_run_lava(taaf_net, taaf_split):
    """The backend entry point against the backend entry point (fixed point)."""
    from hardware.loihi.lava_backend import run_lava

    want = run_lava(taaf_net, taaf_split.audio, taaf_split.image, fixed=True, dt=DT, timeout=TIMEOUT)
    _chip_runs_equal(emulate_model(taaf_net, taaf_split.audio, taaf_split.image, fixed=True, dt=DT), want)
    _chip_runs_equal(emulate_model(taaf_net, taaf_split.audio, taaf_split.image, True, DT, engine="torch"), want)


def test_samples_are_independent_of_the_batch(taaf_net, taaf_split):
    from hardware.backends import time_major_inputs
    from hardware.loihi.lava_backend import lava_program

    emulator = LoihiEmulator(lava_program(taaf_net, fixed=True, dt=DT))
    inputs = time_major_inputs(taaf_split.audio.astype(np.float64), taaf_split.image.astype(np.float64))
    whole = emulator.run(inputs)
    for b in (0, 5):
        one = emulator.run({k: v[:, b:b + 1] for k, v in inputs.items()})
        for name, value in one.outputs.items():
            np.testing.assert_array_equal(value[:, 0], whole.outputs[name][:, b])
        unbatched = emulator.run({k: v[:, b] for k, v in inputs.items()})  # [T, *shape]: no B axis
        for name, value in unbatched.states.items():
            np.testing.assert_array_equal(value["spikes"], whole.states[name]["spikes"][:, b])


# --- peer: the NIR paper's Lava CPU fixed-point run of 01_lif --------------------------------------

def test_lif_norse_reproduces_lava_cpu_fixed_on_the_emulator():
    if not PEER_DIR.is_dir():
        pytest.skip(f"{PEER_DIR} is absent")
    from hardware.reference import load_graph

    graph = load_graph(PEER_DIR / "01_lif__lif_norse.nir")
    fixed = np.loadtxt(PEER_DIR / "01_lif__lif_lava_cpu_fixed.csv", delimiter=",")
    (inp,) = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    (lif,) = [n for n, node in graph.nodes.items() if isinstance(node, nir.LIF)]
    for engine, device in ENGINES:
        got = emulate_graph(graph, {inp: fixed[:, :1]}, fixed=True, dt=DT, rule=qr.NirPaperRule(),
                            input_ranges={inp: 1.0}, record_v=(lif,), engine=engine, device=device)
        v, spikes = got.states[lif]["v_int"][:, 0], got.states[lif]["spikes"][:, 0]
        # the CSV is Lava's raw time base, one step (the LIF's latency) later than ours
        np.testing.assert_array_equal(v[:-1], fixed[1:, 1])
        np.testing.assert_array_equal(spikes[:-1], fixed[1:, 2])
        assert np.flatnonzero(spikes).tolist() == [460, 510, 710, 760]


# --- limits, engines, registration ------------------------------------------------------------------

def _one_layer_program(weight: int, weight_exp: int, xmax: int, target: str = "l0"):
    graph = edge_graph(2, 1, 1, 1, 0, 0, 0, None)
    program = map_graph(graph, DT, fixed=True, input_ranges={"in": 1.0})
    synapses = tuple(dataclasses.replace(s, weights=np.full(np.shape(s.weights), weight), weight_exp=weight_exp)
                     if s.dst == target and s.src == "in" else s for s in program.synapses)
    enc = {"in": fp.InputEncoding("in", 0, 24, float(xmax))}
    return dataclasses.replace(program, synapses=synapses, encodings=enc)


def test_activations_beyond_lavas_int32_range_are_refused():
    # |a_in| = 2 * 254 * (2^23 - 1) * 2^7 would overflow Lava's int32 a_in << 6: an error, not a guess
    program = _one_layer_program(254, 7, 2 ** 23 - 1)
    emulator = LoihiEmulator(program)
    small = {"in": np.full((3, 2, 2), 3.0)}  # within range: runs, and equals the mapper
    spec = program.network(small)
    assert_same(emulator.run(small), program.unpack(spec, emulate_network(spec)))
    for engine, device in ENGINES:
        with pytest.raises(FixedPointRangeError, match=r"l0: \|a_in\| reaches .*int32"):
            LoihiEmulator(program, engine, device).run({"in": np.full((3, 2, 2), 2.0 ** 23 - 1)})
    # a graded sum that Lava shifts right must fit int32 before the shift
    program = _one_layer_program(254, -8, 2 ** 23 - 1)
    with pytest.raises(FixedPointRangeError, match="before the weight exponent"):
        LoihiEmulator(program).run({"in": np.full((2, 1, 2), 2.0 ** 23 - 1)})


def test_exact_float_accumulation_is_chosen_from_the_bounds(monkeypatch):
    program = _one_layer_program(254, -8, 2 ** 23 - 1)
    dtypes = {s.name: s.dtype for s in LoihiEmulator(program)._components[0][1]["l0"]}
    assert dtypes["l0<-in@0"] == np.float64  # 2 254 (2^23 - 1) > 2^24: float64 is exact, float32 not
    small = {s.name: s.dtype for s in LoihiEmulator(_one_layer_program(254, 0, 3))._components[0][1]["l0"]}
    assert small["l0<-in@0"] == np.float32
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "medium")  # TF32/bf16 allowed
    emulator = LoihiEmulator(_one_layer_program(254, 0, 3), "torch", "cpu")
    assert all(s.dtype == torch.float64 for s in emulator._components[0][1]["l0"])


def test_engine_selection(monkeypatch):
    assert resolve_engine() == ("numpy", None)
    monkeypatch.setenv("TAAF_LOIHI_EMU_ENGINE", "torch")
    monkeypatch.setenv("TAAF_LOIHI_EMU_DEVICE", "cpu")
    assert resolve_engine() == ("torch", "cpu")
    assert resolve_engine("numpy", None) == ("numpy", "cpu")
    with pytest.raises(ValueError, match="unknown emulator engine"):
        resolve_engine("jax")
    with pytest.raises(ValueError, match="CPU only"):
        resolve_engine("numpy", "cuda")


def test_backends_are_registered(taaf_net, taaf_split):
    from hardware.agreement import backend_runner
    from hardware.registry import BACKENDS, graph_backends

    assert {"loihi-emu", "loihi-emu-float"} <= set(BACKENDS) and {"loihi-emu", "loihi-emu-float"} <= set(graph_backends())
    ckpt = SimpleNamespace(model=taaf_net)
    fixed = backend_runner("loihi-emu", ckpt, DT)(taaf_split.audio, taaf_split.image)
    float_ = backend_runner("loihi-emu-float", ckpt, DT)(taaf_split.audio, taaf_split.image)
    assert fixed.readouts["z_audio"].shape == float_.readouts["z_audio"].shape == (8, 6, 10)
    assert sorted(fixed.spikes) == sorted(float_.spikes)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(net=edge_networks(fixed=True), constant=st.booleans())
def test_every_product_path_is_the_integer_transcription(net, constant):
    """int8 / float32 / float64 / int64 products, row blocks, threads, inputs constant in time."""
    program, inputs = net
    inputs = {"in": np.broadcast_to(inputs["in"][:1], inputs["in"].shape).copy()} if constant else inputs
    spec = program.network(inputs, record_v=tuple(program.layers))
    want = program.unpack(spec, emulate_network(spec))  # int64 numpy, step by step
    for f32, f64, int8, block, threads in [(2 ** 24, 2 ** 53, True, 2 ** 16, 1), (0, 2 ** 53, False, 1, 2),
                                           (0, 0, False, 7, 3)]:  # bounds failing: float64, then int64
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(emu, "FLOAT32_EXACT", f32), mp.setattr(emu, "FLOAT64_EXACT", f64)
            mp.setattr(emu, "ROW_BLOCK", block), mp.setitem(engines._cache, "int8", int8)
            for engine, device in ENGINES[:2]:
                emulator = LoihiEmulator(program, engine, device, threads=threads)
                assert any(s.int8 is not None for s in emulator._into["l1"]) == int8
                assert_same(emulator.run(inputs, record_v=tuple(program.layers)), want)


def test_int8_split_and_thread_policy(monkeypatch):
    for w in (2 * np.arange(-128, 128), np.arange(256), -np.arange(256), np.zeros(3, int)):
        w8, offset, k = engines.int8_split(w[:, None])
        assert w8.dtype == np.int8 and np.array_equal((w8.astype(int) + offset) << k, w[:, None])
    assert engines.int8_split(np.array([[-256], [255]])) is None  # 512 values: the float path
    monkeypatch.delenv(engines.THREADS_ENV, raising=False)
    monkeypatch.setattr(engines, "available_cores", lambda: 4)
    monkeypatch.setattr(engines, "_own_load", lambda: 0.5)  # this process's part of the load average
    for load, want in [(0.2, 4), (1.5, 3), (4.0, 1), (40.0, 1)]:
        monkeypatch.setattr(engines.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert engines.default_threads() == want
    monkeypatch.setenv(engines.THREADS_ENV, "3")
    assert engines.default_threads() == 3


def test_a_per_step_visual_stream_runs_the_same_on_every_path(taaf_net, taaf_split):
    """A visual stream [B, T, C, H, W] (what AV-MNIST-Temporal shows): the emulator is Lava
    fixed point bit for bit, and the float paths (reference, float emulator) are the exported
    float64 twin spike for spike, as for a static image; the stream really changes the spikes."""
    from export.nir_export import model_to_nir
    from hardware.backends import exported_twin, run_reference, run_torch
    from hardware.loihi.lava_backend import run_lava

    rng = np.random.default_rng(0)
    image = taaf_split.image
    stream = np.stack([image * rng.uniform(0.0, 1.0, (len(image), 1, 1, 1)) for _ in range(6)], axis=1)
    stream = stream.astype(np.float32)  # [B, T = 6, C, H, W]: each sample's contrast changes per step
    audio = taaf_split.audio
    lava = run_lava(taaf_net, audio, stream, fixed=True, dt=DT, timeout=TIMEOUT)
    _chip_runs_equal(emulate_model(taaf_net, audio, stream, fixed=True, dt=DT), lava)
    twin = run_torch(exported_twin(taaf_net, model_to_nir(taaf_net, DT)), audio, stream, torch.float64)
    for got in (run_reference(taaf_net, audio, stream, DT), emulate_model(taaf_net, audio, stream, fixed=False, dt=DT)):
        for name, value in twin.spikes.items():
            np.testing.assert_array_equal(got.spikes[name], value, err_msg=name)
        for name, value in twin.readouts.items():  # float32 synapses vs float64: readouts to ~1e-8
            np.testing.assert_allclose(got.readouts[name], value, rtol=0, atol=1e-6, err_msg=name)
    static = run_torch(taaf_net, audio, image)
    assert not np.array_equal(run_torch(taaf_net, audio, stream).spikes["visual_lif0"], static.spikes["visual_lif0"])
