"""From per-run results to the study's tables: mean +- std over seeds, paired differences.

The results file (schema ``taaf-study/1``) holds the protocol, where it ran, one row per
(variant, setting, T) and the paired comparisons; :func:`markdown` renders the same rows as the
table the README shows. Nothing here trains or reads data.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks.study.job import RunResult
from benchmarks.study.protocol import T_SWEEP_VARIANTS, StudyConfig, variant

SCHEMA = "taaf-study/1"
METRICS = ("fused", "audio", "visual")


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of a metric over seeds."""

    mean: float
    std: float  # sample standard deviation over seeds (0 for one seed)
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Stat":
        """The statistic of ``values`` (std 0 for a single value)."""
        arr = np.asarray(values, dtype=np.float64)
        return cls(float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, len(arr))

    def fmt(self, scale: float = 1.0, digits: int = 1) -> str:
        """'mean ± std' with both scaled by ``scale`` (e.g. 100 for percent), for tables."""
        return f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}"


@dataclass(frozen=True)
class Row:
    """One (variant, setting, T) cell of the study, aggregated over seeds."""

    variant: str
    setting: str
    steps: int
    seeds: tuple[int, ...]
    fused: Stat
    audio: Stat
    visual: Stat
    epochs_to_95: Stat
    synops: Stat
    firing_rate: Stat
    train_seconds: Stat


def aggregate(results: list[RunResult]) -> list[Row]:
    """Group runs by (variant, setting, T) and summarise each metric over seeds."""
    cells: dict[tuple[str, str, int], list[RunResult]] = defaultdict(list)
    for r in results:
        cells[(r.variant, r.setting, r.steps)].append(r)
    rows = []
    for (name, setting, steps), runs in cells.items():
        runs = sorted(runs, key=lambda r: r.seed)
        rows.append(Row(
            variant=name, setting=setting, steps=steps, seeds=tuple(r.seed for r in runs),
            **{m: Stat.of([r.test[m] for r in runs]) for m in METRICS},
            epochs_to_95=Stat.of([r.epochs_to_95 for r in runs]),
            synops=Stat.of([r.synops for r in runs]),
            firing_rate=Stat.of([r.firing_rate for r in runs]),
            train_seconds=Stat.of([r.train_seconds for r in runs]),
        ))
    return rows


@dataclass(frozen=True)
class Comparison:
    """variant - baseline, paired by seed, on one setting at one T."""

    variant: str
    baseline: str
    setting: str
    steps: int
    metric: str
    difference: Stat
    wins: int  # seeds where the variant is strictly better


def paired(results: list[RunResult], name: str, baseline: str, steps: int, metric: str = "fused") -> list[Comparison]:
    """``name`` minus ``baseline`` on ``metric``, paired by seed, per setting at T = ``steps``."""
    by_key = {(r.variant, r.setting, r.steps, r.seed): r for r in results}
    out = []
    for setting in sorted({r.setting for r in results}):
        seeds = sorted(s for (v, st, t, s) in by_key
                       if (v, st, t) == (name, setting, steps) and (baseline, setting, steps, s) in by_key)
        diffs = [by_key[(name, setting, steps, s)].test[metric] - by_key[(baseline, setting, steps, s)].test[metric]
                 for s in seeds]
        if diffs:
            out.append(Comparison(name, baseline, setting, steps, metric, Stat.of(diffs), sum(d > 0 for d in diffs)))
    return out


def comparisons(cfg: StudyConfig, results: list[RunResult]) -> list[Comparison]:
    """TAAF against every baseline and every ablation, on each metric, at the main T."""
    if "taaf" not in cfg.variants:
        return []
    return [c for other in cfg.variants if other != "taaf" for metric in METRICS
            for c in paired(results, "taaf", other, cfg.steps, metric)]


