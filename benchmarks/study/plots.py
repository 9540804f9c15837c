"""The study's five figures: accuracy over epochs, modulation coefficients, accuracy vs T,
attention over time on test samples, and the attention's entropy during training. Curves are means over seeds of the *validation* split (what training
saw for model selection); the shaded band is the min-max over seeds."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.study.job import RunResult  # noqa: E402
from benchmarks.study.protocol import REFERENCE, T_SWEEP_VARIANTS, Job, StudyConfig  # noqa: E402
from benchmarks.study.summary import aggregate  # noqa: E402
from taaf.config import MODALITIES  # noqa: E402
from taaf.training.plots import save_figure  # noqa: E402

METRICS = ("fused", "audio", "visual")


def balances(cfg: StudyConfig, name: str) -> bool:
    """Whether a variant's coefficients can move (concat and TAAF without modulation keep k = 1)."""
    train = cfg.train_config(Job(name, cfg.settings[0], cfg.seeds[0], cfg.steps))
    return train.method in ("ogm-ge", "ogm-ge-published") or (train.method == "taaf" and train.modulate_lr)


def _colors(variants: tuple[str, ...]) -> dict[str, str]:
    cmap = plt.get_cmap("tab20" if len(variants) > 10 else "tab10")
    return {v: cmap(i % cmap.N) for i, v in enumerate(variants)}


def _curves(results: list[RunResult], steps: int, key) -> dict[tuple[str, str], np.ndarray]:
    """(variant, setting) -> [seeds, epochs] array of key(history entry), up to the shortest run."""
    groups: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
    for r in results:
        if r.steps == steps:
            groups[(r.variant, r.setting)].append([key(h) for h in r.history])
    # Runs that stopped early are shorter: keep the epochs every run of the group has.
    return {k: np.asarray([c[:min(map(len, v))] for c in v], dtype=np.float64) for k, v in groups.items()}


def _band(ax, values: np.ndarray, color, label: str, style: str = "-") -> None:
    epochs = np.arange(1, values.shape[1] + 1)
    ax.plot(epochs, values.mean(axis=0), style, color=color, label=label, lw=1.5)
    if len(values) > 1:
        ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=color, alpha=0.12, lw=0)


def plot_accuracy_curves(cfg: StudyConfig, results: list[RunResult], path: Path) -> None:
    """Rows = settings, columns = fused / audio-only / visual-only validation accuracy."""
    colors = _colors(cfg.variants)
    fig, axes = plt.subplots(len(cfg.settings), 3, figsize=(14, 3.4 * len(cfg.settings)), squeeze=False, layout="constrained")
    for metric_i, metric in enumerate(METRICS):
        curves = _curves(results, cfg.steps, lambda h, m=metric: h["val"][m])
        for row, setting in enumerate(cfg.settings):
            ax = axes[row, metric_i]
            for v in cfg.variants:
                if (v, setting) in curves:
                    _band(ax, curves[(v, setting)], colors[v], v)
            ax.set_title(f"{setting}: {metric}{'' if metric == 'fused' else '-only'}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("val accuracy")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Accuracy over epochs (mean over seeds {list(cfg.seeds)}, band = min-max), T = {cfg.steps}")
    save_figure(fig, path)


def plot_coefficients(cfg: StudyConfig, results: list[RunResult], path: Path) -> None:
    """Mean modulation coefficient k_m per epoch (learning-rate scale for TAAF, gradient scale
    for OGM-GE); solid audio, dashed visual."""
    variants = tuple(v for v in cfg.variants if balances(cfg, v))
    colors = _colors(cfg.variants)
    fig, axes = plt.subplots(1, len(cfg.settings), figsize=(5 * len(cfg.settings), 3.6), squeeze=False, layout="constrained")
    for col, setting in enumerate(cfg.settings):
        ax = axes[0, col]
        for m, style in zip(MODALITIES, ("-", "--")):
            curves = _curves(results, cfg.steps, lambda h, m=m: h["coefficient"][m])
            for v in variants:
                if (v, setting) in curves:
                    _band(ax, curves[(v, setting)], colors[v], f"{v} k_{m}", style)
        ax.set_ylim(0, 1.05)
        ax.set_title(setting)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean coefficient k")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.suptitle("Modality-balancing coefficients (solid: audio, dashed: visual; 1 = not slowed)")
    save_figure(fig, path)


