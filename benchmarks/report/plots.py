"""The PNG plots beside report.md (:data:`~benchmarks.report.model.PLOTS`), one function per plot.

Matplotlib is imported only when a plot is drawn (through :mod:`taaf.training.plots`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.report.markdown import fmt_joules
from benchmarks.report.model import ATTENTION_SAMPLES_SHOWN, NOT_MEASURED, PLOTS, BenchReport
from taaf.config import ATTENTION_FUSIONS, MODALITIES

_OP_COLORS = {"AC": "tab:blue", "MAC": "tab:red", "host MAC": "tab:gray"}


def write_plots(r: BenchReport, out: Path) -> list[Path]:
    """All four PNGs (each saved atomically by ``taaf.training.plots.save_figure``)."""
    paths = [out / p for p in PLOTS]
    plot_synops(r, paths[0])
    plot_firing(r, paths[1])
    plot_energy(r, paths[2])
    plot_attention(r, paths[3])
    return paths


def plot_synops(r: BenchReport, path: Path) -> None:
    """The report's SynOps per layer (:func:`plot_synops_counts`)."""
    plot_synops_counts(r.counts, r.count_source, path)


def plot_synops_counts(c, source: str, path: Path) -> None:
    """Effective ops per layer (filled, AC vs MAC) over the dense ops (outline), log scale:
    readouts and first layers differ by two orders of magnitude."""
    from taaf.training.plots import plt, save_figure

    names = [g.name for g in c.groups] + (["host_head"] if c.host is not None else [])
    eff = [g.effective for g in c.groups] + ([c.host.macs] if c.host is not None else [])
    dense = [g.dense for g in c.groups] + ([c.host.macs] if c.host is not None else [])
    ops = [g.op for g in c.groups] + (["host MAC"] if c.host is not None else [])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.55 * len(names) + 2), 4.8))
    ax.bar(x, dense, width=0.75, facecolor="none", edgecolor="0.55", lw=0.9, ls="--", label="dense ops")
    for op, color in _OP_COLORS.items():
        idx = [i for i, o in enumerate(ops) if o == op]
        if idx:
            ax.bar(x[idx], [eff[i] for i in idx], width=0.75, color=color, label=f"effective {op}")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set(ylabel="operations per inference (log)",
           title=f"SynOps per layer: {c.synops:,.0f} effective ({c.effective_acs:,.0f} AC + "
                 f"{c.effective_macs:,.0f} MAC), {source} counts, T = {c.steps}")
    ax.title.set_fontsize(10)
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.margins(x=0.01)
    fig.tight_layout()
    save_figure(fig, path)


def plot_firing(r: BenchReport, path: Path) -> None:
    """The report's firing rates over time (:func:`plot_firing_counts`)."""
    plot_firing_counts(r.counts, r.data.split, path)


