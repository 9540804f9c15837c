"""Graph mode from the command line, on NIR graphs other tools wrote (issue: one chip IR behind
every backend): ``taaf simulate G.nir`` on every backend, the emulator bit-exact with
``lava-fixed``, float backends spike-identical to the reference, peers where their importers
load the graph and one clear line where they do not."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from foreign_graphs import norse_graph, snntorch_conv, snntorch_leaky, spike_inputs

FLOAT = ("reference", "lava", "loihi-emu-float")
FIXED = ("lava-fixed", "loihi-emu")


def taaf(*args, check=True):
    """The installed ``taaf`` command, as a user runs it."""
    proc = subprocess.run([sys.executable, "-m", "taaf.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"taaf {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stderr}")
    return proc


GRAPHS = {
    "snntorch-leaky": (snntorch_leaky, (8,), ("snntorch", "norse")),
    "snntorch-conv": (snntorch_conv, (1, 8, 8), ()),
    "norse-lifbox": (lambda p: norse_graph(p, "lifbox"), (8,), ("norse", "snntorch")),
    "norse-iaf": (lambda p: norse_graph(p, "iaf"), (8,), ()),
}


@pytest.fixture(scope="module", params=sorted(GRAPHS))
def ran(request, tmp_path_factory):
    """One foreign graph, run once on every backend from the CLI: {backend: outputs npz}."""
    build, shape, _ = GRAPHS[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    graph = build(tmp / "g.nir")
    inputs = spike_inputs(tmp / "in.npz", shape)
    out = {}
    for backend in (*FLOAT, *FIXED):
        taaf("simulate", graph, "--input", inputs, "--backend", backend, "-o", tmp / f"{backend}.npz",
             "--dt", "1e-4")
        with np.load(tmp / f"{backend}.npz") as npz:
            out[backend] = {k: npz[k] for k in npz.files}
    return request.param, graph, inputs, out


def test_float_backends_spike_identical_to_the_reference(ran):
    name, _, _, out = ran
    ref = out["reference"]["output__output"]
    assert ref.sum() > 0, f"{name}: the test graph is silent"
    for backend in FLOAT:
        np.testing.assert_array_equal(out[backend]["output__output"], ref, err_msg=f"{name} on {backend}")


def test_emulator_bit_exact_with_lava_fixed(ran):
    name, _, _, out = ran
    lava, emu = out["lava-fixed"], out["loihi-emu"]
    assert sorted(lava) == sorted(emu)
    for key in lava:
        np.testing.assert_array_equal(emu[key], lava[key], err_msg=f"{name}: {key}")
    agree = (lava["output__output"] == out["reference"]["output__output"]).mean()
    assert agree > 0.9, f"{name}: fixed point agrees with float on only {agree:.3f} of the output"


def test_peers_run_what_their_importers_load(ran, tmp_path):
    name, graph, inputs, out = ran
    peers_ok = GRAPHS[name][2]
    for peer in ("snntorch", "norse"):
        proc = taaf("simulate", graph, "--input", inputs, "--backend", peer, "-o", tmp_path / f"{peer}.npz",
                    "--dt", "1e-4", check=False)
        if peer in peers_ok:
            assert proc.returncode == 0, proc.stderr
            with np.load(tmp_path / f"{peer}.npz") as npz:
                np.testing.assert_array_equal(npz["output__output"], out["reference"]["output__output"])
        elif proc.returncode != 0:  # an importer that cannot load the graph: one clear line, exit 2
            assert proc.returncode == 2 and "Traceback" not in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert not (tmp_path / f"{peer}.npz").exists()


def test_graph_mode_refuses_what_belongs_to_a_checkpoint(tmp_path):
    graph = snntorch_leaky(tmp_path / "g.nir")
    inputs = spike_inputs(tmp_path / "in.npz", (8,))
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "torch", "-o", tmp_path / "o.npz", check=False)
    assert proc.returncode == 2 and "cannot run a NIR file" in proc.stderr
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "reference", "-o", inputs, check=False)
    assert proc.returncode == 2 and "one of the inputs" in proc.stderr
    proc = taaf("eval", graph, check=False)
    assert proc.returncode == 2 and "is a NIR graph, not a checkpoint" in proc.stderr


def test_a_graph_without_dt_runs_with_a_warning(tmp_path):
    graph = snntorch_leaky(tmp_path / "g.nir")
    inputs = spike_inputs(tmp_path / "in.npz", (8,))
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "loihi-emu", "-o", tmp_path / "o.npz")
    assert "no dt metadata" in proc.stderr and (tmp_path / "o.npz").exists()


def test_exports_to_loihi2_and_netx_builds_it(ran, tmp_path):
    name, graph, _, _ = ran
    proc = subprocess.run([sys.executable, "-m", "export.cli", str(graph), "--target", "loihi2", "-o",
                           str(tmp_path / "net"), "--dt", "1e-4"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "checked: every .net builds in lava-dl netx.hdf5.Network" in proc.stdout
    assert (tmp_path / "net" / "part0.net").is_file() and (tmp_path / "net" / "netx_manifest.json").is_file()
