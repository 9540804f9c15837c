"""Output folders and files that every command writes into, checked before any work starts.

Output folders land whole or not at all (:func:`staged_output`): ``taaf train``, ``taaf demo``,
``taaf bench`` and ``taaf-export`` write every file into a hidden sibling
``.OUT.staging-XXXX`` of their ``--out`` folder; only when the command succeeds does that folder
replace OUT as a whole (OUT is renamed to ``.OUT.old-XXXX``, the staged folder to OUT, then the
old one is deleted). A failure, Ctrl-C or SIGTERM / SIGHUP deletes the staged folder and leaves
OUT as it was; a SIGKILL (or power loss) can leave at most a hidden ``.OUT.staging-`` or
``.OUT.old-`` sibling, which the next run into OUT deletes once it is an hour old.

Replacing a folder must never delete files taaf did not write: every staged folder carries a
marker file (:data:`MARKER`: the command, the time and the files), and :func:`check_output_dir`
refuses, before any work, an existing non-empty OUT without one, an OUT that contains one of the
command's inputs or the current folder, and a mount point. Everything inside a folder that
carries the marker belongs to taaf and is replaced with it (``make demo`` regenerates the
subfolders that later steps write into ``runs/demo``).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from taaf.errors import TaafError

MARKER = ".taaf-output.json"  # in every folder a command wrote through staged_output
STALE_AFTER_S = 3600.0  # hidden .staging- / .old- siblings older than this are a killed run's


def prepare_output_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise one clear :class:`TaafError`.

    The probe is a unique temporary file: under torchrun every rank checks the same folder.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaafError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise TaafError(f"output folder {out} is not writable: {exc.strerror or exc}") from None
    return out


def _nearest_existing(path: Path) -> Path:
    base = path
    while not base.exists() and base.parent != base:
        base = base.parent
    return base


def _probe_writable(base: Path, what: str) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise TaafError(f"cannot write {what}: {base} is not writable ({exc.strerror or exc})") from None


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file (after resolving links; hard links too)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output_file(path: str | Path, inputs=()) -> Path:
    """Fail before any work, creating nothing, when ``path`` could not be written as a file:
    it names one of ``inputs``, an existing folder or special file, lies under a regular file,
    or its nearest existing folder is not writable (a read-only folder, /proc)."""
    out = Path(path)
    for source in inputs:
        if source is not None and same_file(out, source):
            raise TaafError(f"an output path is one of the inputs: {out} (choose another file)")
    if out.is_dir():
        raise TaafError(f"cannot write {out}: it is a folder (name a file)")
    if out.exists() and not out.is_file():
        raise TaafError(f"cannot write {out}: it exists and is not a regular file")
    base = _nearest_existing(out.parent)
    if not base.is_dir():
        raise TaafError(f"cannot write {out}: {base} is not a folder")
    _probe_writable(base, str(out))
    return out


def check_output_dir(path: str | Path, inputs=()) -> Path:
    """Fail before any work, creating nothing, when ``path`` could not be created or written as
    a folder (it is a file or one of ``inputs``, lies under a regular file, or its parent is not
    writable), or could not be replaced as a whole by :func:`staged_output` (it holds files
    taaf did not write, one of ``inputs`` or the current folder, or is a mount point)."""
    out = Path(path)
    for source in inputs:
        if source is not None and same_file(out, source):
            raise TaafError(f"an output path is one of the inputs: {out} (choose another folder)")
    if out.exists() and not out.is_dir():
        raise TaafError(f"cannot use output folder {out}: it exists and is not a folder")
    base = _nearest_existing(out.parent if out.name else out.resolve().parent)
    if not base.is_dir():
        raise TaafError(f"cannot create output folder {out}: {base} is not a folder")
    check_replaceable(out, inputs)
    _probe_writable(base, f"output folder {out}")
    return out


def is_taaf_output(path: str | Path) -> bool:
    """True when ``path`` is a folder that a taaf command wrote (it carries :data:`MARKER`)."""
    return (Path(path) / MARKER).is_file()


def check_replaceable(path: str | Path, inputs=()) -> None:
    """Refuse (:class:`TaafError`) an output folder that :func:`staged_output` must not replace:
    an existing non-empty folder without :data:`MARKER`, one that holds one of ``inputs`` or the
    current folder, a mount point, or the root of the file system. A new or empty folder passes."""
    out = Path(path)
    if not out.is_dir():
        return
    real = out.resolve()
    if real.parent == real or os.path.ismount(real):
        raise TaafError(f"cannot replace output folder {out}: it is a mount point; choose a folder inside it")
    if any(out.iterdir()) and not is_taaf_output(out):
        raise TaafError(f"{out} holds files taaf did not write; choose a new or empty folder")
    held = [(Path(s), f"the input {s}") for s in inputs if s is not None]
    with contextlib.suppress(OSError):
        held.append((Path.cwd(), "the current folder"))
    for inside, what in held:
        if real == inside.resolve() or real in inside.resolve().parents:
            raise TaafError(f"output folder {out} holds {what}, and it is replaced as a whole; "
                            f"choose another folder")


@contextlib.contextmanager
def staged_output(path: str | Path, command: str) -> Iterator[Path]:
    """Yield a fresh hidden sibling folder of ``path`` to write every output into; on a normal
    exit, mark it (:data:`MARKER`) and let it replace ``path`` as a whole (renames on one file
    system). On any exception, KeyboardInterrupt or SystemExit (SIGTERM / SIGHUP raise one while
    the block runs, where they had their default action) the staged folder is deleted and
    ``path`` is left untouched, and parent folders created here are removed again."""
    out = Path(path)
    check_replaceable(out)  # again, right before: never replace a folder that is not ours
    if out.is_symlink():
        out = out.resolve()  # replace the folder the link names, keep the link
    created = _make_parents(out.parent)
    committed = False
    stage = None
    try:
        _clean_stale(out)
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp's 0o700 is not what a plain mkdir makes
        with signals_as_exit():
            yield stage
            _write_marker(stage, command)
            old = _swap(stage, out)
            committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if not committed:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
            _remove_empty(created)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, deepest first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for f in reversed(missing):
        f.mkdir(exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; stops at the first that is not empty
        try:
            folder.rmdir()
        except OSError:
            break


def _clean_stale(out: Path) -> None:
    """Delete ``.OUT.staging-*`` / ``.OUT.old-*`` siblings older than :data:`STALE_AFTER_S`
    (left by a killed run; a live run's staging folder is younger). An ``.old-`` folder stays
    while OUT is missing: a kill between the two renames of the swap left the only copy there."""
    now = time.time()
    for kind in ("staging", "old") if out.exists() else ("staging",):
        for left in out.parent.glob(f".{out.name}.{kind}-*"):
            try:
                if left.is_dir() and not left.is_symlink() and now - left.stat().st_mtime > STALE_AFTER_S:
                    shutil.rmtree(left, ignore_errors=True)
            except OSError:
                pass


def _write_marker(stage: Path, command: str) -> None:
    files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file() and p.name != MARKER)
    record = {"format": "taaf-output/1", "command": command,
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
    (stage / MARKER).write_text(json.dumps(record, indent=2) + "\n")


def _swap(stage: Path, out: Path) -> Path | None:
    """Rename ``out`` aside and ``stage`` into its place with the trapped signals blocked, so
    the two renames are never separated by an interruption; returns the old folder to delete."""
    old = None
    with _signals_blocked():
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            try:
                os.rename(out, old / "x")  # a fresh name inside a fresh folder: no race on the name
            except OSError:
                old.rmdir()
                raise
        try:
            os.rename(stage, out)
        except OSError:
            if old is not None and not out.exists():
                os.rename(old / "x", out)  # put the previous run back
                old.rmdir()
            raise
    return old


_TRAPPED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_exit(signum, frame):  # noqa: ARG001 - signal handler signature
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def signals_as_exit() -> Iterator[None]:
    """SIGTERM / SIGHUP with their default (kill) action raise SystemExit instead while the
    block runs, so its clean-up runs (a staged folder removed, a worker pool terminated); other
    handlers are left alone."""
    installed = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _TRAPPED:
            if signal.getsignal(sig) == signal.SIG_DFL:
                installed[sig] = signal.signal(sig, _raise_exit)
    try:
        yield
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP held back (delivered afterwards) while the block runs."""
    sigs = {signal.SIGINT, *_TRAPPED}
    blocked = hasattr(signal, "pthread_sigmask")
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, sigs) if blocked else None
    try:
        yield
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
