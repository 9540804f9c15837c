"""``taaf frontier``: accuracy against estimated energy, the SNN at several T against its baselines.

    taaf frontier model.pt --ann ann.pt --steps 1 2 4 8 16 --out DIR [--epochs N]
                  [--spike-rate-weight W] [--cost-table NAME_OR_PATH ...] [--memory sram|none]

One point per model on the test split: the SNN at each T of ``--steps`` (the given checkpoint
at its own T; at any other T one trained with the checkpoint's own train and model settings and
``--epochs``, default the checkpoint's, on the same data built with T frames; with
``--spike-rate-weight W`` also one trained at each T with the spike-rate regulariser
``TrainConfig.spike_rate_weight = W``), the ANN baseline
(``--ann``), a fair temporal ANN trained here on the SNN's frames (:mod:`benchmarks.temporal_ann`;
``--no-temporal-ann`` leaves it out) and the linear late-fusion floor (:mod:`benchmarks.linear_floor`). Each point's
energy is estimated per cost table and counting exactly as ``taaf bench`` does
(:func:`benchmarks.bench_cli.estimate_tables`: effective and dense counts, the static image's
first conv once, memory per ``--memory``). A table that cannot run an ANN (loihi, truenorth)
gives SNN points only: its SNN figures are never compared with an ANN's (design note "Energy
conventions"). The Pareto front (no other point at most as costly and at least as accurate)
is computed per table on the effective counts, and the report says at which T, if any, the SNN
is on it. Writes DIR/frontier.json, frontier.md and frontier.png together
(:func:`taaf.paths.staged_output`).
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taaf import argtypes as num
from taaf.errors import TaafError
from taaf.paths import check_output_dir, staged_output

if TYPE_CHECKING:
    from benchmarks.energy import CostTable, EnergyEstimate
    from benchmarks.report import AnnCounts
    from taaf.checkpoint import Checkpoint

SCHEMA = "taaf-frontier/2"  # 2: snn_wins_* list SNN point names (regularised points share a T)
MAX_STEPS = 64  # --steps above this is refused (training cost grows with T)
MAX_EPOCHS = 200
FILES = ("frontier.json", "frontier.md", "frontier.png")


def register(subparsers) -> None:
    """Add ``taaf frontier`` to the ``taaf`` command (called by :func:`benchmarks.bench_cli.register`)."""
    p = subparsers.add_parser(
        "frontier", help="accuracy vs estimated energy: the SNN at several T against the ANN and a linear floor",
        description=__doc__.split("\n\n", 2)[2].split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the SNN checkpoint (taaf train --model snn)")
    p.add_argument("--ann", default="", help="the ANN baseline checkpoint (taaf train --model ann), same data")
    p.add_argument("--steps", type=num.int_in(1, MAX_STEPS, "steps"), nargs="+", default=None,
                   help=f"time steps to evaluate the SNN at (1..{MAX_STEPS}; default: the checkpoint's)")
    p.add_argument("--epochs", type=num.int_in(1, MAX_EPOCHS, "epochs"), default=None,
                   help="epochs of each retraining at another T (default: the checkpoint's own)")
    p.add_argument("--cost-table", action="extend", nargs="+", default=None, metavar="NAME_OR_PATH",
                   help="shipped table name or a .json file (default: every shipped table)")
    p.add_argument("--memory", choices=("sram", "none"), default="sram",
                   help="price memory accesses from the tables (sram) or leave them out (none)")
    p.add_argument("--spike-rate-weight", type=num.non_negative_finite_float, default=0.0, metavar="W",
                   help="also train the SNN at each T with this spike-rate regulariser weight (fewer spikes; "
                        "0 = no such points)")
    p.add_argument("--no-temporal-ann", action="store_true",
                   help="leave out the fair temporal ANN (trained here on the SNN's frames, about a minute)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=run)


@dataclass(frozen=True)
class PointEnergy:
    """One model's estimate under one table and counting; None where the table cannot run it."""

    table: str
    counting: str
    estimate: EnergyEstimate | None


