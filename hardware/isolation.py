"""Run a function in a forked child in its own process group, under a watchdog.

Lava hangs, rather than raising, when a process model fails in its child process.
:func:`hardware.loihi.lava_runtime.run_with_watchdog` therefore validates every parameter first (:func:`validate_network`:
integer dtypes and register ranges via :mod:`~hardware.loihi.fixed_point`, shapes, delays)
and runs Lava in a forked child process that starts its own process group (``setsid``); the
child watches Lava's actor processes while it streams the recordings out, and the parent
enforces a wall-clock timeout. On any failure the whole group is killed (SIGKILL), reaped, and a
:class:`~hardware.loihi.LavaRunError` (:class:`~hardware.loihi.LavaTimeoutError`) is raised;
:func:`group_members` lets tests check that nothing is left.

Who is who: the *parent* calls :func:`run_in_watchdog`; the *child* (the group leader) runs
``fn``; Lava forks its actors, its SharedMemoryManager server and multiprocessing's resource
tracker from the child, so they all live in the child's process group; a *reaper*, forked by
the child before ``fn`` starts, sits in the same group and does nothing until the child dies.

Guarantees (Linux; ``tests/test_signals.py`` checks them on real ``taaf simulate`` runs)
--------------------------------------------------------------------------------------
* **SIGTERM, SIGHUP, SIGINT to the parent** (``kill``, ``timeout``, a closed terminal, Ctrl-C):
  while :func:`run_in_watchdog` waits, these three only note the signal (handlers installed
  for the call and restored after it; a signal set to SIG_IGN, e.g. under ``nohup``, stays
  ignored; only when called from the main thread). The wait loop sees the signal within 0.1 s,
  kills the whole group (SIGKILL), reaps it, unlinks the run's shared memory (below), restores
  the handlers and then passes the signal on: to the previous Python handler if there was one
  (SIGINT: Python's ``KeyboardInterrupt``, so ``taaf`` prints "interrupted" and exits 130), else
  by raising ``SystemExit(128 + signum)`` (SIGTERM: exit 143, SIGHUP: 129), so ``finally``
  blocks and context managers of the caller still run (a caller that swallows SystemExit keeps running,
  without Lava). By the time the parent has exited, nothing of the run is left (measured: exit
  about 1 s after the signal, with 41 Lava processes and 124 segments of a TAAF checkpoint run).
  Signals that arrive outside :func:`run_in_watchdog` act as usual: no Lava process exists then.
* **The parent dies any other way** (SIGKILL, a crash, the OOM killer): the child has
  ``PR_SET_PDEATHSIG = SIGKILL`` (set right after the fork, then ``getppid()`` is checked to close
  the race with a parent that died before), so the kernel kills it. PDEATHSIG covers direct
  children only; Lava's processes are the child's children. The reaper covers them: it polls
  ``getppid()`` every 50 ms and, once the child is gone (for whatever reason, including a
  normal exit), SIGKILLs every other member of the group, unlinks the run's shared memory and
  kills itself with the group: nothing of the run is alive a few tenths of a second after the
  parent's death (measured 0.17-0.35 s on a loaded 2-core machine). The orphans' zombies are
  reaped by init (or the nearest subreaper).
  The reaper holds no descriptor but the registry (below) and ``/dev/null``, so it never keeps
  a pipe of the parent's open. If the reaper itself is SIGKILLed first, this guarantee is lost.
* **The child never blocks on a parent that is gone**: it closes its copy of the parent's read
  end of the result pipe, so a send fails with EPIPE (and it is SIGKILLed by PDEATHSIG anyway).
* **Failures and timeouts** as before: the parent SIGKILLs the group (and the leader by pid, in
  case it has not called ``setsid`` yet), reaps it as the child subreaper, then unlinks.
* **Shared memory**: in the child, ``multiprocessing.shared_memory.SharedMemory`` (what Lava's
  SharedMemoryManager creates its ``/dev/shm/psm_*`` channel buffers with) and the resource
  tracker's registration of named semaphores (``/dev/shm/sem.*``; none under the fork start
  method, which unlinks them at once) are patched to append each *created* name to a
  per-run registry: an anonymous memfd (append-only, no file system entry) inherited by the
  child, the reaper and every process Lava forks. After the group is killed, the parent (or the
  reaper) unlinks exactly these names if they still exist; entries of other runs or programs are
  never touched. A segment created in the last microseconds before a SIGKILL of its creator,
  between ``shm_open`` and the registry write, is not recorded (and would stay).
* Not covered: SIGSTOP/SIGTSTP (nothing dies); the parent ignoring SIGHUP (the run goes on, as
  asked); the reaper being SIGKILLed on its own before the child dies (then a SIGKILL of the
  parent orphans Lava's processes again); processes that leave the group (``setsid``; Lava's
  do not). A signal sent to the child's group directly (``kill -- -PGID``) kills the run: the
  parent reports a LavaRunError and still unlinks the shared memory. Linux only (prctl, /proc).
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.errors import LavaMappingError, LavaRunError, LavaTimeoutError

DEFAULT_TIMEOUT_S = 600.0
TRAPPED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_REAPER_POLL_S = 0.05


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# --- the registry of the run's shared-memory names ------------------------------------------------

def _new_registry() -> int:
    """An anonymous append-only file (memfd; a deleted temp file where memfd is missing)."""
    try:
        fd = os.memfd_create("taaf-watchdog-ipc", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        import tempfile

        with tempfile.TemporaryFile() as fh:
            fd = os.dup(fh.fileno())
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    return fd


def _record(fd: int, kind: str, name: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, f"{kind} {name}\n".encode())  # one short O_APPEND write: never interleaved


def _recorded(fd: int) -> list[tuple[str, str]]:
    try:
        data = os.pread(fd, os.fstat(fd).st_size, 0)
    except OSError:
        return []
    rows = (line.partition(" ") for line in data.decode(errors="replace").splitlines())
    return list(dict.fromkeys((kind, name) for kind, _, name in rows if kind in ("shm", "sem") and name))


def _unlink_recorded(fd: int) -> list[tuple[str, str]]:
    """Unlink the recorded names that still exist; -> those removed."""
    import _multiprocessing
    import _posixshmem

    removed = []
    for kind, name in _recorded(fd):
        try:
            (_posixshmem.shm_unlink if kind == "shm" else _multiprocessing.sem_unlink)(name)
        except OSError:
            continue  # already gone (Lava's own shutdown unlinked it)
        removed.append((kind, name))
    return removed


def _forget_in_tracker(removed: list[tuple[str, str]]) -> None:
    """If this process had a resource tracker when it forked, the child registered with it: tell
    it about what we unlinked, or it warns about 'leaked' objects when this process exits."""
    from multiprocessing import resource_tracker

    if not removed or getattr(resource_tracker._resource_tracker, "_fd", None) is None:
        return
    for kind, name in removed:
        with contextlib.suppress(Exception):
            resource_tracker.unregister(name, "shared_memory" if kind == "shm" else "semaphore")


def _record_created_names(fd: int) -> None:
    """In the child: append every shared-memory segment / named semaphore created from now on
    (also by the processes Lava forks: they inherit the patch and the descriptor)."""
    from multiprocessing import resource_tracker, shared_memory

    init = shared_memory.SharedMemory.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if self._flags & os.O_EXCL:  # created here (O_CREAT | O_EXCL), not attached
            _record(fd, "shm", self._name)

    register = resource_tracker.register

    def recording_register(name, rtype):
        if rtype == "semaphore":  # registered by its creator only (shared memory also on attach)
            _record(fd, "sem", name)
        return register(name, rtype)

    shared_memory.SharedMemory.__init__ = recording_init
    resource_tracker.register = recording_register


# --- signals, parent death, the reaper -------------------------------------------------------------

class _SignalTrap:
    """In the parent, while it waits: TRAPPED_SIGNALS only note the first signal."""

    def __init__(self) -> None:
        self.signum = 0
        self.saved: dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in TRAPPED_SIGNALS:
            old = signal.getsignal(sig)
            if old is None or old == signal.SIG_IGN:  # set outside Python, or ignored on purpose
                continue
            signal.signal(sig, self._note)
            self.saved[sig] = old

    def _note(self, signum, frame) -> None:
        self.signum = self.signum or signum

    def restore(self) -> None:
        for sig, old in self.saved.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, old)

    def pass_on(self) -> None:
        """Deliver the noted signal as it would have been without the trap: the previous Python
        handler (SIGINT: KeyboardInterrupt), else ``SystemExit(128 + signum)``."""
        old = self.saved.get(self.signum)
        name = signal.Signals(self.signum).name
        if callable(old):
            old(self.signum, None)
            raise LavaRunError(f"the Lava run was stopped by {name}; all its processes were killed")
        raise SystemExit(128 + self.signum)


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``),
    and exit now if ``parent_pid`` is already gone: a child whose parent was killed must not go
    on computing for nobody."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)


def _start_reaper(leader: int, registry: int) -> None:
    if os.fork() == 0:
        try:
            _reaper_main(leader, registry)
        finally:
            os._exit(0)


def _reaper_main(leader: int, registry: int) -> None:
    """Wait for the group leader to die, then kill the rest of the group, unlink the run's
    shared memory and die with the group."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in [int(n) for n in os.listdir("/proc/self/fd")]:  # keep no pipe of anybody's open
        if fd not in (registry, devnull):
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)
    while os.getppid() == leader:
        time.sleep(_REAPER_POLL_S)
    me, pgid = os.getpid(), os.getpgrp()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        others = [pid for pid in group_members(pgid) if pid != me]
        if not others:
            break
        for pid in others:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    _unlink_recorded(registry)
    os.killpg(pgid, signal.SIGKILL)


