"""How the Loihi emulator's cost grows: a CNN-sized NIR graph against Lava, and a scaling sweep.

    python -m benchmarks.emulator_scaling [--out benchmarks/results/emulator_scaling] [--lava-samples 4]

1. A conv/pool graph exported by snnTorch (``tests/foreign_graphs.py: snntorch_conv`` scaled up):
   1x28x28 -> Conv 8 (3x3) -> LIF -> AvgPool 2 -> Conv 16 (3x3) -> LIF -> AvgPool 2 -> Linear 10
   -> LIF, mapped to Loihi fixed point (convolutions unrolled as dense matrices, as on the chip
   mapping: 6272 + 3136 + 10 neurons, 24.6 M dense synapses), random static images (the
   same image at every step). samples/s of both engines at batch 64; Lava fixed point on
   ``--lava-samples`` samples (a subset: Lava needs about a second per sample) in the same run,
   output spikes compared.
2. A sweep over random dense LIF chains (64 graded inputs -> h -> h -> 10, 10-25 % firing):
   synapses (h = 64 .. 2048 at T = 16, batch 256), T (4 .. 64 at h = 512) and batch (1 .. 1024
   at h = 512): wall time per run (numpy engine, thread policy), dense synaptic operations
   (synapses x T x batch) and synaptic events (spikes x fan-out), the fitted log-log slopes, and
   the cost model behind them: time = a neuron updates + b synaptic operations + c per call.

Writes DIR/scaling.png (log-log) and DIR/scaling.json; prints the tables. Timings are medians
of ``--repeats`` runs after a warm-up, with the load averages next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import nir
import numpy as np
import torch

from benchmarks.common import median_time
from benchmarks.emulator_throughput import load
from hardware.ir.graph import BIAS
from hardware.loihi.emulator import LoihiEmulator
from hardware.loihi.engines import default_threads
from hardware.loihi.program import map_graph

DT = 1e-4
SWEEPS = {"synapses": [64, 128, 256, 512, 1024, 2048], "T": [4, 8, 16, 32, 64], "batch": [1, 4, 16, 64, 256, 1024]}


def cnn_graph(path: Path, seed: int = 0) -> nir.NIRGraph:
    """The scaled snnTorch conv/pool network (module docstring), written to ``path`` and read back."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir
    from torch import nn

    from hardware.reference import load_graph

    def leaky(shape, output=False):
        return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), init_hidden=True,
                         reset_mechanism="zero", reset_delay=False, output=output)

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), leaky((8, 28, 28)), nn.AvgPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), leaky((16, 14, 14)), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(16 * 7 * 7, 10), leaky((10,), True))
    with torch.no_grad():
        for i in (0, 3, 7):
            net[i].weight.mul_(3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(path, export_to_nir(net, torch.randn(1, 1, 28, 28), ignore_dims=[0]))
    return load_graph(path)


def dense_graph(hidden: int, n_in: int = 64, n_out: int = 10, seed: int = 0) -> nir.NIRGraph:
    """Input(n_in) -> Affine -> LIF(hidden) -> Affine -> LIF(hidden) -> Affine -> LIF(n_out)."""
    rng, f = np.random.default_rng(seed), np.float32
    sizes = [n_in, hidden, hidden, n_out]
    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])}),
             "out": nir.Output(output_type={"output": np.array([n_out])})}
    edges, prev = [], "in"
    for i, (n, m) in enumerate(zip(sizes, sizes[1:])):
        w = rng.normal(0, 1, (m, n)) / np.sqrt(n) + 0.5 / n
        nodes[f"w{i}"] = nir.Affine(weight=w.astype(f), bias=np.zeros(m, f))
        nodes[f"l{i}"] = nir.LIF(tau=np.full(m, 2e-3, f), r=np.full(m, 20.0, f), v_leak=np.zeros(m, f),
                                 v_threshold=np.ones(m, f), v_reset=np.zeros(m, f))
        edges += [(prev, f"w{i}"), (f"w{i}", f"l{i}")]
        prev = f"l{i}"
    return nir.NIRGraph(nodes=nodes, edges=[*edges, (prev, "out")], metadata={"dt": DT})


