"""Foreign graphs the chip mapping used to refuse (issue: foreign graphs that work): per-neuron
time constants and thresholds (one Lava LIF process per distinct (dv, du, vth), reassembled
under the NIR node's name), a Linear bias into a CubaLIF's current, behind a Delay or on a
recurrent edge (a term from the constant source), LI / CubaLI output layers (run by the host).

Each graph runs on every chip backend and the reference: float backends spike-identical to the
reference, ``loihi-emu`` bit-exact with ``lava-fixed``, fixed point close to float, and the
reference equal to the producing tool's own forward pass where NIR expresses its semantics
(snnTorch; not Norse, whose LIFCell integrates the previous step's current and whose exporter
writes ``dt * tau``)."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from foreign_graphs import (hand_built_delay_cuba_li, norse_cuba_li, snntorch_export, snntorch_hetero_net,
                            snntorch_rleaky_net, snntorch_synaptic_net)
from hardware.errors import LavaMappingError
from hardware.ir.graph import BIAS
from hardware.ir.lower import lower_graph
from hardware.registry import get_backend

DT = 1e-4
FLOAT = ("lava", "loihi-emu-float")
FIXED = ("lava-fixed", "loihi-emu")
SNNTORCH = {"snntorch-hetero": snntorch_hetero_net, "snntorch-synaptic": snntorch_synaptic_net,
            "snntorch-rleaky": snntorch_rleaky_net}
GRAPHS = {**{k: (lambda p, f=f: snntorch_export(f(), p)) for k, f in SNNTORCH.items()},
          "norse-cuba-li": norse_cuba_li, "hand-delay-cuba-li": hand_built_delay_cuba_li}
SPLIT = {"snntorch-hetero": {"1": 5, "3": 4}, "snntorch-synaptic": {"3": 2}, "hand-delay-cuba-li": {"lif": 5, "cuba": 2}}
ANALOG = {"norse-cuba-li": "output", "hand-delay-cuba-li": "output"}  # LI / CubaLI voltages, not spikes


def _inputs(seed: int = 0) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).uniform(0.0, 1.0, (16, 3, 8))}


@pytest.fixture(scope="module", params=sorted(GRAPHS))
def ran(request, tmp_path_factory):
    """One graph, written by its tool and read back, run once on every backend (record=True)."""
    graph = nir.read(GRAPHS[request.param](tmp_path_factory.mktemp(request.param) / "g.nir"))
    inputs = _inputs()
    out = {b: get_backend(b).run_graph(graph, inputs, DT, record=True) for b in ("reference", *FLOAT, *FIXED)}
    return request.param, graph, inputs, out


def _neuron_nodes(graph) -> list[str]:
    return [n for n, node in graph.nodes.items() if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF))]


def test_float_backends_spike_identical_to_the_reference(ran):
    name, graph, _, out = ran
    ref = out["reference"]
    for backend in FLOAT:
        got = out[backend]
        assert sorted(got.outputs) == sorted(ref.outputs)
        for key, want in ref.outputs.items():
            if key == ANALOG.get(name):
                np.testing.assert_allclose(got.outputs[key], want, rtol=1e-9, atol=1e-9, err_msg=f"{name}/{backend}")
            else:
                assert want.sum() > 0, f"{name}: output {key!r} is silent"
                np.testing.assert_array_equal(got.outputs[key], want, err_msg=f"{name}/{backend}: {key}")
        for node in _neuron_nodes(graph):  # split populations come back whole, in the node's order
            assert got.states[node]["spikes"].shape == ref.states[node]["spikes"].shape
            np.testing.assert_array_equal(got.states[node]["spikes"], ref.states[node]["spikes"], err_msg=node)
            np.testing.assert_allclose(got.states[node]["v"], ref.states[node]["v"], rtol=1e-9, atol=1e-9, err_msg=node)


def test_emulator_bit_exact_with_lava_fixed_and_close_to_float(ran):
    name, graph, _, out = ran
    lava, emu, ref = out["lava-fixed"], out["loihi-emu"], out["reference"]
    assert sorted(lava.outputs) == sorted(emu.outputs) and sorted(lava.states) == sorted(emu.states)
    for key in lava.outputs:
        np.testing.assert_array_equal(emu.outputs[key], lava.outputs[key], err_msg=f"{name}: {key}")
    for node, entry in lava.states.items():
        assert sorted(entry) == ["spikes", "v", "v_int"]
        for var in entry:
            np.testing.assert_array_equal(emu.states[node][var], entry[var], err_msg=f"{name}: {node}.{var}")
    for key, want in ref.outputs.items():
        got = lava.outputs[key]
        if key == ANALOG.get(name):
            agree = np.isclose(got, want, rtol=0.05, atol=0.05 * np.abs(want).max()).mean()
        else:
            agree = (got == want).mean()
        assert agree >= 0.95, f"{name}: fixed point agrees with float on only {agree:.3f} of {key!r}"


def test_the_split_is_hidden_behind_the_node_names(ran):
    name, graph, _, out = ran
    chip = lower_graph(graph, DT)
    assert {n: len(p.parts) for n, p in chip.split.items()} == SPLIT.get(name, {})
    for node, pop in chip.split.items():
        assert len({(chip.neurons[p].dv, chip.neurons[p].du, chip.neurons[p].threshold) for p in pop.parts}) == len(pop.parts)
        assert all(node in out[b].states and not any(p in out[b].states for p in pop.parts) for b in (*FLOAT, *FIXED))
        spikes = out["reference"].states[node]["spikes"]
        np.testing.assert_array_equal(pop.gather(list(pop.take(spikes).values())), spikes)


def _snntorch_forward(net, x: np.ndarray) -> np.ndarray:
    """snnTorch's own forward pass, step by step from reset state: the last layer's spikes."""
    import snntorch as snn

    for m in net.modules():
        if isinstance(m, snn.SpikingNeuron):
            m.reset_mem()
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            y = net(torch.from_numpy(x[t]).float())
            out.append((y[0] if isinstance(y, tuple) else y).numpy())
    return np.stack(out)


@pytest.mark.parametrize("name", sorted(SNNTORCH))
def test_reference_matches_snntorch_forward(name, tmp_path):
    """What the graph means is what snnTorch computes: per-neuron beta/threshold, a bias into the
    Synaptic current, and RLeaky's recurrent bias from the first step (``recurrent(spk = 0)``)."""
    net = SNNTORCH[name]()
    graph = nir.read(snntorch_export(net, tmp_path / "g.nir"))
    x = _inputs(1)["input"]
    ref = get_backend("reference").run_graph(graph, {"input": x}, DT).outputs["output"]
    assert ref.sum() > 0
    np.testing.assert_array_equal(_snntorch_forward(SNNTORCH[name](), x), ref)


