"""Reference simulator against the NIR paper's peer files (../shared/reference/nir-paper/) and
against the snnTorch / Norse NIR importers where those work.

Measured (float64 reference, dt = 1e-4):
* lif_norse: output spikes at steps 460, 510, 710, 760 (= the exact solution); voltage vs the
  exact solution: max |err| 6.23e-3 (6.2 % of v_threshold, in the steps right after a reset:
  the exact solution resets mid-step and integrates the rest of that step), mean 4.7e-4;
  vs Norse's own trace 2.4e-8, vs snnTorch's trace / 25 4.0e-8 (float32 rounding).
* CNN (sinabs): every IF layer's spikes identical to Norse's import (batch 1, see below).
* Braille RNNs: output and hidden spikes identical to Norse's import and to a hand-built
  snnTorch Synaptic network.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from hardware.reference import ReferenceSimulator, load_graph

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "nir-paper"
DT = 1e-4  # all NIR paper graphs assume it

pytestmark = [pytest.mark.skipif(not PAPER.is_dir(), reason=f"peer files not found at {PAPER}"),
              pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated")]

LIF_GRAPH = "01_lif__lif_norse.nir"
CNN_GRAPH = "02_cnn__cnn_sinabs.nir"
BRAILLE = {  # graph -> its training parameters
    "03_rnn__braille_noDelay_bias_zero.nir": "03_rnn__data__parameters_noDelay_bias_ref_zero.json",
    "03_rnn__braille_noDelay_noBias_subtract.nir":
        "03_rnn__data__parameters_noDelay_noBias_ref_subtract.json",
}
CNN_IF_LAYERS = ("1", "3", "6", "10", "12")


def paper_file(name: str) -> Path:
    path = PAPER / name
    if not path.is_file():
        pytest.skip(f"peer file {path} is missing")
    return path


def csv(name: str) -> np.ndarray:
    """1000 rows of (input_spike, voltage, spike)."""
    return np.loadtxt(paper_file(name), delimiter=",")


def norse_import(path: Path) -> torch.nn.Module:
    norse = pytest.importorskip("norse.torch")
    logging.getLogger().setLevel(logging.ERROR)  # from_nir logs a warning per unusual parameter
    return norse.from_nir(nir.read(path), dt=DT)


def run_stateful(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Step a nirtorch executor ``(out, state) = module(x_t, state)`` over x [T, ...]."""
    state, outputs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = module(torch.as_tensor(x[t], dtype=torch.float32), state)
            outputs.append(out.numpy())
    return np.stack(outputs)


def spikes_in(shape, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float32)


# --- 01: single LIF ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lif_run():
    exact = csv("01_lif__lif_exact.csv")
    sim = ReferenceSimulator(load_graph(paper_file(LIF_GRAPH)), dt=DT)
    result = sim.run({"input": exact[:, :1]}, record=["1"])
    return exact, result.outputs["output"][:, 0], result.states["1"]["v"][:, 0]


def test_lif_spikes_equal_the_exact_solution(lif_run):
    exact, spikes, _ = lif_run
    assert np.flatnonzero(spikes).tolist() == [460, 510, 710, 760]
    np.testing.assert_array_equal(spikes, exact[:, 2])


def test_lif_voltage_close_to_exact_and_equal_to_simulator_traces(lif_run):
    exact, _, v = lif_run
    error = np.abs(v - exact[:, 1])
    assert error.max() < 6.5e-3  # measured 6.23e-3 (forward Euler vs exact, right after resets)
    assert error.mean() < 5e-4  # measured 4.7e-4
    # Norse's and snnTorch's own runs of this graph (snnTorch's importer divides the threshold
    # by w_scale = r*dt/tau = 0.04 instead of scaling the input, so its voltage is v/0.04)
    np.testing.assert_allclose(v, csv("01_lif__lif_norse.csv")[:, 1], atol=1e-6)
    np.testing.assert_allclose(v, csv("01_lif__lif_snntorch.csv")[:, 1] * 0.04, atol=1e-6)
    # Lava delays by one step (Dense): its float run spikes one step later
    assert np.flatnonzero(csv("01_lif__lif_lava_cpu_float.csv")[:, 2]).tolist() == [461, 511, 711, 761]


def test_lif_norse_and_snntorch_importers_agree(lif_run):
    exact, spikes, _ = lif_run
    norse_out = run_stateful(norse_import(paper_file(LIF_GRAPH)), exact[:, None, :1])
    np.testing.assert_array_equal(norse_out.reshape(-1), spikes)
    snntorch_import = pytest.importorskip("snntorch.import_nir")
    from snntorch.utils import reset

    module = snntorch_import.import_from_nir(nir.read(paper_file(LIF_GRAPH)))
    reset(module)
    with torch.no_grad():
        out = [module(torch.tensor(exact[t:t + 1, :1], dtype=torch.float32))[0].numpy()
               for t in range(exact.shape[0])]
    np.testing.assert_array_equal(np.concatenate(out).reshape(-1), spikes)