def counts(emulator: LoihiEmulator, result, inputs: dict) -> tuple[int, int, int]:
    """(dense synaptic operations, synaptic events, neuron updates) of one run: synapses x T x B,
    every nonzero message times its fan-out, and neurons x T x B."""
    steps, batch = next(iter(inputs.values())).shape[:2]
    synapses = sum(int(np.size(s.weights)) for s in emulator.program.synapses if s.src != BIAS)
    fan_out: dict[str, int] = {}
    for s in emulator.program.synapses:
        fan_out[s.src] = fan_out.get(s.src, 0) + int(np.shape(s.weights)[0])
    events = sum(int(np.count_nonzero(x)) * fan_out.get(n, 0) for n, x in inputs.items())
    events += sum(int(st["spikes"].sum()) * fan_out.get(n, 0) for n, st in result.states.items())
    neurons = sum(p.size for p in emulator.program.layers.values())
    return synapses * steps * batch, events, neurons * steps * batch


def slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def cnn_section(args) -> dict:
    """Section 1: the CNN on both engines and on Lava (subset); prints and returns the numbers."""
    from hardware.loihi.lava_runtime import run_graph

    with tempfile.TemporaryDirectory() as tmp:
        graph = cnn_graph(Path(tmp) / "cnn.nir")
    t0 = time.perf_counter()
    program = map_graph(graph, DT, fixed=True, input_ranges={"input": 1.0})
    map_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (args.cnn_batch, 1, 28, 28))
    inputs = {"input": np.ascontiguousarray(np.broadcast_to(images[None], (args.steps, *images.shape)))}
    synapses = sum(int(np.size(s.weights)) for s in program.synapses)
    print(f"1. CNN graph: {dict((n, p.size) for n, p in program.layers.items())} neurons, {synapses:,} dense "
          f"synapses; mapped in {map_s:.1f} s; T = {args.steps}, batch {args.cnn_batch}")
    out = {"neurons": {n: p.size for n, p in program.layers.items()}, "synapses": synapses}
    for engine in ("numpy", "torch"):
        em = LoihiEmulator(program, engine)
        t = median_time(lambda e=em: e.run(inputs), args.repeats)
        out[engine] = args.cnn_batch / t
        print(f"   {engine:6s} {t * 1e3:8.1f} ms = {out[engine]:8.1f} samples/s  [{load()}]")
    if args.lava_samples:
        sub = {k: v[:, :args.lava_samples] for k, v in inputs.items()}
        t0 = time.perf_counter()
        lava = run_graph(program, sub, record=True, timeout=3600)
        lava_s = time.perf_counter() - t0
        out["lava"] = args.lava_samples / lava_s
        got = LoihiEmulator(program).run(sub)
        same = all(np.array_equal(got.states[n]["spikes"], s["spikes"]) for n, s in lava.states.items()) and \
            all(np.array_equal(got.outputs[n], v) for n, v in lava.outputs.items())
        print(f"   lava-fixed: {args.lava_samples} samples in {lava_s:.1f} s = {out['lava']:.3f} samples/s  "
              f"[{load()}]; emulator {'IDENTICAL' if same else 'DIFFERENT'} (every spike and output); speed-up "
              f"numpy {out['numpy'] / out['lava']:.0f}x, torch {out['torch'] / out['lava']:.0f}x")
        out["identical"] = same
    return out


