"""Command-line numbers, validated where they enter: ``type=`` helpers for argparse.

Every numeric flag of ``taaf`` and ``taaf-export`` goes through one of these, so a bad number
(``--batch-size 0``, ``--seed -1``, ``--lr nan``, ``--dt inf``, ``--steps 10000000000``) is one
line from the parser (``taaf train: error: argument --lr: ...``) and exit code 2 before any work
starts. The upper bounds are the documented ones of :mod:`taaf.config` (``MAX_STEPS`` ...).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from taaf.config import MAX_BATCH, MAX_EPOCHS, MAX_IMAGE_SIZE, MAX_SEED, MAX_STEPS


def _int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_in(lo: int, hi: int | None, name: str) -> Callable[[str], int]:
    """An argparse type: an integer in ``[lo, hi]`` (``hi`` None: no upper bound)."""
    def parse(text: str) -> int:
        value = _int(text)
        if value < lo or (hi is not None and value > hi):
            span = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise argparse.ArgumentTypeError(f"must be an integer {span}, got {text!r}")
        return value
    parse.__name__ = name
    return parse


def float_in(lo: float | None, hi: float | None, name: str, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    def parse(text: str) -> float:
        value = _float(text)
        low_bad = lo is not None and (value <= lo if lo_open else value < lo)
        if low_bad or (hi is not None and value > hi):
            if lo is not None and hi is None:
                span = f"> {lo:g}" if lo_open else f">= {lo:g}"
            elif lo is None:
                span = f"<= {hi:g}"
            else:
                span = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
            raise argparse.ArgumentTypeError(f"must be a finite number {span}, got {text!r}")
        return value
    parse.__name__ = name
    return parse


positive_int = int_in(1, None, "positive_int")
non_negative_int = int_in(0, None, "non_negative_int")
seed = int_in(0, MAX_SEED, "seed")
steps = int_in(1, MAX_STEPS, "steps")
epochs = int_in(1, MAX_EPOCHS, "epochs")
batch_size = int_in(1, MAX_BATCH, "batch_size")
image_size = int_in(1, MAX_IMAGE_SIZE, "image_size")
finite_float = float_in(None, None, "finite_float")
positive_finite_float = float_in(0.0, None, "positive_finite_float", lo_open=True)
non_negative_finite_float = float_in(0.0, None, "non_negative_finite_float")
unit_float = float_in(0.0, 1.0, "unit_float")


__all__ = ["batch_size", "epochs", "finite_float", "float_in", "image_size", "int_in", "non_negative_finite_float",
           "non_negative_int", "positive_finite_float", "positive_int", "seed", "steps", "unit_float"]