def plot_accuracy_vs_steps(cfg: StudyConfig, results: list[RunResult], path: Path) -> None:
    """Fused / visual-only accuracy and SynOps against T for the T-sweep variants (mean and std over seeds)."""
    rows = [r for r in aggregate(results) if r.setting == cfg.t_sweep_setting and r.steps in cfg.t_sweep]
    colors = _colors(cfg.variants)
    fig, (acc_ax, ops_ax) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for v in T_SWEEP_VARIANTS:
        mine = sorted((r for r in rows if r.variant == v), key=lambda r: r.steps)
        if not mine:
            continue
        steps = [r.steps for r in mine]
        acc_ax.errorbar(steps, [100 * r.fused.mean for r in mine], yerr=[100 * r.fused.std for r in mine],
                        marker="o", capsize=3, color=colors[v], label=f"{v} fused")
        acc_ax.plot(steps, [100 * r.visual.mean for r in mine], ":", marker=".", color=colors[v],
                    label=f"{v} visual-only")
        ops_ax.errorbar(steps, [r.synops.mean / 1e3 for r in mine], yerr=[r.synops.std / 1e3 for r in mine],
                        marker="o", capsize=3, color=colors[v], label=v)
    for ax in (acc_ax, ops_ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(cfg.t_sweep), [str(t) for t in cfg.t_sweep])
        ax.set_xlabel("time steps T")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    acc_ax.set_ylabel("test accuracy (%)")
    ops_ax.set_ylabel("SynOps per inference (thousands)")
    fig.suptitle(f"Accuracy and synaptic operations vs time steps ({cfg.t_sweep_setting}, "
                 f"mean ± std over seeds)")
    save_figure(fig, path)


def plot_attention(cfg: StudyConfig, results: list[RunResult], path: Path) -> None:
    """TAAF's temporal attention alpha_t and audio share beta_t^audio for a few test samples,
    one row per setting (first seed), of :data:`REFERENCE` (else gate-only TAAF)."""
    shown = next((v for v in (REFERENCE, "taaf") if v in cfg.variants), None)
    runs = {r.setting: r for r in results if r.variant == shown and r.steps == cfg.steps and r.attention}
    settings = [s for s in cfg.settings if s in runs]
    if not settings:
        return
    fig, axes = plt.subplots(len(settings), 2, figsize=(11, 3.2 * len(settings)), squeeze=False, layout="constrained")
    for row, setting in enumerate(settings):
        att = runs[setting].attention
        alpha, beta = np.asarray(att.alpha), np.asarray(att.beta)
        steps = np.arange(alpha.shape[1])
        for i in range(len(alpha)):
            tag = f"sample {i} (label {att.labels[i]}, predicted {att.predicted[i]})"
            axes[row, 0].plot(steps, alpha[i], marker=".", label=tag)
            axes[row, 1].plot(steps, beta[i, :, 0], marker=".", label=tag)
        axes[row, 0].axhline(1 / len(steps), color="grey", ls=":", lw=1)
        axes[row, 1].axhline(0.5, color="grey", ls=":", lw=1)
        axes[row, 0].set_title(f"{setting}: temporal attention alpha_t")
        axes[row, 1].set_title(f"{setting}: modality attention beta_t (audio share)")
        axes[row, 1].set_ylim(0, 1)
        for ax in axes[row]:
            ax.set_xlabel("step t")
            ax.grid(alpha=0.3)
        axes[row, 0].legend(fontsize=6)
    fig.suptitle(f"{shown} attention on test samples (seed {runs[settings[0]].seed})")
    save_figure(fig, path)


def plot_attention_dynamics(cfg: StudyConfig, results: list[RunResult], path: Path) -> None:
    """Per setting, for every attention variant: the normalised modality-attention entropy H_m
    (1 = beta spread evenly, 0 = collapsed onto one modality) and the audio share of the
    importance scores per epoch: whether the attention collapses, and onto which modality."""
    variants = tuple(v for v in cfg.variants if v.startswith("taaf"))
    if not variants:
        return
    colors = _colors(cfg.variants)
    fig, axes = plt.subplots(2, len(cfg.settings), figsize=(5 * len(cfg.settings), 6.4), squeeze=False,
                             layout="constrained")
    entropy = _curves(results, cfg.steps, lambda h: h.get("attention_entropy", {}).get("modality", np.nan))
    share = _curves(results, cfg.steps, lambda h: h["importance"]["audio"])
    for col, setting in enumerate(cfg.settings):
        for v in variants:
            if (v, setting) in entropy:
                _band(axes[0, col], entropy[(v, setting)], colors[v], v)
                _band(axes[1, col], share[(v, setting)], colors[v], v)
        axes[0, col].set(title=f"{setting}: modality-attention entropy H_m", ylim=(0, 1.05), xlabel="epoch")
        axes[1, col].set(title=f"{setting}: audio share of importance", ylim=(0, 1.0), xlabel="epoch")
        axes[1, col].axhline(0.5, color="grey", ls=":", lw=1)
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("TAAF attention during training (mean over seeds, band = min-max; epochs up to the shortest run)")
    save_figure(fig, path)


def plot_all(cfg: StudyConfig, results: list[RunResult], out: Path) -> list[Path]:
    """Draw every study plot into ``out``; returns the files actually written."""
    paths = [out / "accuracy_curves.png", out / "coefficients.png", out / "accuracy_vs_steps.png",
             out / "attention.png", out / "attention_dynamics.png"]
    for fn, p in zip((plot_accuracy_curves, plot_coefficients, plot_accuracy_vs_steps, plot_attention,
                      plot_attention_dynamics), paths):
        fn(cfg, results, p)
    return [p for p in paths if p.exists()]
