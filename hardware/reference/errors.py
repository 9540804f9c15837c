"""Errors of the reference simulator: user-input problems, hence :class:`TaafError`s."""
from __future__ import annotations

from taaf import notices
from taaf.errors import TaafError


class GraphError(TaafError):
    """A NIR graph (or file) the reference simulator cannot execute; the message names the node."""


class SimulationInputError(TaafError):
    """Input arrays that do not fit the graph's Input nodes (names, shapes, time/batch sizes)."""


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr: something runs, but probably not as the user meant
    (a file that fails nir's type check, no dt, dt > tau); held by :mod:`taaf.notices` until
    the command succeeds."""
    notices.warn(message)
