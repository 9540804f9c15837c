"""Warnings for the user (``warning: ...`` lines on stderr), held until a command's fate is known.

A warning says "this runs, but probably not as you meant" (a file that fails nir's type check,
a graph without dt, dt > tau). If the same command then fails, its contract is exactly one
error line on stderr (:mod:`taaf.boundary`), and the error already names the cause; so inside
:func:`held` warnings are queued, printed when the command succeeds (or earlier, where a long
run calls :func:`flush` before it starts), and dropped when it fails.

Outside :func:`held` (library use, tests calling builders directly) :func:`warn` prints at once.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_queue: list[str] | None = None


def warn(message: str) -> None:
    """Emit ``warning: MESSAGE`` on stderr, now or when the command succeeds (see the module)."""
    line = f"warning: {message}"
    if _queue is None:
        print(line, file=sys.stderr)
    elif line not in _queue:
        _queue.append(line)


def flush() -> None:
    """Print every queued warning now (a command about to start long work calls this, so the
    user sees e.g. a dt warning before waiting minutes for the result)."""
    if _queue:
        for line in _queue:
            print(line, file=sys.stderr)
        _queue.clear()


@contextmanager
def held() -> Iterator[None]:
    """Queue warnings for the body; print them if it returns, drop them if it raises."""
    global _queue
    outer, _queue = _queue, []
    try:
        yield
        flush()
    finally:
        _queue = outer


__all__ = ["flush", "held", "warn"]
