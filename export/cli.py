"""``taaf-export``: turn a trained checkpoint into deployable artifacts.

Targets (more arrive with the hardware stages):
  nir       taaf.nir (chip: both encoders, time-warp delays, fused layer, readouts; two Inputs)
            + host_head.onnx + manifest.json
  snntorch  audio_encoder.nir + visual_encoder.nir (one Input each: nirtorch-based importers
            cannot take two) + manifest.json; checked to load with snntorch.import_from_nir
  norse     the same branch graphs, checked to load with norse.torch.from_nir
  onnx      host_head.onnx (SNN) or model.onnx (ANN baseline) + manifest.json
  lava, loihi2 (and any other) come from later stages through the ``taaf.export_targets``
            entry point group (:func:`plugin_targets`), so this package never imports them.

Everything is written to a temporary folder first and moved into OUT only when complete.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from taaf.errors import TaafError
from taaf.paths import prepare_output_dir

TARGETS = {
    "nir": "chip graph (NIR) + host head (ONNX) + manifest",
    "snntorch": "per-modality encoder graphs loadable by snntorch.import_from_nir",
    "norse": "per-modality encoder graphs loadable by norse.torch.from_nir",
    "onnx": "SNN: the host head; ANN baseline: the whole network (ONNX, runs with onnxruntime)",
}


def plugin_targets() -> dict:
    """Targets registered by later pipeline stages (``[project.entry-points."taaf.export_targets"]``):
    name -> object with ``description`` and ``build(ckpt, checkpoint_path, dt)``, whose result has
    ``files``, ``roles``, ``streams``, ``partition`` and ``summary`` (printed by the CLI)."""
    from importlib.metadata import entry_points

    found = {}
    for ep in sorted(entry_points(group="taaf.export_targets"), key=lambda e: e.name):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken stage must not break the built-in targets
            found[ep.name] = exc
    return found


def available_targets() -> dict[str, str]:
    out = dict(TARGETS)
    for name, target in plugin_targets().items():
        out.setdefault(name, getattr(target, "description", f"(cannot be loaded: {target})"))
    return out


def build_parser() -> argparse.ArgumentParser:
    targets = available_targets()
    parser = argparse.ArgumentParser(
        prog="taaf-export",
        description="Export a trained TAAF checkpoint through NIR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="targets:\n" + "\n".join(f"  {k:9s} {v}" for k, v in targets.items()),
    )
    parser.add_argument("checkpoint", help="model.pt written by 'taaf train'")
    parser.add_argument("--target", required=True, help=f"one of: {', '.join(targets)}")
    parser.add_argument("-o", "--out", required=True, help="output folder (created; files replaced atomically)")
    parser.add_argument("--dt", type=float, default=None, help="time step in seconds written to the graph (default 1e-4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    notes: list[str] = []
    try:
        written = export(Path(args.checkpoint), args.target, Path(args.out), dt=args.dt, notes=notes)
    except TaafError as exc:
        print(f"taaf-export: error: {exc}", file=sys.stderr)
        return 2
    for name in written:
        print(f"wrote {Path(args.out) / name}")
    for note in notes:
        print(note)
    return 0


def export(checkpoint: Path, target: str, out: Path, dt: float | None = None,
           notes: list[str] | None = None) -> list[str]:
    """Export ``checkpoint`` for ``target`` into ``out``; returns the file names written (a plugin
    target's summary, e.g. a resource report, is appended to ``notes``)."""
    from export.artifacts import build_artifacts
    from taaf.checkpoint import load_checkpoint

    targets = available_targets()
    if target not in targets:
        raise TaafError(f"unknown target {target!r} (choose from {', '.join(targets)})")
    prepare_output_dir(out)
    ckpt = load_checkpoint(checkpoint)
    files = build_artifacts(ckpt, checkpoint, target, dt, notes)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        for name in files:  # all files exist complete before any is moved into place
            shutil.move(str(Path(tmp) / name), out / name)
    return list(files)


if __name__ == "__main__":
    sys.exit(main())
