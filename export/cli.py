"""``taaf-export``: turn a trained checkpoint, or any feed-forward NIR graph, into deployable artifacts.

Checkpoint targets (more arrive with the hardware stages):
  nir       taaf.nir (chip: both encoders, time-warp delays, fused layer, readouts; two Inputs)
            + host_head.onnx + manifest.json
  snntorch  audio_encoder.nir + visual_encoder.nir (one Input each: nirtorch-based importers
            cannot take two) + manifest.json; checked to load with snntorch.import_from_nir
  norse     the same branch graphs, checked to load with norse.torch.from_nir
  onnx      host_head.onnx (SNN) or model.onnx (ANN baseline) + manifest.json
  lava, loihi2 (and any other) come from later stages through the ``taaf.export_targets``
            entry point group (:func:`plugin_targets`), so this package never imports them.

Graph mode (``taaf-export G.nir --target nir|lava|loihi2``): a NIR graph written by any tool,
told apart from a checkpoint by its content (HDF5 with a ``node`` group) or its ``.nir`` suffix.
``nir`` checks it with ``nir.read`` and writes graph.nir + manifest.json; ``lava``/``loihi2``
call the plugin's ``build_graph`` with the max |x| of every Input (``--input-range NAME=MAX``,
default 1.0, printed and recorded in the manifest). The checkpoint-only targets (snntorch,
norse, onnx) refuse a graph, and a graph-only target a checkpoint, in one line.

Every file is built in memory first; only then is OUT created: the files are written into a
staged sibling folder that replaces OUT as a whole (:func:`taaf.paths.staged_output`), so a
failed export leaves nothing behind and no file of an earlier export into OUT stays.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

from taaf.argtypes import positive_finite_float
from taaf.boundary import OneLineParser, add_global_options, parse_or_exit_code, run_guarded
from taaf.errors import TaafError
from taaf.paths import check_output_dir, staged_output

TARGETS = {
    "nir": "chip graph (NIR) + host head (ONNX) + manifest; for a .nir: the checked graph + manifest",
    "snntorch": "per-modality encoder graphs loadable by snntorch.import_from_nir",
    "norse": "per-modality encoder graphs loadable by norse.torch.from_nir",
    "onnx": "SNN: the host head; ANN baseline: the whole network (ONNX, runs with onnxruntime)",
}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # NIR graphs are HDF5 files
ZIP_SIGNATURE = b"PK\x03\x04"  # torch.save writes zip archives (our checkpoints)


def plugin_targets() -> dict:
    """Targets registered by later pipeline stages (``[project.entry-points."taaf.export_targets"]``):
    name -> object with ``description``, ``build(ckpt, checkpoint_path, dt)`` and optionally
    ``build_graph(graph_path, dt, input_ranges)``, whose result has ``files``, ``roles``,
    ``streams``, ``partition`` and ``summary`` (printed by the CLI)."""
    from importlib.metadata import entry_points

    found = {}
    for ep in sorted(entry_points(group="taaf.export_targets"), key=lambda e: e.name):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken stage must not break the built-in targets
            found[ep.name] = exc
    return found


def available_targets() -> dict[str, str]:
    """Target name -> one-line description: the built-in ones, then every loadable plugin's."""
    out = dict(TARGETS)
    for name, target in plugin_targets().items():
        out.setdefault(name, getattr(target, "description", f"(cannot be loaded: {target})"))
    return out


def _input_range(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name or not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"expected NAME=MAX with a positive MAX, got {text!r}")
    return name, number


