"""NIR reference simulator: hand-computed neuron traces, layers against torch.nn.functional,
graph semantics (fan-in, recurrence, delays, batching), every GraphError path, a
write/read property test and an snnTorch peer."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.reference import (
    GraphError,
    ReferenceSimulator,
    SimulationInputError,
    load_graph,
)
from taaf.dynamics import beta_to_nir
from taaf.errors import TaafError

DT = 1e-3


def arr(*values, dtype=np.float64) -> np.ndarray:
    return np.array(values, dtype=dtype)


def full(n: int, value: float) -> np.ndarray:
    return np.full(n, value, dtype=np.float64)


def chain(*nodes: nir.NIRNode, in_shape=None, out_shape=None,
          type_check: bool = True) -> nir.NIRGraph:
    """Input -> nodes... -> Output, named n0, n1, ... (shapes default to the nodes' types)."""
    names = [f"n{k}" for k in range(len(nodes))]
    first = in_shape if in_shape is not None else nodes[0].input_type["input"]
    graph_nodes = {"input": nir.Input(np.array(first)), **dict(zip(names, nodes))}
    last = out_shape if out_shape is not None else nodes[-1].output_type["output"]
    graph_nodes["output"] = nir.Output(np.array(last))
    path = ["input", *names, "output"]
    return nir.NIRGraph(graph_nodes, list(pairwise(path)), type_check=type_check)


def run_chain(node: nir.NIRNode, x: np.ndarray, dt: float = DT, **kwargs):
    """Run Input -> node -> Output on x [T, *shape] (unbatched), recording the node."""
    result = ReferenceSimulator(chain(node), dt=dt, **kwargs).run({"input": x}, record=["n0"])
    return result.outputs["output"], result.states["n0"]


# --- hand-computed neuron traces ---------------------------------------------------------------

def test_lif_trace_with_leak_voltage_resistance_and_reset():
    # dt/tau = 0.5 -> decay 0.5; gain r*dt/tau = 1; bias v_leak*dt/tau = 0.1; input 0.6
    # t0: 0.7 | t1: 0.35+0.6+0.1 = 1.05 > 1 -> spike, v = v_reset = -0.1
    # t2: -0.05+0.7 = 0.65 | t3: 0.325+0.7 = 1.025 -> spike, -0.1
    lif = nir.LIF(tau=full(1, 2e-3), r=full(1, 2.0), v_leak=full(1, 0.2),
                  v_threshold=full(1, 1.0), v_reset=full(1, -0.1))
    out, states = run_chain(lif, np.full((4, 1), 0.6))
    np.testing.assert_array_equal(out[:, 0], [0, 1, 0, 1])
    np.testing.assert_array_equal(states["spikes"], out)
    np.testing.assert_allclose(states["v"][:, 0], [0.7, -0.1, 0.65, -0.1], atol=1e-12)


def test_li_trace():
    # dt/tau = 0.25: v <- 0.75 v + 0.25 * 1
    li = nir.LI(tau=full(1, 4e-3), r=full(1, 1.0), v_leak=full(1, 0.0))
    out, states = run_chain(li, np.ones((3, 1)))
    np.testing.assert_allclose(out[:, 0], [0.25, 0.4375, 0.578125], atol=1e-12)
    np.testing.assert_array_equal(states["v"], out)


def test_if_trace_per_step_and_euler_conventions():
    if_node = nir.IF(r=full(1, 0.5), v_threshold=full(1, 1.0), v_reset=full(1, 0.0))
    # per step: v += 0.5 * 0.8 -> 0.4, 0.8, 1.2 > 1 -> spike/reset, 0.4
    out, states = run_chain(if_node, np.full((4, 1), 0.8))
    np.testing.assert_array_equal(out[:, 0], [0, 0, 1, 0])
    np.testing.assert_allclose(states["v"][:, 0], [0.4, 0.8, 0.0, 0.4], atol=1e-12)
    # literal Euler, dt = 0.5: v += 0.25 * 0.8 = 0.2 per step; 1.0 does NOT fire (strict), 1.2 does
    out, states = run_chain(if_node, np.full((6, 1), 0.8), dt=0.5, integrator="euler")
    np.testing.assert_array_equal(out[:, 0], [0, 0, 0, 0, 0, 1])
    np.testing.assert_allclose(states["v"][:5, 0], [0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-12)


def test_integrator_trace():
    out, _ = run_chain(nir.I(r=full(1, 2.0)), np.full((3, 1), 0.5))
    np.testing.assert_allclose(out[:, 0], [1.0, 2.0, 3.0])
    out, _ = run_chain(nir.I(r=full(1, 2.0)), np.full((3, 1), 0.5), dt=0.1, integrator="euler")
    np.testing.assert_allclose(out[:, 0], [0.1, 0.2, 0.3], atol=1e-12)


def cuba_params(n: int = 1) -> dict:
    # syn: decay 1 - dt/tau_syn = 0.5, gain w_in*dt/tau_syn = 1; mem: decay 0.75, gain r*0.25 = 1
    return {"tau_syn": full(n, 2e-3), "tau_mem": full(n, 4e-3), "r": full(n, 4.0),
            "v_leak": full(n, 0.0), "w_in": full(n, 2.0)}


def test_cubalif_uses_the_new_synaptic_current():
    # x = [1, 0, 0, 0]: i = 1, .5, .25, .125 (updated first)
    # v: 0.75*0 + i = 1 (not > 1) | .75 + .5 = 1.25 -> spike, 0 | .25 | .1875 + .125 = .3125
    node = nir.CubaLIF(**cuba_params(), v_threshold=full(1, 1.0), v_reset=full(1, 0.0))
    out, states = run_chain(node, arr(1, 0, 0, 0)[:, None])
    np.testing.assert_array_equal(out[:, 0], [0, 1, 0, 0])
    np.testing.assert_allclose(states["i"][:, 0], [1, 0.5, 0.25, 0.125], atol=1e-12)
    np.testing.assert_allclose(states["v"][:, 0], [1, 0, 0.25, 0.3125], atol=1e-12)


def test_cubali_trace():
    out, states = run_chain(nir.CubaLI(**cuba_params()), arr(1, 0, 0)[:, None])
    np.testing.assert_allclose(out[:, 0], [1, 1.25, 1.1875], atol=1e-12)
    np.testing.assert_allclose(states["i"][:, 0], [1, 0.5, 0.25], atol=1e-12)


def test_threshold_is_strict_heaviside():
    out, states = run_chain(nir.Threshold(threshold=full(1, 0.5)), arr(0.2, 0.5, 0.7, -1)[:, None])
    np.testing.assert_array_equal(out[:, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(states["spikes"], out)


def test_delay_per_element_in_steps():
    delay = nir.Delay(delay=arr(0.0, 2e-3, 3e-3))
    x = np.repeat(np.arange(1.0, 7.0)[:, None], 3, axis=1)  # x[t] = t + 1 for every element
    out, _ = run_chain(delay, x)
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(out[:, 1], [0, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(out[:, 2], [0, 0, 0, 1, 2, 3])


def test_delay_tolerance_allows_float32_rounding_only():
    ok = nir.Delay(delay=np.array([100 * DT, 3 * DT], dtype=np.float32))  # 100 steps: 1.5e-6 off
    out, _ = run_chain(ok, np.repeat(np.arange(1.0, 102.0)[:, None], 2, axis=1))
    assert out[100, 0] == 1.0 and out[99, 0] == 0.0 and out[3, 1] == 1.0
    with pytest.raises(GraphError, match="whole number"):
        ReferenceSimulator(chain(nir.Delay(delay=np.array([100.01 * DT], np.float32))), dt=DT)
    with pytest.raises(GraphError, match="whole number"):
        ReferenceSimulator(chain(nir.Delay(delay=np.array([100 * DT + 1e-8]))), dt=DT)


def test_scale_and_affine_and_linear():
    x = np.random.default_rng(0).normal(size=(5, 3))
    out, _ = run_chain(nir.Scale(scale=arr(1, -2, 3)), x)
    np.testing.assert_allclose(out, x * [1, -2, 3])
    w, b = np.arange(6.0).reshape(2, 3), arr(0.5, -1)
    out, _ = run_chain(nir.Affine(weight=w, bias=b), x)
    np.testing.assert_allclose(out, x @ w.T + b)
    out, _ = run_chain(nir.Linear(weight=w), x)
    np.testing.assert_allclose(out, x @ w.T)


# --- layers against torch.nn.functional ------------------------------------------------------

CONV2D_CASES = [  # stride, padding, dilation, groups
    ((1, 1), (0, 0), (1, 1), 1),
    ((2, 1), (1, 2), (1, 2), 2),
    ((1, 1), "same", (2, 1), 2),
    ((2, 2), "valid", (1, 1), 1),
    ((1, 2), 1, (1, 1), 4),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("stride,padding,dilation,groups", CONV2D_CASES)
def test_conv2d_matches_torch(stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    c_in, c_out = 4, 8
    weight = rng.normal(size=(c_out, c_in // groups, 3, 2))
    bias = rng.normal(size=c_out)
    conv = nir.Conv2d(input_shape=(9, 8), weight=weight, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=bias)
    x = rng.normal(size=(3, 2, c_in, 9, 8))  # [T, B, C, H, W]
    pad = padding if isinstance(padding, (str, int)) else tuple(padding)
    expected = F.conv2d(torch.from_numpy(x.reshape(6, c_in, 9, 8)), torch.from_numpy(weight),
                        torch.from_numpy(bias), stride=stride, padding=pad, dilation=dilation,
                        groups=groups).numpy()
    # nir 1.0.8's own type inference ignores groups and non-square kernels: no type_check
    graph = chain(conv, in_shape=(c_in, 9, 8), out_shape=expected.shape[1:], type_check=False)
    result = ReferenceSimulator(graph, dt=DT).run({"input": x})
    np.testing.assert_allclose(result.outputs["output"].reshape(expected.shape), expected,
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 2, 2, 2),
                                                            (1, "same", 3, 1)])
def test_conv1d_matches_torch(stride, padding, dilation, groups):
    rng = np.random.default_rng(2)
    weight, bias = rng.normal(size=(6, 4 // groups, 3)), rng.normal(size=6)
    conv = nir.Conv1d(input_shape=11, weight=weight, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=bias)
    x = rng.normal(size=(2, 3, 4, 11))
    expected = F.conv1d(torch.from_numpy(x.reshape(6, 4, 11)), torch.from_numpy(weight),
                        torch.from_numpy(bias), stride=stride, padding=padding,
                        dilation=dilation, groups=groups).numpy()
    graph = chain(conv, in_shape=(4, 11), out_shape=expected.shape[1:], type_check=False)
    result = ReferenceSimulator(graph, dt=DT).run({"input": x})
    np.testing.assert_allclose(result.outputs["output"].reshape(expected.shape), expected,
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 1))])
def test_pooling_matches_torch(kernel, stride, padding):
    def pair(v):
        return np.array(v if isinstance(v, tuple) else (v, v))

    x = np.random.default_rng(3).normal(size=(2, 3, 2, 7, 6))
    xt = torch.from_numpy(x.reshape(6, 2, 7, 6))
    avg = F.avg_pool2d(xt, kernel, stride, padding, count_include_pad=True).numpy()
    area = float(np.prod(pair(kernel)))
    for node, expected in [(nir.AvgPool2d(pair(kernel), pair(stride), pair(padding)), avg),
                           (nir.SumPool2d(pair(kernel), pair(stride), pair(padding)), avg * area)]:
        graph = chain(node, in_shape=(2, 7, 6), out_shape=expected.shape[1:], type_check=False)
        result = ReferenceSimulator(graph, dt=DT).run({"input": x})
        np.testing.assert_allclose(result.outputs["output"].reshape(expected.shape), expected,
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("start,end", [(0, -1), (1, 2), (0, 1), (-2, -1), (1, 1)])
def test_flatten_excludes_batch_like_torch_flatten(start, end):
    x = np.random.default_rng(4).normal(size=(2, 3, 2, 4, 5))
    node = nir.Flatten(input_type={"input": np.array([2, 4, 5])}, start_dim=start, end_dim=end)
    result = ReferenceSimulator(chain(node), dt=DT).run({"input": x})
    ndim = 3
    s, e = start % ndim, end % ndim
    expected = torch.flatten(torch.from_numpy(x.reshape(6, 2, 4, 5)), s + 1, e + 1).numpy()
    np.testing.assert_array_equal(result.outputs["output"].reshape(expected.shape), expected)


# --- graph semantics ---------------------------------------------------------------------------

def test_fan_in_sums_two_inputs():
    li = nir.LI(tau=full(2, 4e-3), r=full(2, 1.0), v_leak=full(2, 0.0))
    graph = nir.NIRGraph(
        {"a": nir.Input(np.array([2])), "b": nir.Input(np.array([2])), "li": li,
         "out": nir.Output(np.array([2])), "raw": nir.Output(np.array([2]))},
        [("a", "li"), ("b", "li"), ("li", "out"), ("a", "raw"), ("b", "raw")])
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(6, 3, 2)), rng.normal(size=(6, 3, 2))
    fused = ReferenceSimulator(graph, dt=DT).run({"a": a, "b": b}).outputs
    single = ReferenceSimulator(chain(li), dt=DT).run({"input": a + b}).outputs["output"]
    np.testing.assert_allclose(fused["out"], single, atol=1e-12)
    np.testing.assert_allclose(fused["raw"], a + b, atol=1e-15)


def recurrent_graph() -> nir.NIRGraph:
    """y[t] = x[t] + 0.5 * y[t-1], the loop closed by 'rec'."""
    return nir.NIRGraph(
        {"input": nir.Input(np.array([1])), "sum": nir.Scale(scale=full(1, 1.0)),
         "rec": nir.Scale(scale=full(1, 0.5)), "output": nir.Output(np.array([1]))},
        [("input", "sum"), ("sum", "rec"), ("rec", "sum"), ("sum", "output")])


def test_recurrent_edge_carries_previous_step():
    sim = ReferenceSimulator(recurrent_graph(), dt=DT)
    assert sim.recurrent_edges == {("rec", "sum")}
    out = sim.run({"input": arr(1, 2, 3, 0)[:, None]}).outputs["output"][:, 0]
    # t0: 1 (the loop delivers 0) | t1: 2 + 0.5*1 = 2.5 | t2: 3 + 1.25 = 4.25 | t3: 2.125
    np.testing.assert_allclose(out, [1.0, 2.5, 4.25, 2.125])


def test_recurrent_lif_loop_and_self_loop():
    # LIF with a self-loop of weight -10: after a spike the next step is inhibited
    lif = nir.LIF(tau=full(1, 2e-3), r=full(1, 2.0), v_leak=full(1, 0.0),
                  v_threshold=full(1, 0.5), v_reset=full(1, 0.0))
    graph = nir.NIRGraph({"input": nir.Input(np.array([1])), "lif": lif,
                          "inh": nir.Linear(weight=np.array([[-10.0]])),
                          "output": nir.Output(np.array([1]))},
                         [("input", "lif"), ("lif", "inh"), ("inh", "lif"), ("lif", "output")])
    sim = ReferenceSimulator(graph, dt=DT)
    assert sim.recurrent_edges == {("inh", "lif")}
    out = sim.run({"input": np.ones((4, 1))}).outputs["output"][:, 0]
    # t0: v = 1 > .5 spike | t1: v = 1 - 10 = -9 | t2: -4.5 + 1 = -3.5 | t3: -1.75 + 1 = -.75
    np.testing.assert_array_equal(out, [1, 0, 0, 0])
    self_loop = nir.NIRGraph({"input": nir.Input(np.array([1])), "s": nir.Scale(scale=full(1, 0.5)),
                              "output": nir.Output(np.array([1]))},
                             [("input", "s"), ("s", "s"), ("s", "output")], type_check=False)
    out = ReferenceSimulator(self_loop, dt=DT).run({"input": arr(2, 0, 0)[:, None]}).outputs
    np.testing.assert_allclose(out["output"][:, 0], [1.0, 0.5, 0.25])  # s[t] = 0.5(x[t] + s[t-1])


def spiking_stack() -> nir.NIRGraph:
    rng = np.random.default_rng(6)
    return chain(nir.Affine(weight=rng.normal(size=(5, 3)), bias=rng.normal(size=5) * 0.1),
                 nir.CubaLIF(**cuba_params(5), v_threshold=full(5, 0.8), v_reset=full(5, 0.0)),
                 nir.Affine(weight=rng.normal(size=(4, 5)), bias=np.zeros(4)),
                 nir.LIF(tau=full(4, 3e-3), r=full(4, 3.0), v_leak=full(4, 0.05),
                         v_threshold=full(4, 0.6), v_reset=full(4, 0.0)))


def test_batch_elements_are_independent_and_unbatched_layout_round_trips():
    sim = ReferenceSimulator(spiking_stack(), dt=DT)
    x = np.random.default_rng(7).normal(size=(30, 4, 3))
    batched = sim.run({"input": x}, record=True)
    assert batched.outputs["output"].shape == (30, 4, 4)
    assert batched.outputs["output"].sum() > 0
    for b in range(4):
        alone = sim.run({"input": x[:, b]}, record=True)
        assert alone.outputs["output"].shape == (30, 4)
        np.testing.assert_array_equal(alone.outputs["output"], batched.outputs["output"][:, b])
        for node, traces in alone.states.items():
            for var, trace in traces.items():
                np.testing.assert_allclose(trace, batched.states[node][var][:, b], rtol=1e-12,
                                           atol=1e-12, err_msg=f"{node}.{var}")


def test_float32_option_and_record_selection():
    sim = ReferenceSimulator(spiking_stack(), dt=DT, dtype=np.float32)
    result = sim.run({"input": np.ones((3, 2, 3))}, record="n1")
    assert result.outputs["output"].dtype == np.float32
    assert set(result.states) == {"n1"} and set(result.states["n1"]) == {"i", "v", "spikes", "output"}
    assert result.states["n1"]["v"].dtype == np.float32


def test_nested_graph_is_inlined():
    lif = {"tau": full(2, 2e-3), "r": full(2, 2.0), "v_leak": full(2, 0.0),
           "v_threshold": full(2, 0.5)}
    inner = nir.NIRGraph({"in": nir.Input(np.array([2])), "lif": nir.LIF(**lif),
                          "out": nir.Output(np.array([2]))}, [("in", "lif"), ("lif", "out")])
    nested = nir.NIRGraph({"input": nir.Input(np.array([2])), "sub": inner,
                           "output": nir.Output(np.array([2]))},
                          [("input", "sub"), ("sub", "output")])
    x = np.random.default_rng(8).normal(size=(10, 2, 2))
    sim = ReferenceSimulator(nested, dt=DT)
    assert "sub.lif" in sim.plan.ops
    np.testing.assert_array_equal(sim.run({"input": x}).outputs["output"],
                                  ReferenceSimulator(chain(nir.LIF(**lif)), dt=DT)
                                  .run({"input": x}).outputs["output"])


def test_dt_from_metadata():
    graph = chain(nir.LI(tau=full(1, 4e-3), r=full(1, 1.0), v_leak=full(1, 0.0)))
    graph.metadata = {"dt": DT}
    assert ReferenceSimulator(graph).dt == DT
    assert ReferenceSimulator(graph, dt=DT).dt == DT


# --- every error path --------------------------------------------------------------------------

@dataclass(eq=False)
class Mystery(nir.NIRNode):
    """A node type the simulator does not know."""

    size: int

    def __post_init__(self):
        self.input_type = {"input": np.array([self.size])}
        self.output_type = {"output": np.array([self.size])}


def lif_node(n: int) -> nir.LIF:
    return nir.LIF(tau=full(n, 2e-3), r=full(n, 1.0), v_leak=full(n, 0.0), v_threshold=full(n, 1.0))


def graph_errors() -> dict[str, tuple[nir.NIRGraph, str]]:
    """name -> (bad graph, text the message must contain)."""
    io = {"input": nir.Input(np.array([2])), "output": nir.Output(np.array([2]))}
    return {
        "unsupported": (chain(Mystery(2), type_check=False), "'n0' (Mystery): unsupported"),
        "unknown edge": (nir.NIRGraph({**io, "lif": lif_node(2)},
                                      [("input", "lif"), ("lif", "ghost"), ("lif", "output")],
                                      type_check=False), "unknown node 'ghost'"),
        "no input": (nir.NIRGraph({"lif": lif_node(2), "output": io["output"]},
                                  [("lif", "output")], type_check=False), "no Input"),
        "no output": (nir.NIRGraph({"input": io["input"], "lif": lif_node(2)},
                                   [("input", "lif")], type_check=False), "no Output"),
        "shape mismatch": (chain(nir.Affine(weight=np.ones((3, 2)), bias=np.zeros(3)),
                                 lif_node(4), type_check=False), "'n1'"),
        "flatten input type": (chain(nir.Flatten(input_type={"input": np.array([3, 2])}),
                                     in_shape=(2, 3), type_check=False), "'n0' (Flatten)"),
        "fan-in shapes": (nir.NIRGraph({"a": nir.Input(np.array([2])),
                                        "b": nir.Input(np.array([3])),
                                        "output": io["output"]},
                                       [("a", "output"), ("b", "output")], type_check=False),
                          "'output' sums inputs of different shapes"),
        "delay": (chain(nir.Delay(delay=arr(1e-3, 1.5e-3))), "'n0' (Delay): delay is not a whole"),
        "negative delay": (chain(nir.Delay(delay=arr(-1e-3))), "'n0' (Delay)"),
        "unreachable": (nir.NIRGraph({**io, "lif": lif_node(2), "orphan": lif_node(2)},
                                     [("input", "lif"), ("lif", "output"), ("orphan", "lif")],
                                     type_check=False), "['orphan'] cannot be reached"),
        "edge into input": (nir.NIRGraph({**io}, [("input", "output"), ("output", "input")],
                                         type_check=False), "Input node 'input'"),
        "duplicate edge": (nir.NIRGraph({**io}, [("input", "output"), ("input", "output")],
                                        type_check=False), "duplicate edge"),
        "nested": (nir.NIRGraph({"input": io["input"], "sub": nir.NIRGraph(
            {"i": nir.Input(np.array([2])), "o1": nir.Output(np.array([2])),
             "o2": nir.Output(np.array([2]))}, [("i", "o1"), ("i", "o2")], type_check=False),
            "output": io["output"]}, [("input", "sub"), ("sub", "output")], type_check=False),
            "nested graph 'sub'"),
        "recurrent shape": (nir.NIRGraph({**io, "lif": lif_node(2),
                                          "rec": nir.Linear(weight=np.ones((3, 2)))},
                                         [("input", "lif"), ("lif", "rec"), ("rec", "lif"),
                                          ("lif", "output")], type_check=False),
                            "recurrent edge 'rec' -> 'lif'"),
        "conv same stride": (chain(nir.Conv1d(input_shape=None, weight=np.ones((1, 1, 3)),
                                              stride=2, padding="same", dilation=1, groups=1,
                                              bias=np.zeros(1)), in_shape=(1, 8),
                                   type_check=False), "'n0' (Conv1d)"),
    }


@pytest.mark.parametrize("case", list(graph_errors()))
def test_graph_errors_name_the_problem(case):
    graph, text = graph_errors()[case]
    with pytest.raises(GraphError) as info:
        ReferenceSimulator(graph, dt=DT)
    assert text in str(info.value), str(info.value)
    assert isinstance(info.value, TaafError)


def test_dt_errors():
    graph = chain(lif_node(1))
    with pytest.raises(GraphError, match="dt is required"):
        ReferenceSimulator(graph)
    graph.metadata = {"dt": 1e-3}
    with pytest.raises(GraphError, match="contradicts"):
        ReferenceSimulator(graph, dt=1e-4)


def test_input_errors():
    sim = ReferenceSimulator(chain(lif_node(2)), dt=DT)
    with pytest.raises(SimulationInputError, match="exactly the Input nodes"):
        sim.run({"x": np.zeros((3, 2))})
    with pytest.raises(SimulationInputError, match="input 'input'"):
        sim.run({"input": np.zeros((3, 1, 5))})
    with pytest.raises(SimulationInputError, match="unknown node"):
        sim.run({"input": np.zeros((3, 2))}, record=["nope"])


def test_load_graph_errors_name_file_and_node(tmp_path: Path):
    with pytest.raises(GraphError, match="not found"):
        load_graph(tmp_path / "missing.nir")
    garbage = tmp_path / "garbage.nir"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(GraphError, match="garbage.nir"):
        load_graph(garbage)
    broken = tmp_path / "broken.nir"
    nir.write(broken, chain(lif_node(2)))
    with h5py.File(broken, "r+") as f:
        del f["node/nodes/n0/tau"]
    with pytest.raises(GraphError, match=r"broken\.nir \(node 'n0', type 'LIF'\)"):
        load_graph(broken)
    good = tmp_path / "good.nir"
    nir.write(good, chain(lif_node(2)))
    assert isinstance(load_graph(good).nodes["n0"], nir.LIF)


# --- property: write -> read -> identical simulation ----------------------------------------

F32 = np.float32


@st.composite
def random_graphs(draw) -> nir.NIRGraph:
    """Random small chains of Affine/LIF/CubaLIF/LI/Delay/Scale (float32, 1-d parameters),
    optionally closed into a loop by a recurrent Affine from a later layer to an earlier one."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kinds = draw(st.lists(st.sampled_from(["affine", "lif", "cubalif", "li", "delay", "scale"]),
                          min_size=1, max_size=5))
    size = draw(st.integers(1, 4))

    def u(lo, hi, n):
        return rng.uniform(lo, hi, n).astype(F32)

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([size]))}
    edges, layers, prev = [], [], "input"
    for k, kind in enumerate(kinds):
        name, n_in = f"{kind}{k}", size
        if kind == "affine":
            size = draw(st.integers(1, 4))
            node = nir.Affine(weight=rng.normal(size=(size, n_in)).astype(F32), bias=u(-.2, .2, size))
        elif kind == "lif":
            node = nir.LIF(tau=u(1.5e-3, 2e-2, size), r=u(.5, 3, size), v_leak=u(-.1, .1, size),
                           v_threshold=u(.2, 1, size), v_reset=u(-.1, .1, size))
        elif kind == "cubalif":
            node = nir.CubaLIF(tau_syn=u(1.5e-3, 1e-2, size), tau_mem=u(1.5e-3, 2e-2, size),
                               r=u(.5, 3, size), v_leak=u(-.1, .1, size),
                               v_threshold=u(.2, 1, size), v_reset=u(-.1, .1, size),
                               w_in=u(.5, 2, size))
        elif kind == "li":
            node = nir.LI(tau=u(1.5e-3, 2e-2, size), r=u(.5, 3, size), v_leak=u(-.1, .1, size))
        elif kind == "delay":
            node = nir.Delay(delay=(rng.integers(0, 4, size) * DT).astype(F32))
        else:
            node = nir.Scale(scale=u(-2, 2, size))
        nodes[name] = node
        edges.append((prev, name))
        layers.append((name, n_in, size))
        prev = name
    nodes["output"] = nir.Output(np.array([size]))
    edges.append((prev, "output"))
    if draw(st.booleans()):
        i = draw(st.integers(0, len(layers) - 1))
        j = draw(st.integers(i, len(layers) - 1))
        dst, dst_in, _ = layers[i]
        src, _, src_out = layers[j]
        nodes["rec"] = nir.Affine(weight=rng.normal(size=(dst_in, src_out)).astype(F32),
                                  bias=np.zeros(dst_in, F32))
        edges += [(src, "rec"), ("rec", dst)]
    return nir.NIRGraph(nodes, edges)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), seed=st.integers(0, 2**16))
def test_write_read_round_trip_simulates_identically(graph, seed):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.nir"
        nir.write(path, graph)
        loaded = nir.read(path)
    assert {k: type(v) for k, v in loaded.nodes.items()} == {k: type(v) for k, v in graph.nodes.items()}
    size = int(graph.nodes["input"].input_type["input"][0])
    x = (np.random.default_rng(seed).random((12, 2, size)) < 0.5) * 1.5
    a, b = ReferenceSimulator(graph, dt=DT), ReferenceSimulator(loaded, dt=DT)
    assert a.recurrent_edges == b.recurrent_edges
    assert ("rec" in graph.nodes) == bool(a.recurrent_edges)
    ra, rb = a.run({"input": x}, record=True), b.run({"input": x}, record=True)
    np.testing.assert_array_equal(ra.outputs["output"], rb.outputs["output"])
    for node, traces in ra.states.items():
        for var, trace in traces.items():
            np.testing.assert_array_equal(trace, rb.states[node][var], err_msg=f"{node}.{var}")


# --- peer: snnTorch Leaky --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_snntorch_leaky_stack_matches_reference(dtype):
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(6, 8), torch.nn.Linear(8, 4)
    lif1 = snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism="zero", reset_delay=False)
    lif2 = snn.Leaky(beta=0.9, threshold=0.7, reset_mechanism="zero", reset_delay=False)
    x = torch.randn(60, 3, 6) * 1.5
    spikes1, spikes2, mems2 = [], [], []
    with torch.no_grad():
        mem1, mem2 = lif1.init_leaky(), lif2.init_leaky()
        for t in range(x.shape[0]):
            spk1, mem1 = lif1(fc1(x[t]), mem1)
            spk2, mem2 = lif2(fc2(spk1), mem2)
            spikes1.append(spk1.numpy()), spikes2.append(spk2.numpy()), mems2.append(mem2.numpy())

    def lif(module, n):  # snnTorch Leaky == NIR LIF with tau = dt/(1-beta), r = tau/dt
        tau, r = beta_to_nir(np.full(n, module.beta.item()), dt=DT)
        return nir.LIF(tau=tau, r=r, v_leak=np.zeros(n), v_reset=np.zeros(n),
                       v_threshold=np.full(n, module.threshold.item()))

    def affine(module):
        return nir.Affine(weight=module.weight.detach().numpy(), bias=module.bias.detach().numpy())

    graph = chain(affine(fc1), lif(lif1, 8), affine(fc2), lif(lif2, 4))
    result = ReferenceSimulator(graph, dt=DT, dtype=dtype).run({"input": x.numpy()},
                                                               record=["n1", "n3"])
    assert np.stack(spikes2).sum() > 20
    np.testing.assert_array_equal(result.states["n1"]["spikes"], np.stack(spikes1))
    np.testing.assert_array_equal(result.outputs["output"], np.stack(spikes2))
    np.testing.assert_allclose(result.states["n3"]["v"], np.stack(mems2), atol=1e-5)
