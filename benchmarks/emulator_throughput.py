"""Throughput of the batched Loihi emulator (``loihi-emu``) next to Lava's CPU backend
(``lava-fixed``), on the exported TAAF model, measured side by side in one run. Prints tables.

    python -m benchmarks.emulator_throughput [--checkpoint runs/demo/model.pt] [--lava-batch 100]

1. samples/s at batch sizes 1, 100, 600 (AV-Digits test samples): Lava fixed point (one batched
   run of ``--lava-batch`` samples: its best throughput, start-up included, as for any user of
   ``run_lava``), the emulator with numpy and with torch on the CPU (torch at its configured
   thread count and at 1 thread), and the speed-ups over Lava; every call goes through the
   backend entry points (``run_lava`` / ``emulate_model``: input layout, encoding, unpacking).
   The emulator's fixed-point outputs are checked to be identical to Lava's on the Lava batch.
2. the whole test split (600 samples) in one call per engine (target: < 10 s and >= 100x Lava).
3. cost per sample vs batch size and vs T (T in 4, 8, 16, 32; an untrained model of the same
   architecture with random inputs in the documented ranges: the emulator's cost does not depend
   on the weights' values or the firing rates).
4. CUDA (torch, int64 state) when a device is present.

Timings are medians of ``--repeats`` runs after a warm-up; the machine's load average is
printed next to them (shared machines make single timings noisy).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from hardware.loihi.emulator import emulate_model, model_emulator
from hardware.loihi.lava_backend import run_lava
from benchmarks.common import median_time, model_or_default
from taaf.data import load_dataset
from taaf.model.network import AVSpikingNet


def _load() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average: n/a"


class _Threads:
    """torch.set_num_threads for a block."""

    def __init__(self, n: int):
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self):
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


def _random_inputs(model: AVSpikingNet, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    cfg, rng = model.config, np.random.default_rng(seed)
    audio = np.clip(rng.normal(0, 2, (batch, cfg.n_steps, cfg.audio.in_features)), -7.5, 7.5)
    image = rng.uniform(0, 1, (batch, *cfg.visual.in_shape))
    return audio, image


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: time the Loihi emulator engines against Lava's CPU backend and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/model.pt"))
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 100, 600])
    parser.add_argument("--lava-batch", type=int, default=100, help="samples in the one Lava run (0: skip Lava)")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    model, spec, source = model_or_default(args.checkpoint)
    split = load_dataset(spec).test
    threads = torch.get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({threads} threads), numpy {np.__version__}")
    print(f"model: {source}; T = {model.config.n_steps}; test split of {spec.dataset} ({spec.preset}), "
          f"{len(split)} samples")
    print(f"{_load()} (before)")
    emulators = {"numpy": model_emulator(model, fixed=True), "torch": model_emulator(model, fixed=True, engine="torch")}

    def emu(engine, audio, image):
        return emulate_model(model, audio, image, fixed=True, emulator=emulators[engine])

    lava_sps = None
    if args.lava_batch:
        n = min(args.lava_batch, len(split))
        audio, image = split.audio[:n], split.image[:n]
        t0 = time.perf_counter()
        lava = run_lava(model, audio, image, fixed=True)
        lava_s = time.perf_counter() - t0
        lava_sps = n / lava_s
        got = emu("numpy", audio, image)
        same = all(np.array_equal(got.spikes[k], v) for k, v in lava.spikes.items()) and \
            all(np.array_equal(got.readouts[k], v) for k, v in lava.readouts.items())
        print(f"lava-fixed: one batched run of {n} samples in {lava_s:.1f} s = {lava_sps:.2f} samples/s; "
              f"emulator output {'IDENTICAL' if same else 'DIFFERENT'} (every spike and readout)  [{_load()}]")
    print()
    print(f"1. samples/s (fixed point, AV-Digits test samples; median of {args.repeats})")
    head = (f"{'batch':>6} {'lava':>9} {'numpy':>10} {'torch':>10} {'torch 1thr':>11} "
            f"{'numpy/lava':>11} {'torch/lava':>11} {'torch1/lava':>12}")
    print(head)
    for batch in args.batch:
        batch = min(batch, len(split))
        audio, image = split.audio[:batch], split.image[:batch]
        reps = args.repeats if batch > 1 else max(args.repeats, 20)
        t_np = median_time(lambda a=audio, i=image: emu("numpy", a, i), reps)
        t_th = median_time(lambda a=audio, i=image: emu("torch", a, i), reps)
        with _Threads(1):
            t_t1 = median_time(lambda a=audio, i=image: emu("torch", a, i), reps)
        sps = [batch / t for t in (t_np, t_th, t_t1)]
        lava_col = f"{lava_sps:9.2f}" if lava_sps else f"{'-':>9}"
        ups = [f"{s / lava_sps:10.0f}x" if lava_sps else f"{'-':>11}" for s in sps]
        print(f"{batch:>6} {lava_col} {sps[0]:>10.1f} {sps[1]:>10.1f} {sps[2]:>11.1f} {ups[0]:>11} {ups[1]:>11} "
              f"{ups[2]:>12}")
    print(f"   [{_load()}]")
    print()
    print(f"2. the whole test split ({len(split)} samples) in one call")
    audio, image = split.audio, split.image
    for label, engine, n_threads in (("numpy", "numpy", threads), ("torch", "torch", threads),
                                     ("torch 1 thread", "torch", 1)):
        with _Threads(n_threads):
            t = median_time(lambda e=engine: emu(e, audio, image), max(1, args.repeats // 2))
        versus = f"; {len(split) / t / lava_sps:.0f}x lava-fixed" if lava_sps else ""
        ok = "meets" if t < 10 and (not lava_sps or len(split) / t / lava_sps >= 100) else "MISSES"
        print(f"   {label:15s} {t:7.3f} s = {len(split) / t:8.1f} samples/s{versus}  ({ok} < 10 s, >= 100x)")
    print(f"   [{_load()}]")
    print()
    print("3. cost per sample (ms) vs batch size and T (untrained model of the same architecture, "
          "random inputs)")
    print(f"{'T':>4} {'batch':>6} {'numpy ms':>10} {'torch ms':>10} {'torch1 ms':>10}")
    for steps in args.steps:
        torch.manual_seed(0)
        net = AVSpikingNet(dataclasses.replace(model.config, n_steps=steps)).eval()
        ems = {"numpy": model_emulator(net, fixed=True), "torch": model_emulator(net, fixed=True, engine="torch")}
        for batch in args.batch:
            audio, image = _random_inputs(net, batch)
            reps = args.repeats if batch > 1 else max(args.repeats, 10)
            cols = []
            for engine, n_threads in (("numpy", threads), ("torch", threads), ("torch", 1)):
                with _Threads(n_threads):
                    t = median_time(lambda n=net, a=audio, i=image, em=ems[engine]: emulate_model(n, a, i, True, emulator=em),
                              reps)
                cols.append(1e3 * t / batch)
            print(f"{steps:>4} {batch:>6} {cols[0]:>10.3f} {cols[1]:>10.3f} {cols[2]:>10.3f}")
    print(f"   [{_load()}]")
    print()
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        em = model_emulator(model, fixed=True, engine="torch", device="cuda")
        print(f"4. cuda ({name}): samples/s, test samples repeated to the batch size")
        for batch in (100, 600, 6000):
            reps = -(-batch // len(split))
            audio = np.concatenate([split.audio] * reps)[:batch]
            image = np.concatenate([split.image] * reps)[:batch]

            def run(audio=audio, image=image):
                emulate_model(model, audio, image, True, emulator=em)
                torch.cuda.synchronize()

            t = median_time(run, args.repeats)
            versus = f" = {batch / t / lava_sps:.0f}x lava-fixed" if lava_sps else ""
            print(f"   batch {batch:>5}: {batch / t:10.1f} samples/s{versus}")
    else:
        print("4. cuda: not measured (no CUDA device)")


if __name__ == "__main__":
    main()
