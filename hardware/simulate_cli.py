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
import time
from pathlib import Path

import numpy as np

from taaf.errors import TaafError

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
    p.add_argument("--limit", type=int, default=0, help="only the first N samples of the split")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--json", action="store_true", help="checkpoint mode: one JSON object on stdout")
    p.add_argument("--save", help="checkpoint mode: also write the JSON report to this file")
    p.add_argument("--input", help="graph mode: .npz with one array per Input node")
    p.add_argument("-o", "--out", help="graph mode: output .npz")
    p.add_argument("--record", action="store_true", help="graph mode: also write every node's states")
    p.add_argument("--dt", type=float, default=None, help="time step (s); default: the graph's metadata, else 1e-4")
    p.set_defaults(handler=run)


def run(args) -> int:
    """Dispatch on what ``target`` is: a NIR graph or a checkpoint."""
    from taaf.checkpoint import is_nir_file

    if is_nir_file(args.target):
        return _run_graph(args)
    return _run_checkpoint(args)


def _run_checkpoint(args) -> int:
    from hardware.agreement import measure_agreement
    from taaf.checkpoint import load_checkpoint
    from taaf.data import load_dataset
    from taaf.dynamics import DEFAULT_DT

    backend = get_backend(args.backend)
    if args.input or args.out or args.record:
        raise TaafError(f"{args.target} is a checkpoint: --input, -o and --record are for a .nir graph "
                        f"(a checkpoint runs on its own data split)")
    ckpt = load_checkpoint(args.target)
    split = load_dataset(ckpt.data_spec).split(args.split)
    if args.limit < 0:
        raise TaafError("--limit must be >= 0")
    if args.limit:
        split = split.subset(slice(0, args.limit))
    report = measure_agreement(ckpt, split, args.backend, batch_size=args.batch_size,
                               dt=args.dt or DEFAULT_DT, progress=not args.json)
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
    import sys

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
    if Path(args.out).resolve() in (Path(args.input).resolve(), Path(args.target).resolve()):
        raise TaafError(f"-o {args.out} is one of the inputs; choose another output file")
    graph = load_graph(args.target)
    inputs = read_inputs(Path(args.input))
    dt = args.dt
    if dt is None and not (isinstance(graph.metadata, dict) and "dt" in graph.metadata):
        dt = DEFAULT_GRAPH_DT
        print(f"warning: {args.target} has no dt metadata; running with dt = {dt} s (set --dt)", file=sys.stderr)
    start = time.perf_counter()
    result = backend.run_graph(graph, inputs, dt, record=bool(args.record))
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
    """The arrays of an ``--input`` .npz file (no pickles), or one clear error line."""
    if not path.is_file():
        raise TaafError(f"{path}: no such input file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise TaafError(f"{path}: not a readable .npz ({exc})") from None
