"""Throughput of the batched Loihi emulator (``loihi-emu``) next to Lava's CPU backend
(``lava-fixed``) on the exported TAAF model, measured side by side in one run. Prints tables.

    python -m benchmarks.emulator_throughput [--checkpoint runs/demo/model.pt] [--lava-batch 100]
                                             [--busy 1] [--settle 70]

1. The whole AV-Digits test split (600 samples) in one call per engine and thread count
   (the thread policy's choice, 1, and all available cores), first, on the quiet machine.
2. samples/s vs batch size (1, 100, 600) at the policy's threads.
3. Lava fixed point: one batched run of ``--lava-batch`` test samples (start-up included, as
   for any user of ``run_lava``), measured after the emulator (its worker processes linger in
   the load average); both engines' outputs on that batch are compared with Lava's, every spike
   and readout; then the speed-ups of sections 1 and 2 against the targets (>= 5,000 samples/s
   and >= 1000x Lava on 2 cores).
4. The thread policy under load: ``--busy`` background ``while True: pass`` processes, a wait of
   ``--settle`` s so the 1-minute load average sees them, and section 1 again (0 skips it).
5. CUDA (torch engine) when a device is present; else "not measured".

Every call goes through the backend entry points (``run_lava`` / ``emulate_model``: input
layout, encoding, unpacking into a ``ChipRun``). Timings are medians of ``--repeats`` calls after
a warm-up, with the load averages (1, 5, 15 min) printed next to them: shared machines make
single timings noisy.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import median_time, model_or_default
from hardware.loihi.emulator import LoihiEmulator, emulate_model
from hardware.loihi.engines import available_cores, default_threads, int8_matmul_works
from hardware.loihi.lava_backend import lava_program, run_lava
from taaf.data import load_dataset

TARGET_SPS, TARGET_X = 5000, 1000


def load() -> str:
    """The load averages, for printing next to a timing."""
    try:
        return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load n/a"


def same_run(a, b) -> bool:
    """Whether two ChipRuns are identical in every spike and readout."""
    return (sorted(a.spikes) == sorted(b.spikes) and sorted(a.readouts) == sorted(b.readouts)
            and all(np.array_equal(a.spikes[k], b.spikes[k]) for k in a.spikes)
            and all(np.array_equal(a.readouts[k], b.readouts[k]) for k in a.readouts))


def busy_processes(count: int) -> list[subprocess.Popen]:
    """``count`` background CPU burners (``python -c "while True: pass"``); stop them with :func:`stop`."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop(procs: list[subprocess.Popen]) -> None:
    """Terminate the processes :func:`busy_processes` started (by their own handles)."""
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=10)


def whole_split(model, split, emulators, repeats) -> dict[str, float]:
    """The whole split in one call per emulator: prints and returns {label: samples/s}."""
    rows = {}
    for label, em in emulators.items():
        t = median_time(lambda e=em: emulate_model(model, split.audio, split.image, True, emulator=e), repeats)
        rows[label] = len(split) / t
        print(f"   {label:18s} {t * 1e3:8.1f} ms = {rows[label]:9.1f} samples/s  [{load()}]")
    return rows