def test_constants_become_terms_from_the_constant_source(tmp_path):
    chip = lower_graph(nir.read(hand_built_delay_cuba_li(tmp_path / "g.nir")), DT)
    delays = sorted({t.delay for layer in chip.neurons.values() for t in layer.terms if t.source == BIAS})
    assert delays == [0, 1, 2]  # into the CubaLIF's current (0) and behind the Delay's steps (1, 2)
    assert all(t.source != BIAS for p in chip.split["lif"].parts for t in chip.neurons[p].terms if t.delay == 0)
    rleaky = lower_graph(nir.read(snntorch_export(snntorch_rleaky_net(), tmp_path / "r.nir")), DT)
    assert not rleaky.biased  # the recurrent bias is on from step 0: a LIF's bias_mant


def test_record_by_node_name_and_netx_refuses_what_it_cannot_hold(tmp_path):
    from hardware.loihi.emulator import LoihiEmulator
    from hardware.loihi.program import map_graph
    from hardware.loihi.quant_rules import NetxRule

    graph = nir.read(hand_built_delay_cuba_li(tmp_path / "g.nir"))
    res = LoihiEmulator(map_graph(graph, DT)).run(_inputs(), record=("lif",), record_v=("cuba",))
    assert sorted(res.states) == ["cuba", "lif"] and res.states["lif"]["spikes"].shape == (16, 3, 6)
    assert sorted(res.states["cuba"]) == ["v"] and res.states["cuba"]["v"].shape == (16, 3, 4)
    with pytest.raises(LavaMappingError, match="'lif' needs the constant source.*netx cannot hold"):
        map_graph(graph, DT, fixed=True, rule=NetxRule(), input_ranges={"input": 1.0})


def _graph(*chain, edges=None):
    nodes = {"input": nir.Input(np.array([2])), **{f"n{i}": node for i, node in enumerate(chain)},
             "output": nir.Output(np.array([2]))}
    names = ["input", *(f"n{i}" for i in range(len(chain))), "output"]
    return nir.NIRGraph(nodes, edges or list(zip(names, names[1:])), metadata={"dt": DT}, type_check=False)


def test_what_remains_refused_is_one_line():
    ones = np.ones(2)
    lif = nir.LIF(tau=ones * 10 * DT, r=ones * 10, v_leak=0 * ones, v_threshold=ones)
    li = nir.LI(tau=ones * 10 * DT, r=ones * 10, v_leak=0 * ones)
    cases = {
        "'n0'.*Threshold": _graph(nir.Threshold(ones)),
        "'n0'.*LIOp.*only as the last node before an Output": _graph(li, lif),
        "resets to 0": _graph(nir.LIF(tau=ones * 10 * DT, r=ones * 10, v_leak=0 * ones, v_threshold=ones,
                                      v_reset=0.1 * ones)),
    }
    for pattern, graph in cases.items():
        with pytest.raises(LavaMappingError, match=pattern) as info:
            lower_graph(graph)
        assert "\n" not in str(info.value)
