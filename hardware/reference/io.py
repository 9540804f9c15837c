"""Load ``.nir`` files with errors that name the file and, where possible, the node.

``nir.read`` raises bare ``ValueError``/``AssertionError``/``KeyError``/``OSError`` with no file
or node name; we turn every failure into a :class:`GraphError` and, when the file itself opens,
re-read it node by node to say which node could not be reconstructed.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import nir
from nir.serialization import hdf2dict

from hardware.reference.errors import GraphError, warn
from taaf.nir_checks import check_hdf5_budget, read_unchecked

_READ_ERRORS = (OSError, ValueError, KeyError, AssertionError, TypeError, AttributeError,
                IndexError, NotImplementedError, RuntimeError, OverflowError)


def load_graph(path: str | Path, type_check: bool = True, strict: bool = False) -> nir.NIRGraph:
    """Read a NIR graph; any failure becomes a :class:`GraphError` naming file (and node).

    Published files exist that fail nir's own type check (an Output declared (1, 1, 1), a
    subgraph edge naming a node by an old name) and users still need to run them: unless
    ``strict``, such a file is read without the check, with a one-line warning; the simulator's
    own shape inference then decides whether it runs."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"NIR file not found: {path}")
    check_hdf5_budget(path, "the parameters")  # declared sizes, before nir.read allocates them
    try:
        try:
            graph = nir.read(path, type_check=type_check)
        except _READ_ERRORS as exc:
            if strict or not type_check:
                raise
            graph, repairs = read_unchecked(path)  # raises again if the file is broken, not just mistyped
            warn(f"{path} fails nir's type check ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                 f"running it without the check (--strict refuses such files)")
            for line in repairs:
                warn(f"{path}: {line}")
    except _READ_ERRORS as exc:
        where = _find_bad_node(path)
        raise GraphError(f"cannot read NIR file {path}{where}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"NIR file {path} holds a single {type(graph).__name__} node, not a NIRGraph")
    return graph


def _find_bad_node(path: Path) -> str:
    """Best effort: `` (node 'x', type T)`` for the first node that fails to load, else ``''``."""
    try:
        with h5py.File(path, "r") as f:
            data = hdf2dict(f["node"])
    except Exception:  # noqa: BLE001 - the caller reports the original error
        return ""
    for name, node in data.get("nodes", {}).items():
        try:
            nir.dict2NIRNode(dict(node))
        except Exception:  # noqa: BLE001
            return f" (node {name!r}, type {node.get('type', '?')!r})"
    return ""
