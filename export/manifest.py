"""The export manifest: which files belong together and how the host consumes the chip.

One JSON file next to the exported artifacts; a deployment tool (or a person) reads it to know
the model it came from (checkpoint sha256), the time base (dt, T), which NIR Outputs feed which
host-head inputs, and the library versions that produced it.
"""
from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

FORMAT = "taaf-export"
VERSION = 1


@dataclass(frozen=True)
class ExportedFile:
    """One exported file: its name, what it is for, and its sha256."""

    name: str
    role: str  # e.g. "chip graph (NIR)", "host head (ONNX)"
    sha256: str


@dataclass(frozen=True)
class Stream:
    """A chip readout streamed to the host every step."""

    nir_output: str
    host_input: str
    shape_per_step: tuple[int, ...]


@dataclass(frozen=True)
class ExportManifest:
    """The manifest.json contents: source checkpoint, time base, files, chip-to-host streams and library versions."""

    target: str
    checkpoint: str
    checkpoint_sha256: str
    method: str
    fusion: str
    dt: float
    n_steps: int
    n_classes: int
    files: tuple[ExportedFile, ...]
    streams: tuple[Stream, ...] = ()
    partition: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> str:
        """The manifest as indented JSON text, as written to manifest.json."""
        return json.dumps(asdict(self), indent=2)


def library_versions() -> dict[str, str]:
    """Python and the relevant library versions ('not installed' if absent), recorded for reproducibility."""
    out = {"python": platform.python_version()}
    for dist in ("taaf-toolkit", "nir", "torch", "snntorch", "norse", "onnx", "onnxruntime", "lava-nc", "lava-dl"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def read_manifest(folder: Path) -> dict:
    """Parse ``folder``/manifest.json into a dict."""
    return json.loads((Path(folder) / "manifest.json").read_text())
