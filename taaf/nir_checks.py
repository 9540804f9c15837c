"""Checks of NIR graph files that every reader runs (the simulator, the exporter, the benchmarks).

* :func:`check_hdf5_budget`: the datasets an HDF5 file (a ``.nir`` or netx ``.net``) declares are
  sized from the file's metadata against :mod:`taaf.budget` BEFORE anything is read, so a file
  declaring a 100000 x 100000 weight (a few bytes when compressed) is one line, not an allocation.
* :func:`nonfinite_parameters`: the node parameters holding NaN or infinity, which no backend can
  run meaningfully (a NaN threshold never fires, silently).

Neither imports ``nir``; they work on any object with node dataclasses, so ``taaf`` keeps no
dependency on the later stages.
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


__all__ = ["check_hdf5_budget", "nonfinite_parameters"]
