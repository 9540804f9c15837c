"""Lenient, self-checking loading of foreign NIR files: what fails nir's type check still runs
(with a warning; ``--strict`` refuses), shared scalar parameters are broadcast, and a dt that is
not smaller than a time constant is said out loud."""
from __future__ import annotations

import subprocess
import sys

import nir
import numpy as np

F = np.float32


def taaf(*args):
    """The ``taaf`` CLI as a user runs it."""
    return subprocess.run([sys.executable, "-m", "taaf.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def _graph(tau, n: int = 4, output_shape=(4,)) -> nir.NIRGraph:
    """Input(3) -> Linear -> LIF(n) -> Output; ``tau`` may be shared (shape (1,))."""
    w = np.random.default_rng(0).uniform(0, 2, (n, 3)).astype(F)
    lif = nir.LIF(tau=np.asarray(tau, F), r=np.full_like(np.asarray(tau, F), 10.0), v_leak=np.zeros_like(np.asarray(tau, F)),
                  v_threshold=np.ones_like(np.asarray(tau, F)), v_reset=np.zeros_like(np.asarray(tau, F)))
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}), "w": nir.Linear(weight=w), "lif": lif,
             "out": nir.Output(output_type={"output": np.array(output_shape)})}
    return nir.NIRGraph(nodes=nodes, edges=[("in", "w"), ("w", "lif"), ("lif", "out")], metadata={"dt": 1e-4},
                        type_check=False)


def _inputs(tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, **{"in": np.random.default_rng(1).uniform(0, 1, (20, 2, 3))})
    return path


def test_a_file_failing_the_type_check_runs_with_a_warning_and_strict_refuses(tmp_path):
    graph = tmp_path / "g.nir"
    nir.write(graph, _graph(np.full(4, 1e-3), output_shape=(1, 1, 4)))  # the Rockpool file's declared Output
    inputs = _inputs(tmp_path)
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "reference", "-o", tmp_path / "o.npz")
    assert proc.returncode == 0, proc.stderr
    assert "fails nir's type check" in proc.stderr and "--strict" in proc.stderr
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "reference", "-o", tmp_path / "s.npz", "--strict")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.npz").exists()


def test_shared_scalar_parameters_are_broadcast(tmp_path):
    shared, full = tmp_path / "shared.nir", tmp_path / "full.nir"
    nir.write(shared, _graph(np.full(1, 1e-3)))
    nir.write(full, _graph(np.full(4, 1e-3)))
    inputs = _inputs(tmp_path)
    for backend in ("reference", "loihi-emu"):
        for name, g in (("shared", shared), ("full", full)):
            proc = taaf("simulate", g, "--input", inputs, "--backend", backend, "-o", tmp_path / f"{name}.npz")
            assert proc.returncode == 0, proc.stderr
        a, b = np.load(tmp_path / "shared.npz"), np.load(tmp_path / "full.npz")
        assert a["output__out"].sum() > 0
        np.testing.assert_array_equal(a["output__out"], b["output__out"])


def test_dt_above_tau_is_a_warning_on_the_reference_and_an_error_on_the_chip(tmp_path):
    graph = tmp_path / "g.nir"
    nir.write(graph, _graph(np.full(4, 0.5e-4)))  # tau = dt / 2: decay 1 - dt/tau = -1
    inputs = _inputs(tmp_path)
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "reference", "-o", tmp_path / "o.npz")
    assert proc.returncode == 0 and "dt = 0.0001 s > tau = 5e-05 s" in proc.stderr, proc.stderr
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "loihi-emu", "-o", tmp_path / "e.npz")
    assert proc.returncode == 2 and "dt larger than tau" in proc.stderr and not (tmp_path / "e.npz").exists()


def test_tau_equal_to_dt_is_a_neuron_without_memory_not_a_coarse_dt(tmp_path):
    """snnTorch beta = 0 exports as tau = dt, which float32 storage reads back a hair below dt:
    still decay exactly 0 (no warning) on the float paths; the chip, whose 12-bit dv keeps at
    least 1/4096 of the voltage, refuses it in one line."""
    graph = tmp_path / "g.nir"
    nir.write(graph, _graph(np.full(4, 1e-4)))
    assert float(nir.read(graph).nodes["lif"].tau[0]) < 1e-4  # the float32 rounding this is about
    inputs = _inputs(tmp_path)
    runs = {}
    for backend in ("reference", "loihi-emu-float"):
        out = tmp_path / f"{backend}.npz"
        proc = taaf("simulate", graph, "--input", inputs, "--backend", backend, "-o", out)
        assert proc.returncode == 0 and "forward Euler" not in proc.stderr, proc.stderr
        runs[backend] = np.load(out)["output__out"]
    assert runs["reference"].sum() > 0
    np.testing.assert_array_equal(runs["reference"], runs["loihi-emu-float"])
    proc = taaf("simulate", graph, "--input", inputs, "--backend", "loihi-emu", "-o", tmp_path / "e.npz")
    assert proc.returncode == 2 and "a decay of 0 (tau = dt) is not representable on Loihi" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "e.npz").exists()


