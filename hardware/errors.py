"""The errors of the hardware stage: every one is a :class:`~taaf.errors.TaafError`, so the CLI
turns it into one line on stderr and exit code 2.

They live here, below every hardware module, so the backend-neutral chip IR (:mod:`hardware.ir`)
and the Lava, emulator and netx code raise the same types without importing each other.
"""
from __future__ import annotations

from taaf.errors import TaafError


class LavaError(TaafError):
    """Anything that stops a graph from running on Lava, with one clear line of explanation."""


class LavaMappingError(LavaError):
    """A NIR graph (or parameter) that the chip mapping cannot express; the message names the node."""


class FixedPointRangeError(LavaMappingError):
    """A value that does not fit Loihi's fixed-point registers: names the value, the allowed
    range and the layer."""


class LavaRunError(LavaError):
    """Lava failed while running (a process model raised, or the run hung and was stopped)."""


class LavaTimeoutError(LavaRunError):
    """A Lava run did not finish within its watchdog timeout; all its processes were killed."""


__all__ = ["FixedPointRangeError", "LavaError", "LavaMappingError", "LavaRunError", "LavaTimeoutError"]