def sweep_section(args) -> dict:
    """Section 2: the three sweeps; prints the table and the fitted slopes, returns the rows."""
    rng = np.random.default_rng(1)
    rows, programs = [], {}
    print(f"\n2. sweep (numpy engine, {default_threads()} threads by the policy now)")
    print(f"   {'sweep':>8} {'h':>5} {'T':>3} {'batch':>5} {'synapses':>10} {'ms/run':>9} {'samples/s':>10} "
          f"{'firing':>7} {'dense ops':>10} {'events':>10}")
    for sweep, values in SWEEPS.items():
        for value in values:
            h, steps, batch = 512, 16, 256
            h, steps, batch = (value, steps, batch) if sweep == "synapses" else \
                (h, value, batch) if sweep == "T" else (h, steps, value)
            if h not in programs:
                programs[h] = map_graph(dense_graph(h), DT, fixed=True, input_ranges={"in": 1.0})
            em = LoihiEmulator(programs[h])
            inputs = {"in": rng.uniform(0, 1, (steps, batch, 64))}
            result = em.run(inputs)
            t = median_time(lambda e=em, x=inputs: e.run(x), args.repeats if batch * steps > 64 else 5 * args.repeats)
            ops, events, updates = counts(em, result, inputs)
            firing = float(np.mean([s["spikes"].mean() for s in result.states.values()]))
            synapses = ops // (steps * batch)
            rows.append(dict(sweep=sweep, hidden=h, T=steps, batch=batch, synapses=synapses, seconds=t, ops=ops,
                             events=events, updates=updates, firing=firing, load=os.getloadavg()[0]))
            print(f"   {sweep:>8} {h:>5} {steps:>3} {batch:>5} {synapses:>10,} {t * 1e3:>9.2f} {batch / t:>10.0f} "
                  f"{firing:>7.3f} {ops:>10.2e} {events:>10.2e}  [{load()}]")
    fits = {}
    for sweep in SWEEPS:
        part = [r for r in rows if r["sweep"] == sweep]
        big = part[len(part) // 2:]  # the upper half: work, not per-call overhead
        key = {"synapses": "synapses", "T": "T", "batch": "batch"}[sweep]
        fits[sweep] = {"all": slope([r[key] for r in part], [r["seconds"] for r in part]),
                       "upper half": slope([r[key] for r in big], [r["seconds"] for r in big]),
                       "vs events (upper half)": slope([r["events"] for r in big], [r["seconds"] for r in big])}
        print(f"   time ~ {sweep}^{fits[sweep]['upper half']:.2f} (upper half; all points "
              f"{fits[sweep]['all']:.2f}); ~ events^{fits[sweep]['vs events (upper half)']:.2f}")
    # the cost model behind the slopes: time = a neuron updates + b synaptic operations + c per call
    x = np.array([[r["updates"], r["ops"], 1.0] for r in rows])
    t = np.array([r["seconds"] for r in rows])
    (a, b, c), *_ = np.linalg.lstsq(x / t[:, None], np.ones(len(t)), rcond=None)  # relative errors
    worst = float(np.max(np.abs(x @ (a, b, c) / t - 1)))
    print(f"   time = {a * 1e9:.2f} ns x neuron updates + {b * 1e12:.2f} ps x synaptic operations + "
          f"{c * 1e3:.2f} ms per call (worst relative error {worst:.0%})")
    model = {"ns per neuron update": a * 1e9, "ps per synaptic op": b * 1e12, "ms per call": c * 1e3,
             "worst relative error": worst}
    return {"rows": rows, "slopes": fits, "model": model}


def plot(sweep: dict, path: Path) -> None:
    """Log-log plot of the three sweeps: time per run against the swept quantity and against events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, name in zip(axes, SWEEPS):
        part = [r for r in sweep["rows"] if r["sweep"] == name]
        x = [r[name] for r in part]
        ax.loglog(x, [r["seconds"] * 1e3 for r in part], "o-")
        ax.set(xlabel=name, ylabel="ms per run", title=f"slope {sweep['slopes'][name]['upper half']:.2f}")
        ax.grid(True, which="both", alpha=0.3)
        axes[3].loglog([r["events"] for r in part], [r["seconds"] * 1e3 for r in part], "o", label=name)
    axes[3].set(xlabel="synaptic events per run", ylabel="ms per run", title="all sweeps vs events")
    axes[3].legend()
    axes[3].grid(True, which="both", alpha=0.3)
    fig.suptitle("Loihi emulator (numpy engine, fixed point): cost growth, log-log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: the CNN comparison and the scaling sweep; writes the plot and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/emulator_scaling"))
    parser.add_argument("--lava-samples", type=int, default=4, help="CNN samples run on Lava (0: skip)")
    parser.add_argument("--cnn-batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} logical CPUs, thread policy {default_threads()}  [{load()}]")
    cnn = cnn_section(args)
    sweep = sweep_section(args)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(sweep, args.out / "scaling.png")
    (args.out / "scaling.json").write_text(json.dumps({"cnn": cnn, **sweep}, indent=1) + "\n")
    print(f"\nwrote {args.out / 'scaling.png'} and {args.out / 'scaling.json'}")


if __name__ == "__main__":
    main()