def results_document(cfg: StudyConfig, results: list[RunResult], execution: dict[str, Any],
                     machine: dict[str, Any]) -> dict:
    """The study.json document: protocol, execution record, machine, aggregated rows and comparisons."""
    rows = aggregate(results)
    return {
        "schema": SCHEMA,
        "protocol": {
            "dataset": cfg.dataset, "settings": list(cfg.settings), "variants": {
                v: variant(v).description for v in cfg.variants},
            "seeds": list(cfg.seeds), "steps": cfg.steps, "t_sweep": list(cfg.t_sweep),
            "t_sweep_setting": cfg.t_sweep_setting, "budget": cfg.budget(), "quick": cfg.quick,
            "epochs_to_95": "first epoch whose validation fused accuracy reached 95 % of the kept model's",
            "synops": f"NeuroBench effective ACs + MACs per inference on {cfg.synops_samples} test samples (chip only)",
        },
        "execution": execution,
        "machine": machine,
        "rows": [asdict(r) for r in rows],
        "comparisons": [asdict(c) for c in comparisons(cfg, results)],
    }


def markdown(cfg: StudyConfig, results: list[RunResult]) -> str:
    """The main table (T = cfg.steps), the T sweep and TAAF's paired differences, as Markdown."""
    rows = aggregate(results)
    lines = [f"Test accuracy (%) of the kept model, mean ± std over seeds {list(cfg.seeds)}; "
             f"T = {cfg.steps}, {cfg.epochs} epochs for every method.", "",
             "| setting | method | fused | audio-only | visual-only | epochs to 95 % | SynOps / inference |",
             "|---|---|---|---|---|---|---|"]
    order = {v: i for i, v in enumerate(cfg.variants)}
    main = sorted((r for r in rows if r.steps == cfg.steps and r.setting in cfg.settings),
                  key=lambda r: (cfg.settings.index(r.setting), order.get(r.variant, 99)))
    for r in main:
        lines.append(f"| {r.setting} | {r.variant} | {r.fused.fmt(100)} | {r.audio.fmt(100)} | {r.visual.fmt(100)} "
                     f"| {r.epochs_to_95.fmt()} | {r.synops.mean / 1e3:,.0f}k ± {r.synops.std / 1e3:,.0f}k |")
    sweep = sorted((r for r in rows if r.setting == cfg.t_sweep_setting and r.steps in cfg.t_sweep
                    and r.variant in T_SWEEP_VARIANTS),
                   key=lambda r: (order.get(r.variant, 99), r.steps))
    if sweep:
        lines += ["", f"Time-step sweep ({cfg.t_sweep_setting}): test accuracy (%), SynOps per inference and firing rate.", "",
                  "| method | T | fused | audio-only | visual-only | SynOps / inference | firing rate |",
                  "|---|---|---|---|---|---|---|"]
        for r in sweep:
            lines.append(f"| {r.variant} | {r.steps} | {r.fused.fmt(100)} | {r.audio.fmt(100)} | {r.visual.fmt(100)} "
                         f"| {r.synops.mean / 1e3:,.0f}k ± {r.synops.std / 1e3:,.0f}k | {r.firing_rate.fmt(100)} % |")
    comps = [c for c in comparisons(cfg, results) if c.metric == "fused"]
    if comps:
        lines += ["", "TAAF minus each other method, fused test accuracy (points), paired by seed "
                  "(wins = seeds where TAAF is better).", "", "| versus | " + " | ".join(cfg.settings) + " |",
                  "|---|" + "---|" * len(cfg.settings)]
        for other in [v for v in cfg.variants if v != "taaf"]:
            cells = {c.setting: c for c in comps if c.baseline == other}
            lines.append(f"| {other} | " + " | ".join(
                f"{cells[s].difference.mean * 100:+.1f} ± {cells[s].difference.std * 100:.1f} "
                f"({cells[s].wins}/{cells[s].difference.n})" if s in cells else "-" for s in cfg.settings) + " |")
    return "\n".join(lines) + "\n"
