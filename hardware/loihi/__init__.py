"""Loihi 2 deployment: fixed-point rules (:mod:`.fixed_point`), the NIR -> Lava mapper
(:mod:`.lava_mapper`) and the ``lava`` / ``lava-fixed`` backends (:mod:`.lava_backend`).

Importing this package does not import Lava; only the mapper's run functions do.
"""
from __future__ import annotations

from taaf.errors import TaafError


class LavaError(TaafError):
    """Anything that stops a graph from running on Lava, with one clear line of explanation."""


class LavaMappingError(LavaError):
    """A NIR graph (or parameter) that the Lava mapper cannot express; the message names the node."""


class FixedPointRangeError(LavaMappingError):
    """A value that does not fit Loihi's fixed-point registers: names the value, the allowed
    range and the layer."""


class LavaRunError(LavaError):
    """Lava failed while running (a process model raised, or the run hung and was stopped)."""


class LavaTimeoutError(LavaRunError):
    """A Lava run did not finish within its watchdog timeout; all its processes were killed."""


__all__ = ["FixedPointRangeError", "LavaError", "LavaMappingError", "LavaRunError", "LavaTimeoutError"]
