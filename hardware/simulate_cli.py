"""``taaf simulate``: run a trained model or any NIR graph on a simulator backend.

Registered into the ``taaf`` command through the ``taaf.commands`` entry point, so the model
package never imports hardware code (the pipeline stays one-directional).

    taaf simulate model.pt --backend reference [--split test] [--limit N] [--json]
    taaf simulate GRAPH.nir --input IN.npz --backend reference -o OUT.npz [--record]

IN.npz holds one array per Input node, named after it: [T, B, *shape] (or [T, *shape]).
OUT.npz holds ``output__<name>`` per Output node and, with --record, ``state__<node>__<var>``
for every node's recorded state (v, i, spikes, output).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from taaf import argtypes as num
from taaf import budget, notices
from taaf.errors import TaafError
from taaf.paths import check_output_file

from hardware.registry import BACKENDS, get_backend, graph_backends

DEFAULT_GRAPH_DT = 1e-4  # used (with a warning) when a graph has no dt metadata and no --dt


def register(subparsers) -> None:
    """Add ``taaf simulate`` to the ``taaf`` command (the ``taaf.commands`` entry point)."""
    p = subparsers.add_parser(
        "simulate", help="run a checkpoint or a NIR graph on a simulator backend",
        description="Checkpoint mode: accuracy of a backend on a data split and its agreement with "
                    "the PyTorch model. Graph mode (a .nir file): run any NIR graph on given inputs.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("target", help="model.pt from 'taaf train', or a .nir graph")
    p.add_argument("--backend", default="reference",
                   help="; ".join(f"{n}: {b.description}" for n, b in BACKENDS.items())
                   + f" (a .nir file: {', '.join(graph_backends())})")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--limit", type=num.non_negative_int, default=0, help="only the first N samples of the split")
    p.add_argument("--batch-size", type=num.batch_size, default=100)
    p.add_argument("--json", action="store_true", help="checkpoint mode: one JSON object on stdout")
    p.add_argument("--save", help="checkpoint mode: also write the JSON report to this file")
    p.add_argument("--input", help="graph mode: .npz with one array per Input node")
    p.add_argument("-o", "--out", help="graph mode: output .npz")
    p.add_argument("--record", action="store_true", help="graph mode: also write every node's states")
    p.add_argument("--strict", action="store_true",
                   help="graph mode: refuse a file that fails nir's type check (default: run it with a warning)")
    p.add_argument("--calibrate", action="store_true",
                   help="graph mode, fixed-point backends: choose each layer's scale from the currents the float "
                        "reference drives on --input (finer weights than the worst-case bound allows)")
    p.add_argument("--dt", type=num.positive_finite_float, default=None,
                   help="time step (s, > 0); default: the graph's metadata, else 1e-4")
    p.set_defaults(handler=run)


def run(args) -> int:
    """Dispatch on what ``target`` is: a NIR graph or a checkpoint."""
    from taaf.checkpoint import is_nir_file

    if is_nir_file(args.target):
        return _run_graph(args)
    return _run_checkpoint(args)


def _run_checkpoint(args) -> int:
    from hardware.agreement import measure_agreement
    from taaf.checkpoint import check_split_matches, load_checkpoint
    from taaf.data import load_dataset
    from taaf.dynamics import DEFAULT_DT

    backend = get_backend(args.backend)
    if args.input or args.out or args.record or getattr(args, "calibrate", False):
        raise TaafError(f"{args.target} is a checkpoint: --input, -o, --record and --calibrate are for a .nir graph "
                        f"(a checkpoint runs on its own data split)")
    if args.save:
        check_output_file(args.save, inputs=[args.target])
    ckpt = load_checkpoint(args.target)
    split = load_dataset(ckpt.data_spec).split(args.split)
    check_split_matches(ckpt, split, args.target)
    if args.limit:
        split = split.subset(slice(0, args.limit))
    neurons, batch = ckpt.model_config.neuron_count(), min(args.batch_size, len(split))
    budget.check(f"simulating a batch of {batch} samples", 8 * 8 * batch * ckpt.model_config.n_steps * neurons,
                 f"batch x T {ckpt.model_config.n_steps} x {neurons:,} neurons, float64, several runs")
    report = measure_agreement(ckpt, split, args.backend, batch_size=args.batch_size,
                               dt=DEFAULT_DT if args.dt is None else args.dt, progress=not args.json)
    if args.save:
        from taaf.data.cache import atomic_write_bytes

        atomic_write_bytes(Path(args.save), json.dumps(report.as_dict(), indent=2).encode())
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    acc = report.accuracy
    print(f"{args.target} on {args.backend}: {report.samples} {report.split} samples, "
          f"{report.samples_per_second:.1f} samples/s")
    print(f"  accuracy   fused {acc['fused']:.4f}   audio {acc['audio']:.4f}   visual {acc['visual']:.4f}")
    print(f"  agreement  predictions {report.prediction_agreement:.4f} (vs the trained PyTorch model)")
    quantised = backend.fixed_point
    verdict = "identical" if report.spikes_identical else (
        "differ (expected: fixed-point quantisation)" if quantised else "NOT identical")
    print(f"             spikes {verdict} on {len(report.spike_agreement)} layers (vs the exported "
          f"float64 twin); max readout difference {report.max_readout_difference:.2e}")
    for layer, frac in report.spike_agreement.items():
        print(f"             {layer:22s} {frac:.6f}")
    return 0


def _run_graph(args) -> int:
    from hardware.reference import load_graph
    from taaf.data.cache import atomic_write_bytes

    backend = get_backend(args.backend)
    if backend.for_graph is None:
        raise TaafError(f"backend {args.backend!r} cannot run a NIR file: {backend.graph_note}")
    if not args.input or not args.out:
        raise TaafError("graph mode needs --input IN.npz and -o OUT.npz")
    if args.save or args.split != "test" or args.limit:
        raise TaafError(f"{args.target} is a NIR graph: --save, --split and --limit are for a checkpoint "
                        f"(a graph runs on --input IN.npz and writes -o OUT.npz)")
    check_output_file(args.out, inputs=[args.input, args.target])
    graph = load_graph(args.target, strict=bool(getattr(args, "strict", False)))
    inputs = read_inputs(Path(args.input))
    dt = args.dt
    if dt is None and not (isinstance(graph.metadata, dict) and "dt" in graph.metadata):
        dt = DEFAULT_GRAPH_DT
        notices.warn(f"{args.target} has no dt metadata; running with dt = {dt} s (set --dt)")
    start = time.perf_counter()
    result = backend.run_graph(graph, inputs, dt, record=bool(args.record),
                               calibrate=bool(getattr(args, "calibrate", False)))
    elapsed = time.perf_counter() - start
    arrays = {f"output__{k}": v for k, v in result.outputs.items()}
    for node, states in result.states.items():
        arrays.update({f"state__{node}__{var}": v for var, v in states.items()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(Path(args.out), buffer.getvalue())
    print(f"ran {args.target} on {args.backend} for {next(iter(inputs.values())).shape[0]} steps in "
          f"{elapsed:.2f} s (dt = {result.dt}); wrote {len(arrays)} arrays to {args.out}")
    return 0


def read_inputs(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``--input`` .npz file, or one clear error line: the file must be a zip of
    ``.npy`` members (no pickles), each a non-empty array of bool, integer or float numbers, all
    finite, [T, ...] with T >= 1; the declared sizes are checked against the memory budget
    (:mod:`taaf.budget`) before any array is read."""
    path = Path(path)
    if not path.is_file():
        raise TaafError(f"{path}: no such input file")
    try:
        with zipfile.ZipFile(path) as zf:
            members = [_npy_header(path, zf, info) for info in zf.infolist()]
            if not members:
                raise TaafError(f"{path}: the .npz holds no arrays")
            total = sum(8 * math.prod(shape) for _, _, shape, _ in members)
            budget.check(f"the input arrays of {path}", total, "as float64")
            arrays = {}
            for name, info, _, _ in members:
                with zf.open(info) as fh:
                    arrays[name] = _check_array(path, name, np.lib.format.read_array(fh, allow_pickle=False))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise TaafError(f"{path}: not a readable .npz ({reason}; truncated or corrupt?)") from None
    return arrays


def _npy_header(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    """(name, member, shape, dtype) of one .npz member, from its .npy header only."""
    if not info.filename.endswith(".npy"):
        raise TaafError(f"{path}: member {info.filename!r} is not a .npy array (an .npz holds only arrays)")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise TaafError(f"{path}: member {info.filename!r} has .npy format version {version}, not 1.0 or 2.0")
    name = info.filename[:-len(".npy")]
    if dtype.kind not in "biuf":
        raise TaafError(f"{path}: array {name!r} has dtype {dtype} (needs bool, integer or float numbers)")
    return name, info, tuple(int(n) for n in shape), dtype


def _check_array(path: Path, name: str, array: np.ndarray) -> np.ndarray:
    if array.ndim == 0:
        raise TaafError(f"{path}: array {name!r} is a scalar; inputs are [T, B, *shape] or [T, *shape]")
    if array.shape[0] == 0:
        raise TaafError(f"{path}: array {name!r} has no time steps (shape {array.shape})")
    if array.size == 0:
        raise TaafError(f"{path}: array {name!r} is empty (shape {array.shape}: a batch or size of 0)")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise TaafError(f"{path}: array {name!r} holds NaN or infinite values")
    return array