@dataclass(frozen=True)
class Point:
    """One model on the frontier: its test accuracy, its estimates (every table x counting) and
    how it was obtained."""

    name: str
    family: str  # "snn" (regularised or not), "ann" or "floor"
    steps: int | None
    accuracy: float
    trained: str
    energies: tuple[PointEnergy, ...]
    ops: float  # effective ops per inference as charged (SNN: static-input layers once)
    rate_weight: float = 0.0  # SNN: the spike-rate regulariser weight it was trained with

    def energy_pj(self, table: str, counting: str = "effective") -> float | None:
        """This point's estimate on ``table`` in pJ (None where the table cannot run it)."""
        for e in self.energies:
            if e.table == table and e.counting == counting:
                return None if e.estimate is None else e.estimate.total_pj
        raise KeyError(f"{self.name}: no {counting} estimate on {table}")

    def as_dict(self) -> dict[str, Any]:
        """One ``points`` entry of frontier.json (pJ per table and counting, null where not runnable)."""
        energy: dict[str, dict[str, Any]] = {}
        for e in self.energies:
            energy.setdefault(e.table, {})[e.counting] = None if e.estimate is None else {
                "total_pj": e.estimate.total_pj, "compute_pj": e.estimate.compute_pj,
                "memory_pj": e.estimate.memory_pj, "mixed": e.estimate.mixed}
        return {"name": self.name, "family": self.family, "steps": self.steps, "accuracy": self.accuracy,
                "trained": self.trained, "ops": self.ops, "rate_weight": self.rate_weight, "energy": energy}


def pareto(points: Sequence[Point], table: str) -> tuple[Point, ...]:
    """Points no other point dominates on ``table`` (at most its energy, at least its accuracy,
    better in one), cheapest first; points the table cannot run are left out."""
    priced = [(p.energy_pj(table), p) for p in points if p.energy_pj(table) is not None]
    front = [p for e, p in priced if not any(
        (e2 <= e and a2 >= p.accuracy) and (e2 < e or a2 > p.accuracy) for e2, q in priced
        for a2 in (q.accuracy,) if q is not p)]
    return tuple(sorted(front, key=lambda p: p.energy_pj(table)))


def snn_wins(points: Sequence[Point], table: str, rivals: tuple[str, ...] = ("ann", "floor")) -> tuple[str, ...]:
    """The SNN points (by name: "SNN T=2", "SNN T=2, rate 1") on ``table``'s Pareto front among
    the SNN points and the ``rivals`` families, while some rival is priced there (a win needs a
    rival); empty when the SNN is on it nowhere."""
    field = [p for p in points if p.family == "snn" or p.family in rivals]
    if not _rivals(field, table):
        return ()
    return tuple(p.name for p in pareto(field, table) if p.family == "snn")


def _rivals(points: Sequence[Point], table: str) -> bool:
    """Whether a non-SNN point is priced on ``table`` (else there is nothing to compare with)."""
    return any(p.family != "snn" and p.energy_pj(table) is not None for p in points)


def run(args: argparse.Namespace) -> int:
    """``taaf frontier``: check every input, then train / count / price each point and write the report."""
    import torch

    from benchmarks.bench_cli import load_role
    from benchmarks.energy import available_cost_tables, load_cost_table

    check_output_dir(args.out, inputs=[args.model, args.ann or None])
    tables = tuple(load_cost_table(n) for n in (args.cost_table or available_cost_tables()))
    snn = load_role(args.model, "snn")
    ann = load_role(args.ann, "ann") if args.ann else None
    if ann is not None:
        from benchmarks.bench_cli import check_same_data

        check_same_data(snn, ann)
    check_static_image(snn, args.model)
    steps = tuple(dict.fromkeys(args.steps or (snn.model_config.n_steps,)))
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    points = build_points(snn, ann, steps, args.epochs, tables, args.memory == "sram", not args.no_temporal_ann,
                          args.spike_rate_weight)
    report = {"schema": SCHEMA, "model": str(args.model), "ann": args.ann or None, "steps": list(steps),
              "memory_priced": args.memory == "sram", "points": [p.as_dict() for p in points],
              "pareto": {t.name: [p.name for p in pareto(points, t.name)] if _rivals(points, t.name) else None
                         for t in tables},
              "snn_wins_at": {t.name: list(snn_wins(points, t.name)) for t in tables},
              "snn_wins_against_anns_at": {t.name: list(snn_wins(points, t.name, ("ann",))) for t in tables},
              "ann_floor_checks": floor_checks(points)}
    with staged_output(Path(args.out), "taaf frontier") as stage:
        (stage / FILES[0]).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        (stage / FILES[1]).write_text(render_markdown(points, tables, report, args))
        plot_frontier(points, tables, stage / FILES[2])
    print(frontier_table(points, tables))
    print("\n" + verdict(points, tables))
    if report["ann_floor_checks"]:
        print("\n" + floor_lines(report["ann_floor_checks"]))
    print(f"\nwrote {', '.join(FILES)} to {args.out}/")
    return 0


