"""Signals to ``taaf simulate --backend lava``, ``taaf-export --target loihi2`` and ``taaf study``
leave nothing behind (:mod:`hardware.isolation`, the study's worker pool): real runs, stopped
mid-run.

Each test starts the command in its own session, waits until Lava's processes exist in its
process tree (and have mapped their ``/dev/shm`` channel buffers), sends one signal to the
``taaf`` process only, and then checks that no process of the tree (tracked by pid + start
time, and by process group) is alive and that none of the shared-memory entries the run's
processes had mapped still exists. Attribution is by ``/proc/<pid>/maps``, not by a listing of
``/dev/shm``, so concurrent runs of other programs never make a test fail.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nir
import numpy as np
import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, prctl and /dev/shm")]

REPO = Path(__file__).resolve().parents[1]
STEPS = 200_000  # minutes of Lava on a small CPU: every run is stopped long before its end (40k once finished first)
WAIT_S = 60.0   # for Lava to start (taaf imports torch first)


def _command(script: str, module: str) -> list[str]:
    exe = Path(sys.executable).with_name(script)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


@pytest.fixture(scope="module")
def graph_files(tmp_path_factory):
    """Input(3) -> Affine -> LIF(4) -> Output, and STEPS steps of input for one sample."""
    folder = tmp_path_factory.mktemp("signals")
    rng = np.random.default_rng(0)
    f, n = np.float32, 4
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "a": nir.Affine(weight=rng.normal(size=(n, 3)).astype(f), bias=np.zeros(n, f)),
        "l": nir.LIF(tau=np.full(n, 2e-3, f), r=np.full(n, 20.0, f), v_leak=np.zeros(n, f),
                     v_threshold=np.full(n, 0.5, f), v_reset=np.zeros(n, f)),
        "out": nir.Output(output_type={"output": np.array([n])}),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("a", "l"), ("l", "out")], metadata={"dt": 1e-4})
    nir.write(str(folder / "g.nir"), graph)
    np.savez(folder / "in.npz", **{"in": rng.normal(size=(STEPS, 1, 3))})
    return folder


def _table() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (state, ppid, pgrp, start time) of every process."""
    rows = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            rows[int(entry)] = (fields[0], int(fields[1]), int(fields[2]), int(fields[19]))
    return rows


def _descendants(root: int, table) -> set[int]:
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, row in table.items() if row[1] in frontier and pid not in found}
        found |= frontier
    return found


def _mapped_shm(pids) -> set[str]:
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as fh:
                for line in fh:
                    line = line.rstrip()
                    if "/dev/shm/" in line and not line.endswith("(deleted)"):
                        names.add(line.split("/dev/shm/", 1)[1])
        except OSError:
            continue
    return names


