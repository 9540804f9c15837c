"""Fixed-point quality on IF / SumPool networks (issue 15): the quantisation rule's fine weights,
integer input encoding and calibrated currents (:mod:`hardware.loihi.quant_rules`), measured
on N-MNIST-like events (``foreign_graphs.nmnist_like``) against the float reference.

Measured (loihi-emu = lava-fixed, output entries wrong / reference output spikes):
* hand-built IF CNN (16 x 16, 8 samples x 30 steps): 8-bit weights only 322 / 689; default
  rule 32 / 689; calibrated 8 / 689.
* the NIR paper's sinabs CNN (8 samples x 30 steps): 76 / 71 (worse than silence); default
  19 / 71; calibrated 9 / 71; every IF layer >= 0.992 agreement.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foreign_graphs import hand_built_if_cnn, nmnist_like
from hardware.loihi import quant_rules as qr
from hardware.loihi.emulator import emulate_graph
from hardware.loihi.lava_backend import default_input_ranges
from hardware.loihi.program import calibrated_rule, map_graph
from hardware.reference import ReferenceSimulator, load_graph
from hardware.registry import get_backend
from taaf.errors import TaafError

DT = 1e-4
CNN = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "nir-paper" / "02_cnn__cnn_sinabs.nir"


def _wrong(ref, got) -> tuple[int, int]:
    want = ref.outputs["output"]
    return int((got.outputs["output"] != want).sum()), int(want.sum())


def _layer_agreement(ref, got, layers) -> dict[str, float]:
    return {n: float((got.states[n]["spikes"] == ref.states[n]["spikes"]).mean()) for n in layers}


@pytest.fixture(scope="module")
def small():
    graph, x = hand_built_if_cnn(0), {"input": nmnist_like(8, 30, seed=0, size=16).astype(np.float64)}
    return graph, x, ReferenceSimulator(graph, DT).run(x, record=True)


def test_spike_inputs_are_sent_without_fractional_bits():
    ranges = default_input_ranges({"spikes": np.array([[0.0, 1.0]]), "analog": np.array([[0.5, -0.25]])})
    assert isinstance(ranges["spikes"], qr.IntegerRange) and ranges["spikes"] == 1.0
    assert not isinstance(ranges["analog"], qr.IntegerRange)
    enc = qr.integer_encoding(qr.PowerOfTwoRule().input_encoding("x", 1.0))
    assert (enc.frac_bits, enc.max_int) == (0, 1)


def test_fine_weights_only_where_the_rule_asks(small):
    graph, x, _ = small
    program = map_graph(graph, DT, fixed=True, input_ranges=default_input_ranges(x))
    for name, q in program.quantized.items():  # IF layers: a residual group per term, >= 2^-1
        assert len(q.fine) == len(q.synapses) and all(f is not None for f in q.fine), name
        assert all(-1 <= f.weight_exp < s.weight_exp and np.abs(f.weights).max() <= 128
                   for f, s in zip(q.fine, q.synapses)), name
    fine = [s for s in program.synapses if s.name.endswith("+fine")]
    assert len(fine) == len(program.quantized)
    never = map_graph(graph, DT, fixed=True, rule=qr.PowerOfTwoRule(fine_weights="never"), input_ranges={"input": 1.0})
    assert not any(q.fine for q in never.quantized.values())
    with pytest.raises(ValueError):
        qr.PowerOfTwoRule(fine_weights="sometimes")


def test_if_cnn_fixed_point_keeps_the_float_spikes(small):
    graph, x, ref = small
    layers = ("if0", "if1", "if2", "if3")
    old = emulate_graph(graph, x, fixed=True, dt=DT, rule=qr.PowerOfTwoRule(fine_weights="never"),
                        input_ranges={"input": 1.0})
    default = emulate_graph(graph, x, fixed=True, dt=DT)
    rule = calibrated_rule(graph, x, DT)
    calibrated = emulate_graph(graph, x, fixed=True, dt=DT, rule=rule)
    (w_old, spikes), (w_def, _), (w_cal, _) = (_wrong(ref, r) for r in (old, default, calibrated))
    assert spikes > 100
    assert w_old > spikes / 3  # measured 322 / 689: what the issue reported
    assert w_def < spikes * 0.1 and w_cal < spikes * 0.03  # measured 32 and 8 of 689
    for run in (default, calibrated):
        assert min(_layer_agreement(ref, run, layers).values()) >= 0.98
    assert set(dict(rule.currents)) >= set(layers)  # every IF layer was measured


def test_calibrated_lava_fixed_bit_exact_with_the_emulator(small):
    graph, x, _ = small
    short = {"input": x["input"][:12, :2]}
    lava = get_backend("lava-fixed").run_graph(graph, short, DT, record=True, calibrate=True)
    emu = get_backend("loihi-emu").run_graph(graph, short, DT, record=True, calibrate=True)
    np.testing.assert_array_equal(emu.outputs["output"], lava.outputs["output"])
    for node, entry in lava.states.items():
        for var in entry:
            np.testing.assert_array_equal(emu.states[node][var], entry[var], err_msg=f"{node}.{var}")
    with pytest.raises(TaafError, match="not fixed point"):
        get_backend("loihi-emu-float").run_graph(graph, short, DT, calibrate=True)


@pytest.mark.skipif(not CNN.is_file(), reason=f"peer file {CNN} not found")
def test_sinabs_cnn_fixed_point_beats_silence_by_a_wide_margin():
    graph = load_graph(CNN)
    x = {"input": nmnist_like(8, 30, seed=1).astype(np.float64)}
    ref = ReferenceSimulator(graph, DT).run(x, record=True)
    layers = ("1", "3", "6", "10", "12")
    for rule, bound in ((None, 0.4), (calibrated_rule(graph, x, DT), 0.2)):  # measured 19 / 71, 9 / 71
        got = emulate_graph(graph, x, fixed=True, dt=DT, rule=rule)
        wrong, spikes = _wrong(ref, got)
        assert spikes >= 50 and wrong < bound * spikes, (wrong, spikes)
        agreement = _layer_agreement(ref, got, layers)
        assert min(agreement.values()) >= 0.98, agreement
