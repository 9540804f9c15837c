"""The memory budget: what a file, a config or a flag declares is sized BEFORE it is allocated.

A hostile or mistaken input (a checkpoint whose config declares a hidden layer of 10^12
neurons, a NIR Delay of 10^9 steps, a ``.net`` file declaring a 100000 x 100000 weight, an
``--input`` of T x batch x size far beyond the machine) must cost one line, not a swap storm or
an allocator abort. Every place that allocates what an input declares calls :func:`check` with
the byte count it is about to allocate; above the budget that is a :class:`BudgetError` naming
the quantity, its size and the budget.

The budget is :data:`DEFAULT_BUDGET_GB` (8 GiB), overridden by the environment variable
``TAAF_MEMORY_BUDGET_GB`` and, for one command, by the ``--memory-budget-gb`` flag of ``taaf``
and ``taaf-export`` (:func:`override`). It is a guard against absurd declarations, not an exact
accounting: estimates count the dominant arrays (weights, per-step state, histories).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

from taaf.errors import ConfigError, TaafError

DEFAULT_BUDGET_GB = 8.0
ENV_VAR = "TAAF_MEMORY_BUDGET_GB"
GIB = 1 << 30
_override_gb: float | None = None


class BudgetError(TaafError):
    """An allocation an input declares is larger than the memory budget (one line, exit 2)."""


def parse_gb(text: str | float, where: str) -> float:
    """A budget in GiB: a finite number > 0, else :class:`ConfigError` naming ``where``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number of GiB, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where} must be a positive, finite number of GiB, got {text!r}")
    return value


def budget_bytes() -> int:
    """The budget in bytes: ``--memory-budget-gb`` of this command, else ``$TAAF_MEMORY_BUDGET_GB``, else 8 GiB."""
    if _override_gb is not None:
        return int(_override_gb * GIB)
    env = os.environ.get(ENV_VAR)
    gb = parse_gb(env, ENV_VAR) if env not in (None, "") else DEFAULT_BUDGET_GB
    return int(gb * GIB)


@contextmanager
def override(gb: float | None) -> Iterator[None]:
    """Use ``gb`` GiB as the budget inside the block (None: leave it as the environment says)."""
    global _override_gb
    previous = _override_gb
    if gb is not None:
        _override_gb = parse_gb(gb, "--memory-budget-gb")
    try:
        yield
    finally:
        _override_gb = previous


def format_bytes(n: float) -> str:
    """``n`` bytes for a message: ``512 B``, ``3.0 MiB``, ``7.3 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # unreachable; keeps type checkers calm


def check(quantity: str, nbytes: float, detail: str = "") -> None:
    """Refuse (BudgetError) when ``nbytes`` for ``quantity`` exceed the budget; ``detail`` says
    how the size came about (e.g. ``"1000000001 steps x 1 x 1000 x 8 B"``)."""
    limit = budget_bytes()
    if not math.isfinite(nbytes) or nbytes > limit:
        how = f" ({detail})" if detail else ""
        raise BudgetError(f"{quantity} would need {format_bytes(nbytes)}{how}, over the memory budget of "
                          f"{format_bytes(limit)} (raise it with --memory-budget-gb or {ENV_VAR})")


__all__ = ["BudgetError", "DEFAULT_BUDGET_GB", "ENV_VAR", "budget_bytes", "check", "format_bytes", "override",
           "parse_gb"]