def speedups(rows: dict[str, float], lava_sps: float | None) -> None:
    """Print samples/s, the speed-up over Lava and the targets of every row."""
    for label, sps in rows.items():
        ratio = sps / lava_sps if lava_sps else float("nan")
        ok = "meets" if sps >= TARGET_SPS and (not lava_sps or ratio >= TARGET_X) else "MISSES"
        print(f"   {label:18s} {sps:9.1f} samples/s = {ratio:7.0f}x lava-fixed  "
              f"({ok} >= {TARGET_SPS} samples/s and >= {TARGET_X}x)")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: time the Loihi emulator engines against Lava's CPU backend and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/model.pt"))
    parser.add_argument("--lava-batch", type=int, default=100, help="samples in the one Lava run (0: skip Lava)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100, 600])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--busy", type=int, default=1, help="background busy loops for section 4 (0: skip)")
    parser.add_argument("--settle", type=float, default=70.0, help="seconds for the load average to rise")
    args = parser.parse_args(argv)

    model, spec, source = model_or_default(args.checkpoint)
    split = load_dataset(spec).test
    cores = available_cores()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, {cores} "
          f"available cores; torch {torch.__version__}, numpy {np.__version__}; int8 products: "
          f"{'torch._int_mm' if int8_matmul_works() else 'unavailable (float products)'}")
    print(f"model: {source}; T = {model.config.n_steps}; test split of {spec.dataset} ({spec.preset}), "
          f"{len(split)} samples")
    program = lava_program(model, True)
    emulators = {f"{engine} policy": LoihiEmulator(program, engine) for engine in ("numpy", "torch")}
    emulators.update({f"{engine} {n} thread{'s' * (n > 1)}": LoihiEmulator(program, engine, threads=n)
                      for engine in ("numpy", "torch") for n in sorted({1, cores})})

    for em in emulators.values():  # warm-up: first calls allocate the work arrays
        emulate_model(model, split.audio, split.image, True, emulator=em)
    print(f"\n1. the whole test split ({len(split)} samples) in one call (median of {args.repeats}); "
          f"thread policy now: {default_threads()}  [{load()}]")
    quiet = whole_split(model, split, emulators, args.repeats)

    print("\n2. samples/s vs batch size (thread policy)")
    by_batch = {}
    for batch in args.batch:
        batch = min(batch, len(split))
        audio, image = split.audio[:batch], split.image[:batch]
        reps = args.repeats if batch > 10 else 5 * args.repeats
        for e in ("numpy", "torch"):
            t = median_time(lambda em=emulators[f"{e} policy"]: emulate_model(model, audio, image, True, emulator=em),
                            reps)
            by_batch[f"{e} batch {batch}"] = batch / t
        print(f"   batch {batch:>4}: numpy {by_batch[f'numpy batch {batch}']:9.1f}, torch "
              f"{by_batch[f'torch batch {batch}']:9.1f} samples/s  [{load()}]")

    lava_sps = None
    if args.lava_batch:
        n = min(args.lava_batch, len(split))
        audio, image = split.audio[:n], split.image[:n]
        t0 = time.perf_counter()
        lava = run_lava(model, audio, image, fixed=True)
        lava_s = time.perf_counter() - t0
        lava_sps = n / lava_s
        same = {e: same_run(emulate_model(model, audio, image, True, emulator=emulators[f"{e} policy"]), lava)
                for e in ("numpy", "torch")}
        print(f"\n3. lava-fixed: one batched run of {n} samples in {lava_s:.1f} s = {lava_sps:.2f} samples/s  "
              f"[{load()}]; emulator output vs Lava (every spike and readout): "
              + ", ".join(f"{e} {'IDENTICAL' if ok else 'DIFFERENT'}" for e, ok in same.items()))
    print("   speed-ups over lava-fixed (sections 1 and 2):")
    speedups({**quiet, **by_batch}, lava_sps)

    if args.busy:
        print(f"\n4. under load: {args.busy} background busy loop(s), measured after {args.settle:.0f} s")
        procs = busy_processes(args.busy)
        try:
            time.sleep(args.settle)
            print(f"   thread policy now: {default_threads()}  [{load()}]")
            speedups(whole_split(model, split, emulators, args.repeats), lava_sps)
        finally:
            stop(procs)

    if torch.cuda.is_available():
        em = LoihiEmulator(program, "torch", "cuda")
        print(f"\n5. cuda ({torch.cuda.get_device_name()}): samples/s, test samples repeated to the batch size")
        for batch in (600, 6000):
            reps = -(-batch // len(split))
            audio, image = np.concatenate([split.audio] * reps)[:batch], np.concatenate([split.image] * reps)[:batch]

            def run(audio=audio, image=image):
                emulate_model(model, audio, image, True, emulator=em)
                torch.cuda.synchronize()

            print(f"   batch {batch:>5}: {batch / median_time(run, args.repeats):10.1f} samples/s")
    else:
        print("\n5. cuda: not measured (no CUDA device)")


if __name__ == "__main__":
    main()
