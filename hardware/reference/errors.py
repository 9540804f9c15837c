"""Errors of the reference simulator: user-input problems, hence :class:`TaafError`s."""
from __future__ import annotations

from taaf.errors import TaafError


class GraphError(TaafError):
    """A NIR graph (or file) the reference simulator cannot execute; the message names the node."""


class SimulationInputError(TaafError):
    """Input arrays that do not fit the graph's Input nodes (names, shapes, time/batch sizes)."""