class RunTree:
    """One command in its own session, and everything it started."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str]):
        self.log = open(cwd / "stderr.txt", "wb")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=self.log,
                                     start_new_session=True)
        self.seen: set[tuple[int, int]] = set()  # (pid, start time): immune to pid reuse
        self.groups: set[int] = {self.proc.pid}
        self.shm: set[str] = set()
        self.count = 0

    def poll(self) -> None:
        table = _table()
        found = _descendants(self.proc.pid, table)
        self.seen |= {(pid, table[pid][3]) for pid in found}
        self.groups |= {table[pid][2] for pid in found} - {os.getpgrp()}
        self.shm |= _mapped_shm(found)
        self.count = len(found)

    def wait_for_lava(self, min_procs: int, need_shm: bool, stable_s: float = 0.5) -> None:
        """Until at least ``min_procs`` descendants exist (and map /dev/shm buffers when
        ``need_shm``), their number unchanged for ``stable_s``."""
        start, last, since = time.monotonic(), -1, time.monotonic()
        while time.monotonic() - start < WAIT_S:
            self.poll()
            if self.count != last:
                last, since = self.count, time.monotonic()
            ready = self.count >= min_procs and (self.shm or not need_shm)
            if ready and time.monotonic() - since >= stable_s:
                return
            assert self.proc.poll() is None, f"the command ended (rc {self.proc.returncode}) before the signal:\n" \
                                             f"{self.stderr()}"
            time.sleep(0.05)
        pytest.fail(f"Lava did not start within {WAIT_S:.0f} s ({self.count} processes)")

    def alive(self) -> list[int]:
        return sorted(pid for pid, (state, _, pgrp, started) in _table().items()
                      if ((pid, started) in self.seen or pgrp in self.groups) and state not in "ZX")

    def shm_left(self) -> list[str]:
        return sorted(name for name in self.shm if os.path.exists(f"/dev/shm/{name}"))

    def stderr(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def clean_up(self) -> None:
        """After a failed check: do not leave our own mess on a shared machine."""
        for pid in self.alive():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for name in self.shm_left():
            try:
                os.unlink(f"/dev/shm/{name}")
            except OSError:
                pass
        self.log.close()


def _stop_and_check(run: RunTree, sig: int, expected_rc: int, immediate: bool) -> None:
    """Send ``sig``; the command must exit with ``expected_rc`` and leave no process and no
    shared memory; ``immediate``: already when it has exited, else within 5 s."""
    try:
        run.poll()
        os.kill(run.proc.pid, sig)
        rc = run.proc.wait(timeout=30)
        at_exit = (run.alive(), run.shm_left())
        deadline = time.monotonic() + 5.0
        while (run.alive() or run.shm_left()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.alive() == [], f"{len(run.alive())} processes of the run survived {signal.Signals(sig).name}"
        assert run.shm_left() == [], f"{len(run.shm_left())} /dev/shm entries of the run remain"
        assert rc == expected_rc, run.stderr()
        if immediate:
            assert at_exit == ([], []), f"still there when the command exited: {at_exit}"
    finally:
        run.clean_up()


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tmp").mkdir()
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(REPO)}


# SIGINT: taaf's KeyboardInterrupt handler ("interrupted", 130); SIGTERM/SIGHUP: 128 + signum after
# the watchdog cleaned up; SIGKILL: nothing runs in taaf, the child's PDEATHSIG and the reaper do it.
@pytest.mark.parametrize("sig, rc", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129),
                                     (signal.SIGKILL, -signal.SIGKILL)], ids=["TERM", "INT", "HUP", "KILL"])
def test_signal_to_taaf_simulate_on_lava_leaves_nothing(graph_files, tmp_path, sig, rc):
    cmd = [*_command("taaf", "taaf.cli"), "simulate", str(graph_files / "g.nir"), "--input",
           str(graph_files / "in.npz"), "--backend", "lava", "-o", str(tmp_path / "out.npz")]
    run = RunTree(cmd, tmp_path, _env(tmp_path))
    # the watchdog child, its reaper, the resource tracker, the SharedMemoryManager, 4+ actors
    run.wait_for_lava(min_procs=6, need_shm=True)
    assert len(run.shm) >= 4
    _stop_and_check(run, sig, rc, immediate=sig != signal.SIGKILL)
    assert not (tmp_path / "out.npz").exists()


def test_sigterm_to_taaf_export_loihi2_leaves_nothing(graph_files, tmp_path):
    """The netx build check runs in a watchdog child (with its reaper): SIGTERM while it builds."""
    out = tmp_path / "export"
    cmd = [*_command("taaf-export", "export.cli"), str(graph_files / "g.nir"), "--target", "loihi2", "-o", str(out)]
    run = RunTree(cmd, tmp_path, _env(tmp_path))
    run.wait_for_lava(min_procs=1, need_shm=False, stable_s=0.2)
    _stop_and_check(run, signal.SIGTERM, 143, immediate=True)
    assert not out.exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # its TemporaryDirectory was removed on the way out


@pytest.mark.parametrize("sig, rc", [(signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)], ids=["TERM", "KILL"])
def test_signal_to_taaf_study_leaves_no_worker_and_no_semaphore(tmp_path, sig, rc):
    """The study trains in a spawn pool (two workers, a resource tracker, named semaphores in
    /dev/shm); once the parent is stopped its workers must not train on for nobody."""
    out = tmp_path / "study"
    cmd = [*_command("taaf", "taaf.cli"), "study", "--quick", "--dataset", "av-digits", "--workers", "2",
           "--out", str(out)]
    run = RunTree(cmd, tmp_path, _env(tmp_path))
    run.wait_for_lava(min_procs=3, need_shm=True, stable_s=2.0)  # 2 workers + the resource tracker
    _stop_and_check(run, sig, rc, immediate=False)
    assert not (out / "study.json").exists()
