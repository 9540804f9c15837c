"""Run a function in a forked child in its own process group, under a watchdog.

Lava hangs, rather than raising, when a process model fails in its child process.
:func:`hardware.loihi.lava_runtime.run_with_watchdog` therefore validates every parameter first (:func:`validate_network`:
integer dtypes and register ranges via :mod:`~hardware.loihi.fixed_point`, shapes, delays)
and runs Lava in a forked child process that starts its own process group (``setsid``); the
child watches Lava's actor processes while it streams the recordings out, and the parent
enforces a wall-clock timeout. On any failure the whole group is killed (SIGKILL), reaped, and a
:class:`~hardware.loihi.LavaRunError` (:class:`~hardware.loihi.LavaTimeoutError`) is raised;
:func:`group_members` lets tests check that nothing is left.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.errors import LavaMappingError, LavaRunError, LavaTimeoutError

DEFAULT_TIMEOUT_S = 600.0


def _child_main(conn, fn, args) -> None:
    os.setsid()  # own process group: the parent can kill Lava's whole process tree at once
    # multiprocessing fixed this child's start method; Lava sets it again when imported
    mp.set_start_method(None, force=True)
    try:
        result = fn(*args)
        conn.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - report everything, the parent decides
        msg = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (LavaRunError, LavaMappingError)):
            msg += "\n" + traceback.format_exc(limit=6)
        with contextlib.suppress(Exception):
            conn.send(("error", msg))
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        os._exit(0)


def _proc_table() -> list[tuple[int, str, int, int]]:
    """(pid, state, ppid, pgrp) of every process, from /proc."""
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        rows.append((int(entry), fields[0], int(fields[1]), int(fields[2])))
    return rows


def group_members(pgid: int, include_zombies: bool = False) -> list[int]:
    """Processes in process group ``pgid`` (live ones; with ``include_zombies`` also zombies)."""
    return [pid for pid, state, _, pgrp in _proc_table()
            if pgrp == pgid and (include_zombies or state not in ("Z", "X"))]


def _set_subreaper(on: bool) -> bool:
    """PR_SET_CHILD_SUBREAPER: orphans of the killed group come back to us to be reaped."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _kill_group(pgid: int, grace_s: float = 5.0) -> list[int]:
    """SIGKILL the group, reap the orphans that came back to us (not the group leader: that is
    multiprocessing's child, joined by it); returns pids still alive after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    me = os.getpid()
    while True:
        waiting = False
        for pid, state, ppid, pgrp in _proc_table():
            if pgrp != pgid or pid == pgid:
                continue
            if state in ("Z", "X") and ppid == me:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            elif state not in ("Z", "X") or ppid in (pgid, me):
                waiting = True  # still dying, or about to be handed to us
        if not waiting or time.monotonic() > deadline:
            return group_members(pgid)
        time.sleep(0.02)


def _survivors(pgid: int, grace_s: float) -> list[int]:
    """Wait up to ``grace_s`` for the group to vanish, reaping the zombies handed to us (we are
    the child subreaper, so late orphans of the killed group arrive here); -> live survivors."""
    deadline, me = time.monotonic() + grace_s, os.getpid()
    while True:
        members = [(pid, state, ppid) for pid, state, ppid, pgrp in _proc_table() if pgrp == pgid]
        for pid, state, ppid in members:
            if state in ("Z", "X") and ppid == me:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
        if not members or time.monotonic() > deadline:
            return group_members(pgid)
        time.sleep(0.05)


@dataclass
class WatchdogInfo:
    """What the last watchdog run did (for tests and benchmarks)."""

    pgid: int = 0
    seconds: float = 0.0
    leftover: list[int] = field(default_factory=list)


LAST_RUN = WatchdogInfo()


def run_in_watchdog(fn: Callable, *args, timeout: float = DEFAULT_TIMEOUT_S):
    """Run ``fn(*args)`` (which uses Lava) in a forked child in its own process group; return
    its result, or raise :class:`LavaRunError` / :class:`LavaTimeoutError` after killing the
    whole group. The result travels through a pipe: it must be picklable (no Lava objects).
    Not thread-safe (it toggles this process's child-subreaper flag while it runs)."""
    if not (timeout and timeout > 0):
        raise LavaMappingError(f"watchdog timeout must be positive, got {timeout}")
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    subreaper = _set_subreaper(True)
    start = time.monotonic()
    proc = ctx.Process(target=_child_main, args=(child_conn, fn, args), daemon=False)
    status, payload = None, None
    try:
        proc.start()
        child_conn.close()
        deadline = start + timeout
        while True:
            if parent_conn.poll(0.1):
                try:
                    status, payload = parent_conn.recv()
                except EOFError:
                    status, payload = "error", "the Lava runner exited without a result"
                break
            if not proc.is_alive():
                status, payload = "error", f"the Lava runner died (exit code {proc.exitcode}) without a result"
                break
            if time.monotonic() > deadline:
                status, payload = "timeout", None
                break
    finally:
        if proc.pid is not None:
            proc.join(timeout=10.0 if status == "ok" else 0.5)
            _kill_group(proc.pid)
            with contextlib.suppress(Exception):
                proc.join(timeout=5.0)
            # Count survivors only after the group leader is reaped: a SIGKILLed leader that is
            # still dying shows as a live member (a flaky false alarm under load otherwise).
            leftover = _survivors(proc.pid, grace_s=5.0)
            LAST_RUN.pgid, LAST_RUN.leftover = proc.pid, leftover
        LAST_RUN.seconds = time.monotonic() - start
        parent_conn.close()
        if subreaper:
            _set_subreaper(False)
    if status == "ok":
        return payload
    if status == "timeout":
        raise LavaTimeoutError(f"Lava did not finish within {timeout:.0f} s (a process model probably failed "
                               f"in its child process); all its processes were killed")
    raise LavaRunError(f"Lava run failed: {payload}")


__all__ = ["DEFAULT_TIMEOUT_S", "LAST_RUN", "WatchdogInfo", "group_members", "run_in_watchdog"]
