"""``taaf bench G.nir --input X.npz --out DIR`` on graphs other tools wrote: the report's counts
equal a hand recount from the recorded spikes, the files land together, bad input costs one line."""
from __future__ import annotations

import json
import subprocess
import sys

import nir
import numpy as np
import pytest

from foreign_graphs import norse_graph, snntorch_conv, snntorch_leaky, spike_inputs
from taaf.paths import MARKER


def taaf(*args):
    """The ``taaf`` CLI as a user runs it."""
    return subprocess.run([sys.executable, "-m", "taaf.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return snntorch_leaky(tmp / "g.nir"), spike_inputs(tmp / "in.npz", (8,), steps=15, batch=4)


def test_bench_report_counts_equal_a_hand_recount(leaky, tmp_path):
    graph, inputs = leaky
    proc = taaf("bench", graph, "--input", inputs, "--dt", "1e-4", "--out", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [MARKER, "firing.png", "report.json", "report.md",
                                                                 "synops.png"]
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["schema"] == "taaf-bench-graph/1"
    # hand recount: run the reference, count non-zero inputs x non-zero weights per edge
    from hardware.reference import ReferenceSimulator

    g = nir.read(graph)
    x = np.load(inputs)["input"]
    res = ReferenceSimulator(g, 1e-4).run({"input": x}, record=True)
    w0, w1 = g.nodes["0"].weight, g.nodes["2"].weight
    s1 = res.states["1"]["spikes"]  # [T, B, 6]
    macs = ((x != 0).astype(float) @ (w0 != 0).sum(0)).sum() / x.shape[1]
    acs = ((s1 != 0).astype(float) @ (w1 != 0).sum(0)).sum() / x.shape[1]
    counts = report["counts"]
    assert counts["effective_macs"] == pytest.approx(macs)
    assert counts["effective_acs"] == pytest.approx(acs)
    assert counts["dense_ops"] == pytest.approx((w0.size + w1.size) * x.shape[0])
    assert acs > 0
    spikes = {p["population"]: p for p in counts["populations"]}
    assert spikes["1"]["firing_rate"] == pytest.approx(s1.mean())
    assert {e["table"] for e in report["estimates"]} == {"cmos45-fp32", "cmos45-int8", "loihi", "truenorth"}
    assert "Estimated energy per inference" in (tmp_path / "b" / "report.md").read_text()


def test_bench_counts_of_lava_fixed_and_the_emulator_are_identical(leaky, tmp_path):
    graph, inputs = leaky
    counts = {}
    for backend in ("lava-fixed", "loihi-emu"):
        proc = taaf("bench", graph, "--input", inputs, "--dt", "1e-4", "--backend", backend,
                    "--cost-table", "loihi", "--out", tmp_path / backend)
        assert proc.returncode == 0, proc.stderr
        counts[backend] = json.loads((tmp_path / backend / "report.json").read_text())["counts"]
    assert counts["lava-fixed"]["effective_acs"] > 0
    assert counts["lava-fixed"] == counts["loihi-emu"]


@pytest.mark.parametrize("make,shape", [(snntorch_conv, (1, 8, 8)), (lambda p: norse_graph(p, "iaf"), (8,))])
def test_bench_runs_on_conv_and_norse_graphs(tmp_path, make, shape):
    graph = make(tmp_path / "g.nir")
    inputs = spike_inputs(tmp_path / "in.npz", shape, steps=8, batch=2)
    proc = taaf("bench", graph, "--input", inputs, "--dt", "1e-4", "--out", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    counts = report["counts"]
    assert counts["effective_macs"] > 0 and counts["effective_acs"] > 0
    assert counts["dense_ops"] >= counts["effective_macs"] + counts["effective_acs"]


def test_bench_graph_bad_input_one_line_nothing_left(leaky, tmp_path):
    graph, inputs = leaky
    out = tmp_path / "never"
    for args in (("--out", out),  # no --input
                 ("--input", tmp_path / "missing.npz", "--out", out),
                 ("--input", inputs, "--ann", inputs, "--out", out),
                 ("--input", inputs, "--backend", "torch", "--out", out)):
        proc = taaf("bench", graph, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not out.exists()
    bad = tmp_path / "bad.npz"
    np.savez(bad, other=np.zeros((3, 1, 8)))
    proc = taaf("bench", graph, "--input", bad, "--dt", "1e-4", "--out", out)
    assert proc.returncode == 2 and "input" in proc.stderr and not out.exists()


@pytest.mark.parametrize("make", ["hetero", "synaptic", "rleaky"])
def test_bench_counts_split_populations_and_constant_sources(tmp_path, make):
    """Per-neuron thresholds (a population split into chip layers) and biases the chip holds as
    a constant source: counted under the NIR node names, the constant as a bias, not as SynOps."""
    from foreign_graphs import snntorch_export, snntorch_hetero_net, snntorch_rleaky_net, snntorch_synaptic_net

    net = {"hetero": snntorch_hetero_net, "synaptic": snntorch_synaptic_net, "rleaky": snntorch_rleaky_net}[make]()
    graph = snntorch_export(net, tmp_path / "g.nir")
    shape = tuple(int(s) for s in np.atleast_1d(next(
        n for n in nir.read(graph).nodes.values() if isinstance(n, nir.Input)).input_type["input"]))
    inputs = spike_inputs(tmp_path / "in.npz", shape, steps=10, batch=2)
    proc = taaf("bench", graph, "--input", inputs, "--dt", "1e-4", "--out", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert "#" not in " ".join(report["graph"]["populations"])  # node names, not chip parts
    assert all(g["source"] != "__bias__" for g in report["counts"]["groups"])
    assert report["counts"]["effective_macs"] > 0