def plot_firing_counts(c, label: str, path: Path) -> None:
    """Spikes per neuron per step for every population: where activity (and cost) sits in time."""
    from taaf.training.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(8, 4.2))
    steps = np.arange(c.steps)
    for f in c.firing:
        ax.plot(steps, f.firing_rate_per_step, marker="o", ms=3, label=f"{f.population} (mean {f.firing_rate:.3f})")
    ax.set(xlabel="time step", ylabel="firing rate (spikes / neuron / step)", ylim=(0, None),
           title=f"Firing rate per layer over time ({label}, {c.samples} samples; "
                 f"activation sparsity {c.activation_sparsity:.3f})")
    ax.title.set_fontsize(10)
    ax.set_xticks(steps if c.steps <= 20 else steps[:: max(1, c.steps // 10)])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path)


def plot_energy(r: BenchReport, path: Path) -> None:
    """Estimated energy per inference, SNN vs ANN, per cost table (accuracy above each bar);
    measured GPU energy, when there is any, in its own panel: estimates and measurements never
    share an axis."""
    from taaf.training.plots import plt, save_figure

    gpu = [e for e in (r.ann_measured.gpu_energy if r.ann_measured else ()) if e.measured]
    ncols = 2 if gpu else 1
    width_ratios = [3, 1] if gpu else [1]
    fig, axes = plt.subplots(1, ncols, figsize=(4 + 1.9 * len(r.estimates) + (3 if gpu else 0), 5),
                             gridspec_kw={"width_ratios": width_ratios}, squeeze=False)
    ax = axes[0, 0]
    x = np.arange(len(r.estimates))
    w = 0.38 if r.ann is not None else 0.6
    snn_j = [e.snn.total_j for e in r.estimates]
    bars = [("SNN", snn_j, r.snn_accuracy, "tab:blue", -w / 2 if r.ann else 0.0)]
    if r.ann is not None:  # a spiking chip cannot run the ANN: no bar there (NaN draws nothing)
        bars.append(("ANN", [e.ann.total_j if e.ann else float("nan") for e in r.estimates], r.ann_accuracy,
                     "tab:orange", w / 2))
    for label, values, acc, color, dx in bars:
        rects = ax.bar(x + dx, values, w, color=color, label=f"{label} (accuracy {acc.fused:.3f})")
        for rect, v in zip(rects, values):
            if v != v:  # NaN: no ANN on this table
                continue
            ax.annotate(f"{fmt_joules(v)}\nacc {acc.fused:.3f}", (rect.get_x() + rect.get_width() / 2, v),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
    ax.set_yscale("log")
    finite = [v for _, vals, *_ in bars for v in vals if v == v]
    lo, hi = min(finite), max(finite)
    ax.set_ylim(lo / 3, hi * 12)  # room for the labels above the tallest bar
    labels = [e.table.name + ("\n(SNN only: no ANN on a spiking chip)" if e.ann is None and r.ann else "")
              for e in r.estimates]
    ax.set_xticks(x, labels, fontsize=8.5)
    ax.margins(x=0.35 if len(x) == 1 else 0.04)
    ax.set(ylabel="estimated energy per inference (J, log)",
           title=f"ESTIMATED, effective counts, compute + memory ({r.data.split} accuracy above bars)")
    ax.title.set_fontsize(10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if gpu:
        gx = axes[0, 1]
        rects = gx.bar([f"batch {e.batch}" for e in gpu], [max(e.joules_per_inference, 1e-15) for e in gpu],
                       color="tab:green")
        for rect, e in zip(rects, gpu):
            gx.annotate(f"{fmt_joules(e.joules_per_inference)}\nacc {r.ann_accuracy.fused:.3f}",
                        (rect.get_x() + rect.get_width() / 2, rect.get_height()), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
        values = [max(e.joules_per_inference, 1e-15) for e in gpu]  # net of idle: can be ~0 on a noisy GPU
        gx.set_yscale("log")
        gx.set_ylim(min(values) / 3, max(values) * 12)
        gx.set(ylabel="measured energy per inference above idle (J, log)", title=f"MEASURED: ANN on {gpu[0].device}")
        gx.grid(axis="y", alpha=0.3)
        gx.title.set_fontsize(10)
    else:
        reasons = ("no ANN baseline given" if r.ann_measured is None else
                   "; ".join(sorted({e.reason for e in r.ann_measured.gpu_energy})))
        fig.text(0.01, -0.02, f"Measured GPU energy: {NOT_MEASURED} ({reasons})", fontsize=8, color="0.3")
    fig.tight_layout()
    save_figure(fig, path)


def plot_attention(r: BenchReport, path: Path) -> None:
    """Mean alpha_t and beta_t^m over the split, with a few individual samples drawn faintly."""
    from taaf.training.plots import COLORS, plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    a = r.attention
    if a is None or a.alpha.size == 0:
        for ax in axes:
            ax.text(0.5, 0.5, "no attention (no samples)", ha="center", va="center", transform=ax.transAxes)
        save_figure(fig, path)
        return
    steps = np.arange(a.alpha.shape[1])
    k = min(ATTENTION_SAMPLES_SHOWN, len(a.alpha))
    ax = axes[0]
    for i in range(k):
        ax.plot(steps, a.alpha[i], color="0.5", lw=0.8, alpha=0.35, label="individual samples" if i == 0 else None)
    ax.fill_between(steps, *np.percentile(a.alpha, [10, 90], axis=0), color="grey", alpha=0.2, label="10-90 %")
    ax.plot(steps, a.alpha.mean(axis=0), color="black", lw=2, label="mean")
    ax.set_xticks(steps if len(steps) <= 20 else steps[:: max(1, len(steps) // 10)])
    ax.axhline(1 / len(steps), color="grey", ls=":", lw=0.8, label="uniform 1/T")
    ax.set(xlabel="time step", ylabel=r"$\alpha_t$", ylim=(0, None), title=r"temporal attention $\alpha_t$")
    ax.legend(fontsize=7.5, loc="upper right", framealpha=0.9)
    ax = axes[1]
    for j, m in enumerate(MODALITIES):
        for i in range(k):
            ax.plot(steps, a.beta[i, :, j], color=COLORS[m], lw=0.7, alpha=0.2)
        ax.plot(steps, a.beta[:, :, j].mean(axis=0), color=COLORS[m], lw=2, label=f"{m} (mean)")
    ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    ax.set_xticks(axes[0].get_xticks())
    ax.set(xlabel="time step", ylabel=r"$\beta_t^m$", ylim=(0, 1), title=r"modality attention $\beta_t^m$")
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    note = "" if a.fusion in ATTENTION_FUSIONS else f" ({a.fusion} fusion: fixed uniform weights)"
    fig.suptitle(f"SNN attention on the {r.data.split} split ({len(a.alpha)} samples; faint: {k} samples){note}",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)