# --- 02: sinabs CNN ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn():
    graph = load_graph(paper_file(CNN_GRAPH))
    x = spikes_in((12, 2, 2, 34, 34), p=0.3, seed=0)
    result = ReferenceSimulator(graph, dt=DT).run({"input": x}, record=True)
    return x, result


def test_cnn_runs_with_sane_shapes(cnn):
    _, result = cnn
    assert result.outputs["output"].shape == (12, 2, 10)
    expected = {"1": (16, 16, 16), "3": (16, 16, 16), "4": (16, 8, 8), "6": (8, 8, 8),
                "7": (8, 4, 4), "8": (128,), "10": (256,), "12": (10,)}
    for node, shape in expected.items():
        assert result.states[node]["output"].shape == (12, 2) + shape, node
    for node in CNN_IF_LAYERS:
        assert set(np.unique(result.states[node]["spikes"])) <= {0.0, 1.0}
        assert result.states[node]["v"].shape == result.states[node]["spikes"].shape
    assert result.states["1"]["spikes"].mean() > 0.01  # activity reaches past the first layer
    assert result.states["10"]["spikes"].sum() > 0


def test_cnn_norse_import_agrees_layer_by_layer(cnn):
    """Norse's importer maps NIR Flatten(start_dim=0) to torch.nn.Flatten(0, -1), which also
    flattens the batch (NIR dims exclude it), so it only runs with batch 1: compare per sample."""
    x, result = cnn
    for b in range(x.shape[1]):
        module = norse_import(paper_file(CNN_GRAPH))
        caught: dict[str, list] = {k: [] for k in CNN_IF_LAYERS}
        for k in CNN_IF_LAYERS:
            module.get_submodule(k).register_forward_hook(
                lambda mod, inp, out, trace=caught[k]: trace.append(out[0].numpy()))
        run_stateful(module, x[:, b:b + 1])
        for k in CNN_IF_LAYERS:
            ours = result.states[k]["spikes"][:, b]
            theirs = np.stack(caught[k]).reshape(ours.shape)
            mismatches = int((theirs != ours).sum())
            assert mismatches == 0, f"sample {b} layer {k}: {mismatches} of {ours.size} differ"


def test_cnn_snntorch_import():
    snntorch_import = pytest.importorskip("snntorch.import_nir")
    module = snntorch_import.import_from_nir(nir.read(paper_file(CNN_GRAPH)))
    neuron = module.get_submodule("1")
    beta = float(getattr(neuron, "beta", torch.tensor(1.0)))
    if beta != 1.0 or getattr(neuron, "reset_mechanism", "zero") != "zero":
        pytest.skip(f"snnTorch imports NIR IF as Leaky(beta={beta:g}, reset="
                    f"{neuron.reset_mechanism!r}), a leaky neuron, not an ideal integrator (snntorch "
                    f"issue #416 / PR #452); its forward pass also fails on this graph")
    pytest.fail("snnTorch's IF import looks fixed: add a spike comparison here")


# --- 03: Braille recurrent CubaLIF --------------------------------------------------------------

@pytest.fixture(scope="module", params=sorted(BRAILLE))
def braille(request):
    graph = load_graph(paper_file(request.param))
    x = spikes_in((200, 3, 12), p=0.1, seed=1)
    sim = ReferenceSimulator(graph, dt=DT)
    return request.param, graph, x, sim.run({"input": x}, record=["lif1.lif"]), sim


def test_braille_runs_and_the_recurrent_edge_matters(braille):
    _, graph, x, result, sim = braille
    assert sim.recurrent_edges == {("lif1.w_rec", "lif1.lif")}
    assert result.outputs["output"].shape == (200, 3, 7)
    hidden = result.states["lif1.lif"]["spikes"]
    assert hidden.sum() > 0 and result.outputs["output"].sum() > 0
    open_loop = nir.NIRGraph(dict(graph.nodes), [e for e in graph.edges
                                                 if e != ("lif1.w_rec", "lif1.lif")],
                             type_check=False)
    no_recurrence = ReferenceSimulator(open_loop, dt=DT).run({"input": x}, record=["lif1.lif"])
    assert not np.array_equal(no_recurrence.states["lif1.lif"]["spikes"], hidden)