def _child_main(conn, parent_conn, parent_pid, registry, trap, fn, args) -> None:
    os.setsid()  # own process group: the parent can kill Lava's whole process tree at once
    die_with_parent(parent_pid)
    trap.restore()  # the parent's handlers as they were: the trap only serves the parent
    parent_conn.close()  # hold the write end only: a send fails (EPIPE) once the parent is gone
    _start_reaper(os.getpid(), registry)
    _record_created_names(registry)
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


# --- the process table, killing and reaping the group ---------------------------------------------

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
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def _kill_group(pgid: int, grace_s: float = 5.0) -> list[int]:
    """SIGKILL the group (and its leader, our child, by pid: it may not have called setsid yet),
    reap the orphans that came back to us (not the group leader: that is multiprocessing's
    child, joined by it); returns pids still alive after ``grace_s``."""
    for kill, target in ((os.killpg, pgid), (os.kill, pgid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(target, signal.SIGKILL)
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
    """What the last watchdog run did (for tests and benchmarks): its group, duration, live
    survivors after the kill, the shared-memory names it unlinked and the signal that stopped it."""

    pgid: int = 0
    seconds: float = 0.0
    leftover: list[int] = field(default_factory=list)
    unlinked: list[str] = field(default_factory=list)
    signum: int = 0


LAST_RUN = WatchdogInfo()


def run_in_watchdog(fn: Callable, *args, timeout: float = DEFAULT_TIMEOUT_S):
    """Run ``fn(*args)`` (which uses Lava) in a forked child in its own process group; return
    its result, or raise :class:`LavaRunError` / :class:`LavaTimeoutError` after killing the
    whole group. The result travels through a pipe: it must be picklable (no Lava objects).
    SIGTERM/SIGHUP/SIGINT meanwhile stop the run cleanly and are then passed on (SystemExit
    128 + signum, or the previous handler); see the module docstring for every guarantee.
    Not thread-safe (it toggles this process's child-subreaper flag while it runs)."""
    if not (timeout and timeout > 0):
        raise LavaMappingError(f"watchdog timeout must be positive, got {timeout}")
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    registry = _new_registry()
    trap = _SignalTrap()  # before the fork: no window in which a signal would kill us alone
    subreaper = _set_subreaper(True)
    start = time.monotonic()
    proc = ctx.Process(target=_child_main, daemon=False,
                       args=(child_conn, parent_conn, os.getpid(), registry, trap, fn, args))
    status, payload = None, None
    LAST_RUN.unlinked, LAST_RUN.signum = [], 0
    try:
        proc.start()
        child_conn.close()
        deadline = start + timeout
        while True:
            if trap.signum:
                status = "signal"
                break
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
            wait_s = 10.0 if status == "ok" else 0.5
            while wait_s > 0 and proc.is_alive() and not trap.signum:  # a signal cuts it short
                proc.join(timeout=0.05)
                wait_s -= 0.05
            _kill_group(proc.pid)
            with contextlib.suppress(Exception):
                proc.join(timeout=5.0)
            # Count survivors only after the group leader is reaped: a SIGKILLed leader that is
            # still dying shows as a live member (a flaky false alarm under load otherwise).
            leftover = _survivors(proc.pid, grace_s=5.0)
            LAST_RUN.pgid, LAST_RUN.leftover = proc.pid, leftover
        removed = _unlink_recorded(registry)
        _forget_in_tracker(removed)
        LAST_RUN.unlinked = [name for _, name in removed]
        os.close(registry)
        LAST_RUN.seconds = time.monotonic() - start
        parent_conn.close()
        if subreaper:
            _set_subreaper(False)
        trap.restore()
    if trap.signum:
        LAST_RUN.signum = trap.signum
        trap.pass_on()
    if status == "ok":
        return payload
    if status == "timeout":
        raise LavaTimeoutError(f"Lava did not finish within {timeout:.0f} s (a process model probably failed "
                               f"in its child process); all its processes were killed")
    raise LavaRunError(f"Lava run failed: {payload}")


__all__ = ["DEFAULT_TIMEOUT_S", "LAST_RUN", "TRAPPED_SIGNALS", "WatchdogInfo", "die_with_parent", "group_members",
           "run_in_watchdog"]