def build_parser() -> argparse.ArgumentParser:
    """The ``taaf-export`` argument parser; its epilog lists every available target."""
    targets = available_targets()
    parser = OneLineParser(
        prog="taaf-export",
        description="Export a trained TAAF checkpoint, or any feed-forward NIR graph, through NIR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="targets:\n" + "\n".join(f"  {k:9s} {v}" for k, v in targets.items())
               + "\n\na NIR graph (G.nir) exports to: nir, and the targets of later stages (lava, loihi2)",
    )
    parser.add_argument("checkpoint", metavar="MODEL",
                        help="model.pt written by 'taaf train', or a NIR graph (.nir) written by any tool")
    parser.add_argument("--target", required=True, help=f"one of: {', '.join(targets)}")
    parser.add_argument("-o", "--out", required=True, help="output folder (new, empty, or one taaf wrote: replaced as a whole)")
    parser.add_argument("--dt", type=positive_finite_float, default=None,
                        help="time step in seconds (checkpoint: written to the graph, default 1e-4; "
                             "NIR graph: default its metadata dt, else 1e-4)")
    parser.add_argument("--strict", action="store_true",
                        help="NIR graph: refuse a file that fails nir's type check (default: export it with a warning)")
    parser.add_argument("--input-range", type=_input_range, action="append", default=[], metavar="NAME=MAX",
                        help="NIR graph, fixed-point targets: max |x| of Input NAME (repeatable; default 1.0 each)")
    add_global_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``taaf-export``: 0 on success; any failure is one line on stderr and exit code 2
    (:mod:`taaf.boundary`; ``--debug`` shows the traceback), Ctrl-C 130."""
    args = parse_or_exit_code(build_parser(), argv)
    if isinstance(args, int):
        return args
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return run_guarded("taaf-export", lambda: _run(args), args)


def _run(args: argparse.Namespace) -> int:
    notes: list[str] = []
    ranges: dict[str, float] = {}
    for name, value in args.input_range:
        if name in ranges:
            raise TaafError(f"--input-range {name} is given twice")
        ranges[name] = value
    written = export(Path(args.checkpoint), args.target, Path(args.out), dt=args.dt, notes=notes,
                     input_ranges=ranges, strict=bool(getattr(args, "strict", False)))
    for name in written:
        print(f"wrote {Path(args.out) / name}")
    for note in notes:
        print(note)
    return 0


def source_kind(path: Path) -> str:
    """``"nir"`` or ``"checkpoint"``, by content first (HDF5 with a ``node``/``nodes`` group; a
    zip archive), then by the ``.nir`` suffix; a file that is neither is one clear error."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(len(HDF5_SIGNATURE))
    except OSError:
        head = b""  # missing or unreadable: the loader of the kind the suffix says reports it
    if head == HDF5_SIGNATURE:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                has_nodes = "node" in f or "nodes" in f
        except OSError:
            has_nodes = False
        if has_nodes or path.suffix.lower() == ".nir":
            return "nir"  # a .nir without nodes is a corrupt graph; nir.read says why
        raise TaafError(f"{path} is an HDF5 file without a 'node' group: neither a NIR graph nor a "
                        f"checkpoint from 'taaf train'")
    if head.startswith(ZIP_SIGNATURE):
        if path.suffix.lower() == ".nir":
            raise TaafError(f"{path} is a checkpoint from 'taaf train' (a torch archive), not a NIR graph, "
                            f"despite its .nir suffix")
        return "checkpoint"
    return "nir" if path.suffix.lower() == ".nir" else "checkpoint"


def export(checkpoint: Path, target: str, out: Path, dt: float | None = None,
           notes: list[str] | None = None, input_ranges: dict[str, float] | None = None,
           strict: bool = False) -> list[str]:
    """Export ``checkpoint`` (a TAAF checkpoint or a NIR graph) for ``target`` into ``out``;
    returns the file names written (a target's summary, e.g. a resource report, is appended to
    ``notes``). ``input_ranges``: max |x| per Input of a NIR graph (fixed-point targets);
    ``strict``: refuse a NIR graph that fails nir's type check instead of warning."""
    from export.artifacts import CHECKPOINT_TARGETS, build_artifacts, build_graph_artifacts

    targets = available_targets()
    if target not in targets:
        raise TaafError(f"unknown target {target!r} (choose from {', '.join(targets)})")
    source = Path(checkpoint)
    check_output_location(out, inputs=[source])
    if source_kind(source) == "nir":
        if target in CHECKPOINT_TARGETS:
            raise TaafError(f"{source} is a NIR graph; the {target} target needs a checkpoint from 'taaf train'")
        files = build_graph_artifacts(source, target, dt, input_ranges, notes, strict=strict)
    else:
        from taaf.checkpoint import load_checkpoint

        if input_ranges:
            raise TaafError(f"--input-range is for a NIR graph; {source} is a checkpoint (the TAAF model's "
                            f"input ranges are built in)")
        plugin = plugin_targets().get(target) if target not in TARGETS else None
        if plugin is not None and not isinstance(plugin, Exception) and getattr(plugin, "build", None) is None:
            raise TaafError(f"{source} is a checkpoint; the {target} target needs a NIR graph (.nir)")
        files = build_artifacts(load_checkpoint(source), source, target, dt, notes)
    install(files, out)
    return list(files)


def check_output_location(out: Path, inputs=()) -> None:
    """Fail before any work when ``out`` could not be created, written or replaced (it holds
    files taaf did not write, or one of ``inputs``); creates nothing
    (:func:`taaf.paths.check_output_dir`)."""
    check_output_dir(out, inputs)


def install(files: dict[str, bytes], out: Path) -> None:
    """Write every file into a staged folder that then replaces ``out`` as a whole
    (:func:`taaf.paths.staged_output`): on failure nothing is left behind, on success no file
    of an earlier export into ``out`` stays."""
    with staged_output(Path(out), "taaf-export") as stage:
        for name, data in files.items():
            (stage / name).write_bytes(data)

if __name__ == "__main__":
    sys.exit(main())
