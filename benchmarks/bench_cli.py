"""``taaf bench``: what a trained SNN costs on a neuromorphic chip, against an ANN on a GPU.

Registered into the ``taaf`` command through the ``taaf.commands`` entry point, so the model
package never imports benchmark code.

    taaf bench model.pt [--ann ann.pt] [--cost-table NAME_OR_PATH ...] [--split test]
               [--limit N] [--backend torch|reference] --out DIR
    taaf bench GRAPH.nir --input IN.npz [--backend reference|lava|lava-fixed|loihi-emu|...]
               [--cost-table ...] [--dt S] --out DIR      (any NIR graph: benchmarks.graph_bench)

Writes DIR/report.json (schema ``taaf-bench/2``, :func:`benchmarks.report.validate_report`),
DIR/report.md and four PNG plots, all together (built in a staged folder that replaces DIR as a
whole, :func:`taaf.paths.staged_output`), and prints the headline table. This
module obtains the numbers (evaluate, count, time, measure); :mod:`benchmarks.report` says
what they mean and renders them. Every input is checked before any work starts, so a bad
cost table or a mismatched checkpoint costs one line on stderr and exit code 2, not a minute.

Heavy imports (torch, onnxruntime, matplotlib) happen inside the functions: ``taaf`` imports
this module for every subcommand, just to call :func:`register`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from taaf import argtypes as num
from taaf import budget
from taaf.errors import TaafError
from taaf.paths import check_output_dir, staged_output

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from benchmarks.energy import CostTable
    from benchmarks.metrics import NetworkCounts
    from benchmarks.report import (
        AnnCounts,
        AnnMeasurements,
        BenchReport,
        CheckpointInfo,
        Machine,
    )
    from taaf.checkpoint import Checkpoint
    from taaf.data import MultimodalSplit
    from taaf.model.network import AVSpikingNet

BACKENDS = ("torch", "reference")
MAC_TABLE = "cmos45-fp32"  # where MACs go when a table is a spiking chip (energy.estimate_energy's default)
MEMORY_CHOICES = ("sram", "none")  # --memory: price memory accesses from the tables, or leave them out
THROUGHPUT_BATCH = 256
MAX_RUNS = 100_000


def register(subparsers) -> None:
    """Add ``taaf bench`` to the ``taaf`` command (the ``taaf.commands`` entry point)."""
    p = subparsers.add_parser(
        "bench", help="cost report: SynOps, estimated chip energy, ANN latency / GPU energy",
        description="Count a trained SNN's operations on a data split (NeuroBench definitions), estimate "
                    "its energy per inference with cited cost tables, and compare with an ANN baseline's "
                    "accuracy, MACs, estimated energy and measured CPU latency / GPU energy. Writes "
                    "report.json, report.md and PNG plots to --out and prints the headline table.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[1],
    )
    p.add_argument("model", help="the SNN: a model.pt from 'taaf train', or any NIR graph (.nir)")
    p.add_argument("--input", default="", help="graph mode: .npz with one array [T, B, *shape] per Input node")
    p.add_argument("--dt", type=num.positive_finite_float, default=None,
                   help="graph mode: time step (s, > 0) if the graph has no dt")
    p.add_argument("--strict", action="store_true",
                   help="graph mode: refuse a file that fails nir's type check (default: run it with a warning)")
    p.add_argument("--ann", default="", help="the ANN baseline: a model.pt from 'taaf train --model ann' "
                                            "trained on the same data")
    p.add_argument("--cost-table", action="extend", nargs="+", default=None, metavar="NAME_OR_PATH",
                   help="shipped table name (cmos45-fp32, cmos45-int8, loihi, truenorth) or a .json file of "
                        "the same form; repeatable (default: every shipped table)")
    p.add_argument("--memory", choices=MEMORY_CHOICES, default="sram",
                   help="sram (default): price weight fetches and neuron-state reads/writes from the table's "
                        "memory section, shown apart from compute; none: arithmetic / per-event terms only")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--limit", type=num.non_negative_int, default=0, help="only the first N samples of the split (0: all)")
    p.add_argument("--backend", default=None,
                   help="where the spikes are counted from: checkpoint: torch (default) or reference; "
                        "graph: any backend of 'taaf simulate' that runs NIR files (default reference)")
    p.add_argument("--batch-size", type=num.batch_size, default=100, help="samples per counting batch")
    p.add_argument("--runs", type=num.int_in(1, MAX_RUNS, "runs"), default=50,
                   help=f"timed onnxruntime runs per batch size (1..{MAX_RUNS})")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=run)
    from benchmarks.frontier import register as register_frontier

    register_frontier(subparsers)  # taaf frontier: the accuracy-energy frontier, built on this command's parts


def run(args: argparse.Namespace) -> int:
    """``taaf bench``: a checkpoint against its data split, or a NIR graph on an input file."""
    from benchmarks.energy import available_cost_tables, load_cost_table
    from benchmarks.report import PLOTS, headline_table, validate_report
    from taaf.checkpoint import check_split_matches, is_nir_file
    from taaf.data import load_dataset

    check_output_dir(args.out, inputs=[args.model, args.ann or None, args.input or None])
    if is_nir_file(args.model):
        return run_graph(args)
    if args.input:
        raise TaafError(f"{args.model} is a checkpoint: --input is for a NIR graph (a checkpoint is counted on "
                        f"its own data split)")
    args.backend = args.backend or "torch"
    if args.backend not in BACKENDS:
        raise TaafError(f"--backend {args.backend!r}: a checkpoint is counted from {' or '.join(BACKENDS)}")
    tables = tuple(load_cost_table(n) for n in (args.cost_table or available_cost_tables()))
    mac_table = load_cost_table(MAC_TABLE)
    snn = load_role(args.model, "snn")
    ann = load_role(args.ann, "ann") if args.ann else None
    if ann is not None:
        check_same_data(snn, ann)
    out = Path(args.out)
    full = load_dataset(snn.data_spec).split(args.split)
    split = full.subset(slice(0, args.limit)) if args.limit else full
    if len(split) == 0:
        raise TaafError(f"the {args.split} split has no samples")
    check_split_matches(snn, split, args.model)
    if ann is not None:
        check_split_matches(ann, split, args.ann)
    neurons, batch = snn.model_config.neuron_count(), min(args.batch_size, len(split))
    budget.check(f"counting a batch of {batch} samples", 8 * 8 * batch * snn.model_config.n_steps * neurons,
                 f"batch x T {snn.model_config.n_steps} x {neurons:,} neurons, float64, recorded")
    report = build_report(snn, ann, args.model, args.ann, split, len(full), args.split, tables, mac_table,
                          args.backend, args.batch_size, args.runs, memory=args.memory == "sram")
    as_json = report.as_dict()
    validate_report(as_json)  # our own output must follow our own schema
    with staged_output(out, "taaf bench") as stage:  # every file lands in out together, or none
        write_report(report, as_json, stage)
    print(headline_table(report))
    print(f"\nwrote report.json, report.md, {', '.join(PLOTS)} to {out}/")
    return 0


def run_graph(args: argparse.Namespace) -> int:
    """Graph mode (:mod:`benchmarks.graph_bench`): any NIR graph on ``--input``."""
    from benchmarks.energy import available_cost_tables, load_cost_table
    from benchmarks.graph_bench import bench_graph, write_graph_report
    from hardware.simulate_cli import read_inputs

    if args.ann or args.limit or args.split != "test":
        raise TaafError(f"{args.model} is a NIR graph: --ann, --split and --limit are for a checkpoint "
                        f"(a graph is counted on --input IN.npz)")
    if not args.input:
        raise TaafError("graph mode needs --input IN.npz (one array [T, B, *shape] per Input node)")
    tables = tuple(load_cost_table(n) for n in (args.cost_table or available_cost_tables()))
    inputs = read_inputs(Path(args.input))
    report = bench_graph(Path(args.model), inputs, Path(args.input), args.backend or "reference", tables,
                         load_cost_table(MAC_TABLE), args.dt, memory=args.memory == "sram",
                         strict=bool(getattr(args, "strict", False)))
    names = write_graph_report(report, Path(args.out))
    c = report.counts
    print(f"{args.model} on {report.backend}: {c.samples} samples x {c.steps} steps; per inference "
          f"{c.synops:,.1f} effective SynOps ({c.effective_acs:,.1f} AC + {c.effective_macs:,.1f} MAC), "
          f"{c.dense_ops:,.1f} dense ops, activation sparsity {c.activation_sparsity:.3f}")
    for e in report.estimates:
        print(f"  estimated energy per inference [{e.table}]: {e.total_pj:,.1f} pJ")
    print(f"wrote {', '.join(names)} to {args.out}/")
    return 0


# --------------------------------------------------------------------------- input checks

def load_role(path: str, role: str) -> Checkpoint:
    """Load a checkpoint and insist it is the kind its argument expects ("checkpoint mismatch")."""
    from taaf.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    kind = ckpt.model_config.model
    if role == "snn" and kind != "snn":
        raise TaafError(f"checkpoint mismatch: {path} is an {kind.upper()} checkpoint; the model argument must be "
                        "the SNN (taaf train --model snn), pass the ANN baseline with --ann")
    if role == "ann" and kind != "ann":
        raise TaafError(f"checkpoint mismatch: --ann {path} is an {kind.upper()} checkpoint; --ann needs an ANN "
                        "baseline (taaf train --model ann)")
    return ckpt


def check_same_data(snn: Checkpoint, ann: Checkpoint) -> None:
    """Both models must be evaluated on the same samples, so they must share the data spec."""
    from taaf.config import to_dict

    field = first_difference(to_dict(snn.data_spec), to_dict(ann.data_spec), "data_spec")
    if field is not None:
        name, a, b = field
        raise TaafError(f"checkpoint mismatch: the ANN was trained on different data than the SNN "
                        f"({name}: SNN {a!r}, ANN {b!r})")


def first_difference(a: dict, b: dict, prefix: str) -> tuple[str, object, object] | None:
    """The first differing key of two nested dicts, for a precise 'checkpoint mismatch' message."""
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found = first_difference(x, y, f"{prefix}.{key}")
            if found is not None:
                return found
        elif x != y:
            return f"{prefix}.{key}", x, y
    return None


# --------------------------------------------------------------------------- counting

def count_split(model: AVSpikingNet, split: MultimodalSplit, backend: str, batch_size: int) -> NetworkCounts:
    """:func:`~benchmarks.metrics.count_torch` (or ``count_run`` on the reference simulator) on
    ``split`` in batches, merged exactly: every total is an integer sum over samples. A visual
    stream is expanded to what is seen at each step one batch at a time
    (:meth:`~taaf.data.base.MultimodalSplit.chip_visual`); its first conv is then charged at
    every step."""
    from benchmarks.metrics import Counter, activity_from_run, activity_from_torch, taaf_topology

    counter = Counter(taaf_topology(model))  # the chip IR is lowered once, not per batch
    simulator = None
    if backend == "reference":
        from export.nir_export import model_to_nir
        from hardware.backends import run_reference
        from hardware.reference import ReferenceSimulator
        from taaf.dynamics import DEFAULT_DT

        simulator = ReferenceSimulator(model_to_nir(model, DEFAULT_DT), DEFAULT_DT)
    parts = []
    for start in range(0, len(split), batch_size):
        batch = split.subset(slice(start, start + batch_size))
        a, i = batch.audio, batch.chip_visual()
        if simulator is None:
            parts.append(counter(activity_from_torch(model, a, i)))
        else:
            parts.append(counter(activity_from_run(run_reference(model, a, i, simulator=simulator), a, i)))
    return merge_counts(parts)


def merge_counts(parts: Sequence[NetworkCounts]) -> NetworkCounts:
    """One :class:`~benchmarks.metrics.NetworkCounts` from batches counted on one topology."""
    first = parts[0]
    for p in parts[1:]:
        if [g.name for g in p.groups] != [g.name for g in first.groups] or p.steps != first.steps:
            raise ValueError("merge_counts: parts come from different topologies")

    def total(items, attr: str) -> int:
        return sum(getattr(x, attr) for x in items)

    groups = tuple(replace(g, samples=total(gs, "samples"), effective_total=total(gs, "effective_total"),
                           dense_total=total(gs, "dense_total"),
                           static_input=all(x.static_input for x in gs))
                   for g, gs in zip(first.groups, zip(*(p.groups for p in parts))))
    firing = tuple(replace(f, samples=total(fs, "samples"),
                           spikes_per_step=tuple(map(sum, zip(*(x.spikes_per_step for x in fs)))))
                   for f, fs in zip(first.firing, zip(*(p.firing for p in parts))))
    updates = tuple(replace(u, samples=total(us, "samples"), neuron_updates_total=total(us, "neuron_updates_total"),
                            membrane_updates_total=total(us, "membrane_updates_total"))
                    for u, us in zip(first.updates, zip(*(p.updates for p in parts))))
    return replace(first, samples=total(parts, "samples"), groups=groups, firing=firing, updates=updates)


_ANN_NAMES = ((r"audio_encoder\.synapses\.(\d+)", r"audio_fc\1"), (r"visual_encoder\.convs\.(\d+)", r"visual_conv\1"),
              (r"visual_encoder\.fc", "visual_fc"), (r"audio_evidence", "readout_audio"),
              (r"visual_evidence", "readout_visual"), (r"fusion\.audio_synapses", "fusion_audio_synapses"),
              (r"fusion\.visual_synapses", "fusion_visual_synapses"), (r"fusion\.modality_score", "readout_modality"),
              (r"fusion\.fused_evidence", "readout_fused"),
              (r"audio_synapses\.(\d+)", r"audio_fc\1"), (r"convs\.(\d+)", r"visual_conv\1"), (r"fc", "visual_fc"))


def ann_layer_name(module: str) -> str:
    """The SNN synapse group an ANN module mirrors (so per-layer tables line up)."""
    for pattern, name in _ANN_NAMES:
        if re.fullmatch(pattern, module):
            return re.sub(pattern, name, module)
    return module


def count_ann(model: nn.Module, audio: np.ndarray, image: np.ndarray, batch_size: int = 256,
              host_steps: int = 1) -> AnnCounts:
    """MACs per inference of every Linear / Conv2d over the split, counted both NeuroBench ways by
    the SNN's own counter (:func:`~benchmarks.metrics.synops.fanout`: effective = non-zero inputs x
    non-zero weights they drive, dense = every valid input-weight pair), plus the padded count
    (out elements x fan-in, per sample) that FlopCounterMode's total must equal, and the host
    head's weighted sums over ``host_steps`` (1 for the time-averaging ANN). A Linear applied to
    every frame ([B, T, F]) is counted on each frame."""
    import torch
    from torch import nn

    from benchmarks.ann_baseline import count_macs, parameter_count
    from benchmarks.metrics.harness import host_counts
    from benchmarks.metrics.synops import fanout
    from benchmarks.metrics.topology import HostHead, SynapseGroup
    from benchmarks.report import AnnCounts, AnnLayer
    from taaf.config import MODALITIES

    groups: dict[str, SynapseGroup] = {}
    padded: dict[str, int] = {}
    effective: dict[str, float] = {}
    dense: dict[str, float] = {}
    fanouts: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    fan_in: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        groups[name] = SynapseGroup.from_module(name, module, name, name, binary_input=False)

        def hook(mod, inputs, output, name=name):
            x = inputs[0].detach().double()
            if isinstance(mod, nn.Linear):
                x = x.reshape(-1, mod.in_features)  # per-frame layers: every frame is a row
            if name not in fanouts:
                fanouts[name] = fanout(groups[name], tuple(x.shape[1:]))
                fan_in[name] = groups[name].weight[0].numel()
            eff, den = fanouts[name]
            padded[name] = output[0].numel() * fan_in[name]  # output[0]: one sample, padded positions too
            effective[name] = effective.get(name, 0.0) + float(((x != 0).double().sum(0) * eff).sum())
            dense[name] = dense.get(name, 0.0) + float(den.sum()) * x.shape[0]

        hooks.append(module.register_forward_hook(hook))
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(audio), batch_size):
                model(torch.as_tensor(audio[start:start + batch_size]), torch.as_tensor(image[start:start + batch_size]))
    finally:
        for h in hooks:
            h.remove()
    n = len(audio)
    cfg = model.config
    host = host_counts(HostHead(cfg.fusion, cfg.n_classes, len(MODALITIES)), steps=host_steps)
    layers = tuple(AnnLayer(ann_layer_name(k), k, effective[k] / n, dense[k] / n, padded[k],
                           groups[k].weight.numel()) for k in padded)
    biases = sum(p.numel() for k, p in model.named_parameters() if k.endswith("bias"))
    a, i = torch.as_tensor(audio[:1]), torch.as_tensor(image[:1])
    return AnnCounts(layers, count_macs(model, (a, i)), host, parameter_count(model) - biases, biases, n)


# --------------------------------------------------------------------------- measuring

def measure_ann(model: nn.Module, audio: np.ndarray, image: np.ndarray, runs: int) -> AnnMeasurements:
    """ONNX CPU latency (batch 1) and throughput (batch 256) and GPU energy at both batches."""
    import numpy as np
    import torch

    from benchmarks.ann_baseline import batch_of, measure_gpu_energy, time_onnx
    from benchmarks.report import AnnMeasurements
    from export.ann_onnx import ann_onnx, run_ann_onnx

    onnx_bytes = ann_onnx(model)
    a, i = batch_of(audio, 64), batch_of(image, 64)
    with torch.no_grad():
        reference = model(torch.from_numpy(a), torch.from_numpy(i)).logits.numpy()
    diff = float(np.abs(run_ann_onnx(onnx_bytes, a, i) - reference).max())
    feeds = {"audio": audio, "image": image}
    latency = time_onnx(onnx_bytes, feeds, 1, runs=runs)
    throughput = time_onnx(onnx_bytes, feeds, THROUGHPUT_BATCH, runs=runs)
    energy = tuple(measure_gpu_energy(model, b, inputs=(torch.from_numpy(batch_of(audio, b)),
                                                        torch.from_numpy(batch_of(image, b))))
                   for b in (1, THROUGHPUT_BATCH))
    return AnnMeasurements(latency, throughput, diff, energy)


def machine() -> Machine:
    """What the measurements ran on, so numbers in a report can be compared honestly."""
    import onnxruntime
    import torch

    from benchmarks.report import Machine

    return Machine(cpu=platform.processor() or platform.machine(), cores=os.cpu_count() or 0,
                   torch=torch.__version__, onnxruntime=onnxruntime.__version__,
                   gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else "none")


# --------------------------------------------------------------------------- the report

def checkpoint_info(ckpt: Checkpoint, path: str, role: str) -> CheckpointInfo:
    """Which checkpoint a report describes (path, hash, method, size), for provenance."""
    from benchmarks.ann_baseline import parameter_count
    from benchmarks.report import CheckpointInfo
    from taaf.data.cache import sha256_file

    return CheckpointInfo(role=role, path=str(path), sha256=sha256_file(Path(path)), model=ckpt.model_config.model,
                          method=ckpt.train_config.method, fusion=ckpt.model_config.fusion,
                          n_steps=ckpt.model_config.n_steps, epochs=ckpt.train_config.epochs,
                          parameters=parameter_count(ckpt.model))


def build_report(snn: Checkpoint, ann: Checkpoint | None, snn_path: str, ann_path: str, split: MultimodalSplit,
                 split_samples: int, split_name: str, tables: Sequence[CostTable], mac_table: CostTable,
                 backend: str, batch_size: int, runs: int, memory: bool = True) -> BenchReport:
    """Evaluate, count and measure both models on ``split`` (the same samples for both), and
    price both under each table and each counting (:func:`estimate_tables`)."""
    from benchmarks.report import Attention, BenchReport, SplitInfo
    from taaf.evaluate import predict

    snn_model = snn.model.eval()
    preds = predict(snn_model, split)
    counts = count_split(snn_model, split, backend, batch_size)
    ann_counts = ann_acc = measured = None
    if ann is not None:
        ann_model = ann.model.eval()
        ann_acc = predict(ann_model, split).accuracies()
        image = split.mean_visual()  # the ANN averages a stream over time itself: the same input
        ann_counts = count_ann(ann_model, split.audio, image)
        measured = measure_ann(ann_model, split.audio, image, runs)
    return BenchReport(
        snn=checkpoint_info(snn, snn_path, "snn"),
        ann=None if ann is None else checkpoint_info(ann, ann_path, "ann"),
        data=SplitInfo(snn.data_spec, split_name, len(split), split_samples),
        snn_accuracy=preds.accuracies(), ann_accuracy=ann_acc,
        counts=counts, count_source=backend, ann_counts=ann_counts,
        estimates=estimate_tables(counts, ann_counts, tables, mac_table, memory),
        ann_measured=measured, machine=machine(),
        attention=Attention(snn.model_config.fusion, preds.alpha, preds.beta), memory=memory,
    )


def estimate_tables(counts: NetworkCounts, ann_counts: AnnCounts | None, tables: Sequence[CostTable],
                    mac_table: CostTable, memory: bool = True) -> tuple:
    """Every table x counting: the SNN (static-input layers once: the checkpoint's model computes
    them once) and, on a table that multiplies, the ANN under the same counting."""
    from benchmarks.energy import COUNTINGS, estimate_ann_energy, estimate_energy
    from benchmarks.report import Comparison, TableEstimate

    return tuple(TableEstimate(t, tuple(
        Comparison(k, estimate_energy(counts, t, mac_table, k, memory, static_once=True),
                   estimate_ann_energy(ann_counts, t, k, memory) if ann_counts is not None and t.runs_macs else None)
        for k in COUNTINGS)) for t in tables)


def write_report(report: BenchReport, as_json: dict, out: Path) -> None:
    """report.json, report.md and the plots, written into ``out`` (``taaf bench`` passes a
    staged folder, :func:`taaf.paths.staged_output`, that replaces ``--out`` as a whole)."""
    from benchmarks.report import render_markdown, write_plots
    from taaf.data.cache import atomic_write_bytes

    atomic_write_bytes(out / "report.json", (json.dumps(as_json, indent=2, allow_nan=False) + "\n").encode())
    atomic_write_bytes(out / "report.md", render_markdown(report).encode())
    write_plots(report, out)
