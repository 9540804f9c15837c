"""Checks of NIR graph files that every reader runs (the simulator, the exporter, the benchmarks).

* :func:`check_hdf5_budget`: the datasets an HDF5 file (a ``.nir`` or netx ``.net``) declares are
  sized from the file's metadata against :mod:`taaf.budget` BEFORE anything is read, so a file
  declaring a 100000 x 100000 weight (a few bytes when compressed) is one line, not an allocation.
* :func:`nonfinite_parameters`: the node parameters holding NaN or infinity, which no backend can
  run meaningfully (a NaN threshold never fires, silently).
* :func:`read_unchecked`: the lenient read every command falls back to when a file fails nir's
  type check (``nir`` imported there only).

The first two do not import ``nir``; they work on any object with node dataclasses, so ``taaf``
keeps no dependency on the later stages.
"""
from __future__ import annotations

import dataclasses
import numpy as np

from taaf import budget

MIN_ITEM_BYTES = 8  # readers convert parameters to float64


def check_hdf5_budget(path, what: str = "the arrays", label: str | None = None) -> None:
    """Refuse (:class:`~taaf.budget.BudgetError`) an HDF5 file (a path or a file object) whose
    datasets, as declared in its metadata, exceed the memory budget; ``label`` names it in the
    message. A file that does not open as HDF5 is left to its reader."""
    import h5py

    sizes: list[tuple[int, str, tuple]] = []

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            count = int(np.prod(obj.shape, dtype=object)) if obj.shape else 1
            sizes.append((count * max(int(obj.dtype.itemsize), MIN_ITEM_BYTES), name, tuple(obj.shape)))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        return  # not HDF5, or damaged: the reader says so in its own words
    if not sizes:
        return
    nbytes, name, shape = max(sizes)
    budget.check(f"{what} of {label or path}", sum(s for s, _, _ in sizes),
                 f"largest: {name} of shape {list(shape)}")


def nonfinite_parameters(graph, prefix: str = "") -> list[str]:
    """``node.parameter`` names whose arrays hold NaN or infinity (nested graphs as ``sub.node``)."""
    found = []
    for name, node in getattr(graph, "nodes", {}).items():
        if hasattr(node, "nodes"):
            found += nonfinite_parameters(node, f"{prefix}{name}.")
            continue
        values = ({f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
                  if dataclasses.is_dataclass(node) else dict(vars(node)))
        for attr, value in values.items():
            if attr in ("input_type", "output_type", "metadata") or isinstance(value, (str, bytes)):
                continue
            try:
                array = np.asarray(value)
            except (TypeError, ValueError):
                continue
            if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
                found.append(f"{prefix}{name}.{attr}")
    return found


def read_unchecked(source) -> tuple[object, list[str]]:
    """A NIR file (path or file object) read without nir's type check at every level (``nir.read``
    passes ``type_check=False`` to the top graph only, so a nested subgraph is still checked), and
    the repairs made, one line each. The one repair: an edge naming no node, where exactly one node
    of that (sub)graph is the name plus a number and no edge names it, is read as naming that node
    (the NIR paper's published Braille ``*_subgraph.nir``: inner edges name ``lif``, the node is
    ``lif1``). Raises what ``nir`` raises when the file is broken, not just mistyped."""
    import h5py
    import nir
    from nir.serialization import hdf2dict

    with h5py.File(source, "r") as f:
        data = hdf2dict(f["node"])
    repairs: list[str] = []
    _unchecked(data, "", repairs)
    return nir.dict2NIRNode(data), repairs


def _text(value) -> str:
    return value.decode() if isinstance(value, (bytes, np.bytes_)) else str(value)


def _unchecked(data: dict, where: str, repairs: list[str]) -> None:
    if _text(data.get("type", "")) != "NIRGraph":
        return
    data["type_check"] = False
    nodes = data.get("nodes", {})
    edges = [(_text(a), _text(b)) for a, b in data.get("edges", [])]
    used = {n for edge in edges for n in edge}
    renames = {}
    for missing in sorted(used - set(nodes)):
        found = [n for n in nodes if n not in used and n.startswith(missing) and n[len(missing):].isdigit()]
        if len(found) == 1:
            renames[missing] = found[0]
    if renames:
        data["edges"] = [[renames.get(a, a), renames.get(b, b)] for a, b in edges]
        repairs.append(f"{where or 'the graph'}: edges name "
                       + ", ".join(f"{k!r} (no such node; read as {v!r})" for k, v in renames.items()))
    for name, node in nodes.items():
        if isinstance(node, dict):
            _unchecked(node, f"subgraph {where + '.' if where else ''}{name}", repairs)


__all__ = ["check_hdf5_budget", "nonfinite_parameters", "read_unchecked"]