def check_static_image(ckpt: Checkpoint, path: str) -> None:
    """Refuse a checkpoint whose visual input is a per-step stream before any work: the counters
    (like ``taaf bench``), the floor and the temporal ANN take one static image per sample."""
    from taaf.data import load_dataset

    if load_dataset(ckpt.data_spec).test.is_stream:
        raise TaafError(f"{path}: its data set ({ckpt.data_spec.dataset}) shows the image as a per-step stream; "
                        "taaf frontier's linear floor and temporal ANN take a static image per sample (taaf bench "
                        "counts a stream)")


def build_points(snn: Checkpoint, ann: Checkpoint | None, steps: Sequence[int], epochs: int | None,
                 tables: Sequence[CostTable], memory: bool, temporal: bool = True,
                 rate_weight: float = 0.0) -> tuple[Point, ...]:
    """Every point: the SNN at each T (trained when needed; with ``rate_weight`` also trained
    with that spike-rate regulariser), the ANN baseline, the fair temporal ANN (``temporal``,
    :mod:`benchmarks.temporal_ann`) and the linear floor."""
    from benchmarks.bench_cli import MAC_TABLE, count_ann, count_split, estimate_tables
    from benchmarks.energy import load_cost_table
    from benchmarks.linear_floor import fit_floor, time_averaged
    from taaf.data import load_dataset
    from taaf.evaluate import predict

    mac_table = load_cost_table(MAC_TABLE)
    points = []
    for t, weight in [(t, 0.0) for t in steps] + ([(t, rate_weight) for t in steps] if rate_weight else []):
        model, data, how = snn_at(snn, t, epochs, weight)
        test = data.test
        counts = count_split(model, test, "torch", 100)
        energies = tuple(PointEnergy(e.table.name, c.counting, c.snn)
                         for e in estimate_tables(counts, None, tables, mac_table, memory) for c in e.comparisons)
        ops = sum(g.effective / (counts.steps if g.static_input else 1) for g in counts.groups) + counts.host_macs
        name = f"SNN T={t}" + (f", rate {weight:g}" if weight else "")
        points.append(Point(name, "snn", t, predict(model, test).accuracies().fused, how, energies, ops, weight))
    data = load_dataset(snn.data_spec)
    test = data.test
    if ann is not None:
        model = ann.model.eval()
        counts = count_ann(model, test.audio, test.image)
        points.append(Point(f"ANN ({ann.model_config.fusion} fusion)", "ann", None,
                            predict(model, test).accuracies().fused, "the given checkpoint",
                            _ann_estimates(counts, tables, memory), counts.effective_macs + counts.host.macs))
    if temporal:
        from benchmarks.temporal_ann import train_temporal_ann

        cfg = replace(snn.model_config, fusion="concat", model="ann")
        fair = train_temporal_ann(data, cfg, seed=snn.train_config.seed)
        counts = count_ann(fair.model, test.audio, test.image)
        points.append(Point(f"temporal ANN (concat, T={cfg.n_steps})", "ann", cfg.n_steps, fair.fused,
                            f"benchmarks/temporal_ann.py: every frame, concat fusion, Adam lr {fair.lr:g}, aux "
                            f"weight {fair.aux:g} and epoch {fair.epoch} chosen on val ({fair.seconds:.0f} s)",
                            _ann_estimates(counts, tables, memory), counts.effective_macs + counts.host.macs))
    floor = fit_floor(data, snn.model_config)
    counts = count_ann(floor.model, test.audio, test.image)
    points.append(Point("linear late fusion", "floor", None, floor.fused,
                        f"logistic regression per modality (C audio {floor.audio_c:g}, visual {floor.visual_c:g}, "
                        f"chosen on val), product of experts",
                        _ann_estimates(counts, tables, memory), counts.effective_macs + counts.host.macs))
    if ann is not None:
        # The twin ANN sees the audio averaged over time, so its floor is the same probes on that input.
        twin = fit_floor(data, snn.model_config, average_audio=True)
        counts = count_ann(twin.model, time_averaged(test).audio, test.image)
        points.append(Point("linear late fusion, time-averaged audio", "floor", None, twin.fused,
                            f"the floor on the --ann baseline's own input (audio averaged over T; C audio "
                            f"{twin.audio_c:g}, visual {twin.visual_c:g})",
                            _ann_estimates(counts, tables, memory), counts.effective_macs + counts.host.macs))
    return tuple(points)