def taaf_export(*args):
    """The ``taaf-export`` CLI as a user runs it."""
    return subprocess.run([sys.executable, "-m", "export.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_export_and_bench_are_lenient_like_simulate_and_strict_refuses(tmp_path):
    graph = tmp_path / "g.nir"
    nir.write(graph, _graph(np.full(4, 1e-3), output_shape=(1, 1, 4)))  # the Rockpool file's declared Output
    inputs = _inputs(tmp_path)
    runs = {f"export-{t}": ("export", "--target", t, "-o") for t in ("nir", "loihi2")}
    runs["bench"] = ("bench", "--input", inputs, "--out")
    for name, (cmd, *args) in runs.items():
        run = taaf_export if cmd == "export" else (lambda *a: taaf("bench", *a))
        proc = run(graph, *args, tmp_path / name)
        assert proc.returncode == 0, (name, proc.stderr)
        warnings = [line for line in proc.stderr.splitlines() if "fails nir's type check" in line]
        assert len(warnings) == 1 and "--strict" in warnings[0], (name, proc.stderr)
        proc = run(graph, *args, tmp_path / f"{name}-strict", "--strict")
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (name, proc.stderr)
        assert "Traceback" not in proc.stderr and "type mismatch" in proc.stderr, proc.stderr
        assert not (tmp_path / f"{name}-strict").exists()
    assert (tmp_path / "export-loihi2").is_dir() and (tmp_path / "bench" / "report.json").is_file()


def _braille_like(broken: bool) -> nir.NIRGraph:
    """The NIR paper's published Braille ``*_subgraph.nir`` layout: Affine -> a recurrent CubaLIF
    subgraph -> Affine -> CubaLIF; ``broken``: the subgraph's edges name ``lif``, its node is
    ``lif1`` (as published)."""
    rng = np.random.default_rng(0)
    n = 6
    full = lambda v, k=n: np.full(k, v, F)  # noqa: E731
    cuba = lambda k: nir.CubaLIF(tau_syn=full(5e-4, k), tau_mem=full(1e-3, k), r=full(1.0, k),  # noqa: E731
                                 v_leak=full(0.0, k), v_threshold=full(1.0, k), v_reset=full(0.0, k), w_in=full(5.0, k))
    name = "lif" if broken else "lif1"
    inner = {"input": nir.Input(np.array([n])), "lif1": cuba(n), "lin": nir.Affine(rng.normal(0, 0.3, (n, n)).astype(F), full(0.1)),
             "output": nir.Output(np.array([n]))}
    sub = nir.NIRGraph(inner, [("input", name), (name, "lin"), ("lin", name), (name, "output")], type_check=False)
    nodes = {"input": nir.Input(np.array([4])), "fc1": nir.Affine(rng.normal(0.8, 0.5, (n, 4)).astype(F), full(0.0)),
             "lif1": sub, "fc2": nir.Affine(rng.normal(0.5, 0.5, (3, n)).astype(F), full(0.0, 3)), "lif2": cuba(3),
             "output": nir.Output(np.array([3]))}
    return nir.NIRGraph(nodes, [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
                        metadata={"dt": 1e-4}, type_check=False)


def test_published_braille_subgraph_edges_are_repaired_with_a_warning(tmp_path):
    broken, fixed = tmp_path / "broken.nir", tmp_path / "fixed.nir"
    nir.write(broken, _braille_like(True))
    nir.write(fixed, _braille_like(False))
    inputs = tmp_path / "in.npz"
    np.savez(inputs, input=(np.random.default_rng(1).random((30, 2, 4)) < 0.4).astype(F))
    for name, path in (("broken", broken), ("fixed", fixed)):
        proc = taaf("simulate", path, "--input", inputs, "-o", tmp_path / f"{name}.npz")
        assert proc.returncode == 0, proc.stderr
    proc = taaf("simulate", broken, "--input", inputs, "-o", tmp_path / "again.npz")
    assert "subgraph lif1: edges name 'lif' (no such node; read as 'lif1')" in proc.stderr, proc.stderr
    want = np.load(tmp_path / "fixed.npz")["output__output"]
    assert want.sum() > 0
    np.testing.assert_array_equal(np.load(tmp_path / "broken.npz")["output__output"], want)
    proc = taaf("simulate", broken, "--input", inputs, "-o", tmp_path / "s.npz", "--strict")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    proc = taaf("bench", broken, "--input", inputs, "--out", tmp_path / "bench")
    assert proc.returncode == 0 and "read as 'lif1'" in proc.stderr, proc.stderr
    proc = taaf_export(broken, "--target", "nir", "-o", tmp_path / "export")
    assert proc.returncode == 0 and "read as 'lif1'" in proc.stderr, proc.stderr
