"""Loihi 2 deployment: fixed-point registers and arithmetic (:mod:`.fixed_point`), the
quantisation rules (:mod:`.quant_rules`), the Lava program (:mod:`.program`, :mod:`.network`,
:mod:`.lava_runtime`), the emulator (:mod:`.emulator`) and resources (:mod:`.resources`). netx
artifacts are :mod:`hardware.netx`; the chip graph they all consume is :mod:`hardware.ir`.

Importing this package does not import Lava; only :mod:`.lava_runtime`'s run functions do.
"""
from __future__ import annotations

from hardware.errors import FixedPointRangeError, LavaError, LavaMappingError, LavaRunError, LavaTimeoutError

__all__ = ["FixedPointRangeError", "LavaError", "LavaMappingError", "LavaRunError", "LavaTimeoutError"]