def _ann_estimates(counts: AnnCounts, tables: Sequence[CostTable], memory: bool) -> tuple[PointEnergy, ...]:
    """A non-spiking model priced like the ANN in ``taaf bench``; None on a spiking chip."""
    from benchmarks.energy import COUNTINGS, estimate_ann_energy

    return tuple(PointEnergy(t.name, k, estimate_ann_energy(counts, t, k, memory) if t.runs_macs else None)
                 for t in tables for k in COUNTINGS)


def snn_at(ckpt: Checkpoint, steps: int, epochs: int | None, rate_weight: float = 0.0):
    """(model, data, how) for the SNN at ``steps``: the checkpoint itself at its own T (and
    epochs, and spike-rate weight), else one trained with its settings (the spike-rate weight
    replaced by ``rate_weight``) on the same data built with ``steps`` frames."""
    from taaf.data import load_dataset
    from taaf.training.trainer import train

    epochs = epochs or ckpt.train_config.epochs
    if (steps, epochs, rate_weight) == (ckpt.model_config.n_steps, ckpt.train_config.epochs,
                                        ckpt.train_config.spike_rate_weight):
        return ckpt.model.eval(), load_dataset(ckpt.data_spec), "the given checkpoint"
    data = load_dataset(replace(ckpt.data_spec, n_steps=steps))
    start = time.perf_counter()
    result = train(data, replace(ckpt.train_config, epochs=epochs, spike_rate_weight=rate_weight),
                   replace(ckpt.model_config, n_steps=steps), progress=False)
    how = (f"retrained at T = {steps}: the checkpoint's settings, spike-rate weight {rate_weight:g}, {epochs} epochs, "
           f"best val epoch "
           f"{result.selected_epoch} ({time.perf_counter() - start:.0f} s)")
    return result.model.cpu().eval(), data, how


def frontier_table(points: Sequence[Point], tables: Sequence[CostTable]) -> str:
    """The Markdown table: accuracy, ops and the effective-count estimate per table of every point."""
    from benchmarks.report.markdown import fmt_energy, markdown_table

    def cell(p: Point, t: CostTable) -> str:
        e = p.energy_pj(t.name)
        front = _rivals(points, t.name) and p in pareto(points, t.name)
        return "n/a (cannot run an ANN)" if e is None else fmt_energy(e) + (" *" if front else "")

    rows = [(p.name, f"{p.accuracy:.3f}", f"{p.ops:,.0f}", *(cell(p, t) for t in tables)) for p in points]
    return markdown_table(("model", "test accuracy", "ops / inference", *(t.name for t in tables)), rows,
                          "lrr" + "r" * len(tables))


def verdict(points: Sequence[Point], tables: Sequence[CostTable]) -> str:
    """Where, if anywhere, the SNN is on the Pareto front against a rival on the same table."""
    lines = []
    for t in tables:
        if not _rivals(points, t.name):
            lines.append(f"- {t.name}: SNN only (a spiking chip cannot run the ANN or the floor); no comparison.")
            continue
        wins, vs_anns = snn_wins(points, t.name), snn_wins(points, t.name, ("ann",))
        front = ", ".join(p.name for p in pareto(points, t.name))
        lines.append(f"- {t.name}: " + (f"the SNN is on the Pareto front at {_names(wins)}"
                                        if wins else "the SNN is on the Pareto front nowhere") + f" (front: {front}); "
                     + (f"against the ANNs alone (no floor) at {_names(vs_anns)}." if vs_anns
                        else "against the ANNs alone (no floor) nowhere either."))
    return "\n".join(lines)


#: The floor each ANN must reach: the linear late fusion on the same input as that ANN.
TWIN_FLOOR = "linear late fusion, time-averaged audio"
FULL_FLOOR = "linear late fusion"