def test_braille_parameters_match_training_json(braille):
    """The json files hold training hyper-parameters; the comparable ones are the hidden size and
    the snnTorch decays alpha = 1 - dt/tau_syn, beta = 1 - dt/tau_mem (and the snnTorch export
    convention w_in = tau_syn/dt, r = tau_mem/dt). lr, reg_l1/l2, slope are not in the graph."""
    name, graph, *_ = braille
    params = json.loads(paper_file(BRAILLE[name]).read_text())
    hidden, out = graph.nodes["lif1.lif"], graph.nodes["lif2"]
    assert hidden.v_threshold.shape == (params["nb_hidden"],)
    for node, alpha, beta in [(hidden, params["alpha_r"], params["beta_r"]),
                              (out, params["alpha_out"], params["beta_out"])]:
        np.testing.assert_allclose(1 - DT / node.tau_syn, alpha, rtol=1e-5)
        np.testing.assert_allclose(1 - DT / node.tau_mem, beta, rtol=1e-5)
        np.testing.assert_allclose(node.w_in * DT / node.tau_syn, 1.0, rtol=1e-5)
        np.testing.assert_allclose(node.r * DT / node.tau_mem, 1.0, rtol=1e-5)
        np.testing.assert_array_equal(node.v_reset, 0.0)  # even the "subtract" graph


def test_braille_norse_import_agrees(braille, tmp_path):
    """Norse's importer feeds a recurrent edge 0 at t = 0, where snnTorch (and the reference)
    deliver the recurrent Affine's bias (its response to the zero spikes before the first step).
    With that bias zeroed the two semantics coincide, and Norse must agree spike for spike."""
    name, graph, x, _, _ = braille
    nodes = dict(graph.nodes)
    rec = nodes["lif1.w_rec"]
    if isinstance(rec, nir.Affine):
        nodes["lif1.w_rec"] = nir.Affine(weight=rec.weight, bias=np.zeros_like(rec.bias))
    zero_bias = nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata), type_check=False)
    nir.write(tmp_path / "g.nir", zero_bias)
    ours = ReferenceSimulator(zero_bias, dt=DT).run({"input": x}).outputs["output"]
    theirs = run_stateful(norse_import(tmp_path / "g.nir"), x)
    np.testing.assert_array_equal(theirs, ours)


def test_braille_snntorch_import(braille):
    name, *_ = braille
    snntorch_import = pytest.importorskip("snntorch.import_nir")
    try:
        snntorch_import.import_from_nir(nir.read(paper_file(name)))
    except AttributeError as exc:
        pytest.skip(f"snnTorch's import_from_nir wraps the recurrent loop in a nested NIRGraph "
                    f"that nirtorch.nir_to_torch cannot map ({exc}); its RSynaptic also ignores "
                    f"reset_delay=False (resets the local mem argument, crashes at t=0)")
    pytest.fail("snnTorch imports the Braille graph now: add a spike comparison here")


def test_braille_hand_built_snntorch_synaptic_agrees(braille):
    """snnTorch Synaptic(alpha, beta, reset zero, no delay) + an explicit recurrent Linear fed
    the previous step's spikes; at t = 0 it delivers its response to zero spikes (its bias), as
    snnTorch's RSynaptic does and as the reference's recurrent edges do."""
    snn = pytest.importorskip("snntorch")
    _, graph, x, result, _ = braille

    def linear(node) -> torch.nn.Linear:
        weight = torch.as_tensor(node.weight, dtype=torch.float32)
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.copy_(torch.as_tensor(node.bias))
        return layer

    def synaptic(node):
        return snn.Synaptic(alpha=float(1 - DT / node.tau_syn[0]), beta=float(1 - DT / node.tau_mem[0]),
                            threshold=float(node.v_threshold[0]), reset_mechanism="zero",
                            reset_delay=False)

    fc1, w_rec, fc2 = (linear(graph.nodes[k]) for k in ("fc1", "lif1.w_rec", "fc2"))
    lif1, lif2 = synaptic(graph.nodes["lif1.lif"]), synaptic(graph.nodes["lif2"])
    (syn1, mem1), (syn2, mem2) = lif1.init_synaptic(), lif2.init_synaptic()
    recurrent = w_rec(torch.zeros(x.shape[1], w_rec.in_features)).detach()
    hidden, out = [], []
    with torch.no_grad():
        for t in range(x.shape[0]):
            spk1, syn1, mem1 = lif1(fc1(torch.from_numpy(x[t])) + recurrent, syn1, mem1)
            recurrent = w_rec(spk1)
            spk2, syn2, mem2 = lif2(fc2(spk1), syn2, mem2)
            hidden.append(spk1.numpy()), out.append(spk2.numpy())
    np.testing.assert_array_equal(np.stack(hidden), result.states["lif1.lif"]["spikes"])
    np.testing.assert_array_equal(np.stack(out), result.outputs["output"])