def floor_checks(points: Sequence[Point]) -> list[dict[str, Any]]:
    """Each ANN point against the linear floor on its own input (a baseline is only worth beating
    when it beats the simplest model): the ``--ann`` twin sees the audio averaged over time, the
    temporal ANN every frame."""
    by_name = {p.name: p for p in points}
    checks = []
    for p in points:
        if p.family != "ann":
            continue
        floor = by_name.get(FULL_FLOOR if p.steps else TWIN_FLOOR)
        if floor is not None:
            checks.append({"ann": p.name, "accuracy": p.accuracy, "floor": floor.name,
                           "floor_accuracy": floor.accuracy, "at_least_floor": p.accuracy >= floor.accuracy})
    return checks


def floor_lines(checks: Sequence[dict[str, Any]]) -> str:
    """The floor checks as Markdown bullets, failures said plainly."""
    return "\n".join(f"- {c['ann']}: {c['accuracy']:.3f} vs {c['floor']} {c['floor_accuracy']:.3f}: "
                     + ("at least the floor." if c["at_least_floor"] else "BELOW its floor.") for c in checks)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def render_markdown(points: Sequence[Point], tables: Sequence[CostTable], report: dict, args) -> str:
    """frontier.md: the command, the table, the verdict and how each point was obtained."""
    cmd = " ".join(["taaf frontier", str(args.model), *(["--ann", args.ann] if args.ann else []),
                    *(["--no-temporal-ann"] if args.no_temporal_ann else []), "--steps", *map(str, report["steps"]),
                    *(["--epochs", str(args.epochs)] if args.epochs else []),
                    *(["--spike-rate-weight", f"{args.spike_rate_weight:g}"] if args.spike_rate_weight else []),
                    "--memory", args.memory,
                    "--out", str(args.out)])
    return "\n".join([
        "# Accuracy vs estimated energy", "", f"`{cmd}`", "",
        "Test accuracy (fused) and ESTIMATED energy per inference (effective NeuroBench counts x cited "
        "constants; static image conv once; memory " + ("priced" if report["memory_priced"] else "not priced")
        + "). `*` marks the table's Pareto front.", "",
        frontier_table(points, tables), "", "## Where the SNN wins", "", verdict(points, tables), "",
        "## The ANN baselines against the linear floor on their own input", "",
        floor_lines(report["ann_floor_checks"]) or "- no ANN point.", "",
        "## How each point was obtained", "", *(f"- {p.name}: {p.trained}" for p in points), "",
        "Dense counts and every number are in frontier.json; per-layer terms come from `taaf bench`.", ""])


def plot_frontier(points: Sequence[Point], tables: Sequence[CostTable], path: Path) -> None:
    """One panel per table: accuracy against estimated energy (log), SNN points joined by T, the
    ANN and the floor as markers, the Pareto front dashed."""
    from taaf.training.plots import plt, save_figure

    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 4), squeeze=False)
    for ax, t in zip(axes[0], tables):
        all_snn = [p for p in points if p.family == "snn"]
        for regularised, color in ((False, "tab:blue"), (True, "tab:cyan")):
            line = [p for p in all_snn if (p.rate_weight > 0) == regularised]
            if line:
                ax.plot([p.energy_pj(t.name) * 1e-12 for p in line], [p.accuracy for p in line], "o-", color=color,
                        label="SNN, spike-rate regulariser" if regularised else "SNN")
        for p in all_snn:
            ax.annotate(f"T={p.steps}", (p.energy_pj(t.name) * 1e-12, p.accuracy), fontsize=7,
                        xytext=(3, -9), textcoords="offset points")
        others = [p for p in points if p.family != "snn" and p.energy_pj(t.name) is not None]
        for p, style, color in zip(others, ("s", "D", "^", "v"), ("tab:orange", "tab:red", "tab:green", "tab:purple")):
            ax.plot(p.energy_pj(t.name) * 1e-12, p.accuracy, style, color=color, label=p.name)
        front = pareto(points, t.name) if _rivals(points, t.name) else ()
        ax.plot([p.energy_pj(t.name) * 1e-12 for p in front], [p.accuracy for p in front], "--", color="0.5",
                lw=0.8, label="Pareto front")
        ax.set_xscale("log")
        ax.set(xlabel="estimated energy per inference (J, log)", ylabel="test accuracy (fused)",
               title=t.name + ("" if t.runs_macs else " (SNN only)"))
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
        ax.margins(x=0.15, y=0.15)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("ESTIMATED energy (effective counts) vs measured test accuracy", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
