"""From per-run results to the study's tables: mean +- std over seeds, paired differences with
bootstrap confidence intervals, the floors beside them.

The results file (schema ``taaf-study/2``) holds the protocol, where it ran, the floors, one row
per (variant, setting, T), the paired comparisons (each variant against its baseline:
:data:`REFERENCE` for a method, the ablated design for an ablation) and the attention rows
(per TAAF variant and setting: did the modality attention collapse, did the coefficients move);
:func:`markdown` renders the same rows as the tables the README shows. Nothing here trains or
reads data.

The confidence interval of a difference is a paired, two-level bootstrap: each replicate
resamples the seeds and, independently, the test samples (the same samples for both methods and
every seed), so it carries both the seed-to-seed and the finite-test-set uncertainty.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks.study.job import RunResult, epochs_to_target
from benchmarks.study.protocol import REFERENCE, T_SWEEP_VARIANTS, StudyConfig, variant

SCHEMA = "taaf-study/2"
METRICS = ("fused", "audio", "visual")
BOOTSTRAP = 4000  # replicates per confidence interval
CONFIDENCE = 0.95


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
    epochs_to_target: Stat  # over the runs that reached the target
    reached_target: int  # how many of the seeds' runs reached it
    stopped_epoch: Stat
    kept_last_epoch: int  # runs whose kept epoch was the last one trained at the cap (budget too small)
    synops: Stat
    firing_rate: Stat
    train_seconds: Stat


def aggregate(results: list[RunResult], cap: int = 0, target: float | None = None) -> list[Row]:
    """Group runs by (variant, setting, T) and summarise each metric over seeds; ``cap`` is the
    study's epoch cap (a run kept at its last epoch there may have wanted more budget).
    ``target``: the absolute convergence target, recomputed from each run's validation history
    (None: the epochs each run stored when it trained), so a re-summary can change it."""
    cells: dict[tuple[str, str, int], list[RunResult]] = defaultdict(list)
    for r in results:
        cells[(r.variant, r.setting, r.steps)].append(r)
    rows = []
    for (name, setting, steps), runs in cells.items():
        runs = sorted(runs, key=lambda r: r.seed)
        reached = [r.epochs_to_target if target is None else
                   epochs_to_target([h["val"]["fused"] for h in r.history], target) for r in runs]
        rows.append(Row(
            variant=name, setting=setting, steps=steps, seeds=tuple(r.seed for r in runs),
            **{m: Stat.of([r.test[m] for r in runs]) for m in METRICS},
            epochs_to_target=Stat.of([e for e in reached if e is not None] or [0.0]),
            reached_target=sum(e is not None for e in reached),
            stopped_epoch=Stat.of([r.stopped_epoch for r in runs]),
            kept_last_epoch=sum(r.selected_epoch == r.stopped_epoch == cap for r in runs),
            synops=Stat.of([r.synops for r in runs]),
            firing_rate=Stat.of([r.firing_rate for r in runs]),
            train_seconds=Stat.of([r.train_seconds for r in runs]),
        ))
    return rows


@dataclass(frozen=True)
class Comparison:
    """variant - baseline, paired by seed, on one setting at one T, with a bootstrap CI (fused
    metric only: per-sample correctness is kept for the fused prediction)."""

    variant: str
    baseline: str
    setting: str
    steps: int
    metric: str
    difference: Stat
    wins: int  # seeds where the variant is strictly better
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class AttentionRow:
    """Whether a TAAF variant's attention collapsed and its modulation moved, in one setting:
    the per-epoch training averages of the stored histories, over seeds."""

    variant: str
    setting: str
    modality_entropy_last: Stat  # normalised H(beta) in the last epoch trained (1 = even, 0 = one modality)
    modality_entropy_min: Stat  # its lowest epoch
    audio_share_last: Stat  # audio's share of the importance scores, last epoch
    k_audio_last: Stat  # learning-rate coefficients in the last epoch (1 = not slowed)
    k_visual_last: Stat


def attention_rows(cfg: StudyConfig, results: list[RunResult]) -> list[AttentionRow]:
    """One :class:`AttentionRow` per TAAF variant and setting at the main T (runs that logged no
    attention entropy, written before it was recorded, are left out)."""
    cells: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for r in results:
        if r.variant.startswith("taaf") and r.steps == cfg.steps and r.history \
                and "attention_entropy" in r.history[-1]:
            cells[(r.variant, r.setting)].append(r)
    rows = []
    for (name, setting), runs in cells.items():
        rows.append(AttentionRow(
            variant=name, setting=setting,
            modality_entropy_last=Stat.of([r.history[-1]["attention_entropy"]["modality"] for r in runs]),
            modality_entropy_min=Stat.of([min(h["attention_entropy"]["modality"] for h in r.history) for r in runs]),
            audio_share_last=Stat.of([r.history[-1]["importance"]["audio"] for r in runs]),
            k_audio_last=Stat.of([r.history[-1]["coefficient"]["audio"] for r in runs]),
            k_visual_last=Stat.of([r.history[-1]["coefficient"]["visual"] for r in runs])))
    order = {v: i for i, v in enumerate(cfg.variants)}
    return sorted(rows, key=lambda a: (cfg.settings.index(a.setting) if a.setting in cfg.settings else 99,
                                       order.get(a.variant, 99)))


#: The ``setting`` of a comparison pooled over every setting both variants ran in.
POOLED = "pooled"


def paired_bootstrap(a: np.ndarray, b: np.ndarray, replicates: int = BOOTSTRAP, seed: int = 0,
                     confidence: float = CONFIDENCE) -> tuple[float, float]:
    """CI of mean(a - b) for per-sample correctness a, b [seeds, samples] (paired by row and
    column): resample seeds and samples, independently, ``replicates`` times."""
    return blocked_bootstrap([(a, b)], replicates, seed, confidence)


def blocked_bootstrap(blocks: list[tuple[np.ndarray, np.ndarray]], replicates: int = BOOTSTRAP, seed: int = 0,
                      confidence: float = CONFIDENCE) -> tuple[float, float]:
    """:func:`paired_bootstrap` over independent blocks (one per data setting: its own test set
    and runs), each resampled on its own; a replicate's statistic is the mean of the block means."""
    diffs = [np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64) for a, b in blocks]
    rng = np.random.default_rng(seed)
    means = np.zeros(replicates)
    for i in range(replicates):
        for d in diffs:
            n_seeds, n_samples = d.shape
            rows = rng.integers(0, n_seeds, n_seeds)
            cols = rng.integers(0, n_samples, n_samples)
            means[i] += d[np.ix_(rows, cols)].mean() / len(diffs)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _correct(r: RunResult) -> np.ndarray:
    return np.frombuffer(r.correct.encode(), dtype=np.uint8) - ord("0")


def paired(results: list[RunResult], name: str, baseline: str, steps: int, metric: str = "fused") -> list[Comparison]:
    """``name`` minus ``baseline`` on ``metric``, paired by seed, per setting at T = ``steps``;
    with two or more settings also :data:`POOLED`: the mean over every (setting, seed) pair, and
    a CI from a bootstrap resampling each setting's seeds and samples (settings weighted equally;
    the study gives every setting the same seeds, so the two weightings agree)."""
    by_key = {(r.variant, r.setting, r.steps, r.seed): r for r in results}
    out, blocks, pooled = [], [], []
    for setting in sorted({r.setting for r in results}):
        seeds = sorted(s for (v, st, t, s) in by_key
                       if (v, st, t) == (name, setting, steps) and (baseline, setting, steps, s) in by_key)
        mine = [by_key[(name, setting, steps, s)] for s in seeds]
        theirs = [by_key[(baseline, setting, steps, s)] for s in seeds]
        diffs = [a.test[metric] - b.test[metric] for a, b in zip(mine, theirs)]
        if not diffs:
            continue
        pooled += diffs
        low = high = None
        if metric == "fused" and all(r.correct for r in mine + theirs):
            block = (np.stack([_correct(r) for r in mine]), np.stack([_correct(r) for r in theirs]))
            blocks.append(block)
            low, high = paired_bootstrap(*block)
        out.append(Comparison(name, baseline, setting, steps, metric, Stat.of(diffs), sum(d > 0 for d in diffs),
                              low, high))
    if len(out) > 1:
        low = high = None
        if len(blocks) == len(out):
            low, high = blocked_bootstrap(blocks)
        out.append(Comparison(name, baseline, POOLED, steps, metric, Stat.of(pooled), sum(c.wins for c in out),
                              low, high))
    return out


def comparisons(cfg: StudyConfig, results: list[RunResult]) -> list[Comparison]:
    """Every variant minus its baseline (a method minus :data:`REFERENCE`, an ablation minus the
    design it ablates), on each metric, at the main T; pairs whose baseline is not in the study
    are left out."""
    return [c for other in cfg.variants if (base := variant(other).baseline) != other and base in cfg.variants
            for metric in METRICS for c in paired(results, other, base, cfg.steps, metric)]


def results_document(cfg: StudyConfig, results: list[RunResult], execution: dict[str, Any],
                     machine: dict[str, Any], floors: dict[str, dict[str, float]] | None = None) -> dict:
    """The study.json document: protocol, execution record, machine, floors, aggregated rows and comparisons."""
    rows = aggregate(results, cfg.epochs, cfg.convergence_target)
    return {
        "schema": SCHEMA,
        "protocol": {
            "dataset": cfg.dataset, "settings": list(cfg.settings), "variants": {
                v: variant(v).description for v in cfg.variants},
            "seeds": list(cfg.seeds), "steps": cfg.steps, "t_sweep": list(cfg.t_sweep),
            "t_sweep_setting": cfg.t_sweep_setting, "budget": cfg.budget(), "quick": cfg.quick,
            "epochs_to_target": f"first epoch whose validation fused accuracy reached {cfg.convergence_target:.0%} "
                                "(absolute; runs that never do are counted apart)",
            "confidence_intervals": f"{CONFIDENCE:.0%} paired bootstrap over seeds and test samples "
                                    f"({BOOTSTRAP} replicates) of variant minus its baseline ({REFERENCE} for the "
                                    "methods, the ablated design for an ablation), fused accuracy",
            "synops": f"NeuroBench effective ACs + MACs per inference on {cfg.synops_samples} test samples (chip only)",
        },
        "execution": execution,
        "machine": machine,
        "floors": floors or {},
        "rows": [asdict(r) for r in rows],
        "comparisons": [asdict(c) for c in comparisons(cfg, results)],
        "attention": [asdict(a) for a in attention_rows(cfg, results)],
    }


def markdown(cfg: StudyConfig, results: list[RunResult], floors: dict[str, dict[str, float]] | None = None) -> str:
    """The floors, the main table (T = cfg.steps), the T sweep and every variant's paired
    difference from the reference with its bootstrap CI, as Markdown."""
    rows = aggregate(results, cfg.epochs, cfg.convergence_target)
    lines = []
    if floors:
        gru = any("gru" in f for f in floors.values())
        lines += ["Floors, test accuracy (%): logistic-regression probes on each modality's raw input, their linear "
                  "late fusion (product of experts)" + (", and a non-spiking GRU on the same frames" if gru else "")
                  + ".", "", "| setting | audio probe | visual probe | linear fusion |" + (" GRU |" if gru else ""),
                  "|---|---|---|---|" + ("---|" if gru else "")]
        for setting in cfg.settings:
            if setting in floors:
                f = floors[setting]
                lines.append(f"| {setting} | {f['audio_probe'] * 100:.1f} | {f['visual_probe'] * 100:.1f} | "
                             f"{f['linear_fusion'] * 100:.1f} |" + (f" {f['gru'] * 100:.1f} |" if gru else ""))
        lines.append("")
    lines += [f"Test accuracy (%) of the kept model, mean ± std over seeds {list(cfg.seeds)}; T = {cfg.steps}; "
              f"at most {cfg.epochs} epochs, early stopping after {cfg.patience} without improvement, the same for "
              f"every method. Epochs to {cfg.convergence_target:.0%}: first epoch at that validation accuracy "
              f"(runs that reached it / all).", "",
              f"| setting | method | fused | audio-only | visual-only | epochs to {cfg.convergence_target:.0%} "
              "| epochs trained | SynOps / inference |",
              "|---|---|---|---|---|---|---|---|"]
    order = {v: i for i, v in enumerate(cfg.variants)}
    main = sorted((r for r in rows if r.steps == cfg.steps and r.setting in cfg.settings),
                  key=lambda r: (cfg.settings.index(r.setting), order.get(r.variant, 99)))
    for r in main:
        reached = f"{r.epochs_to_target.fmt()} ({r.reached_target}/{r.fused.n})" if r.reached_target else \
            f"never (0/{r.fused.n})"
        lines.append(f"| {r.setting} | {r.variant} | {r.fused.fmt(100)} | {r.audio.fmt(100)} | {r.visual.fmt(100)} "
                     f"| {reached} | {r.stopped_epoch.fmt()} | {r.synops.mean / 1e3:,.0f}k ± {r.synops.std / 1e3:,.0f}k |")
    capped = sum(r.kept_last_epoch for r in main)
    lines += ["", f"Runs whose kept epoch was the last one at the {cfg.epochs}-epoch cap: {capped} of "
              f"{sum(r.fused.n for r in main)}."]
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
    columns = [*cfg.settings, *([POOLED] if any(c.setting == POOLED for c in comps) else [])]
    if comps:
        lines += ["", f"Each variant minus its baseline ({REFERENCE}, TAAF with fused evidence, for every method; the "
                  "ablated design for an ablation), fused test accuracy in points: mean over seeds "
                  f"[{CONFIDENCE:.0%} paired bootstrap CI over seeds and test samples] (seeds where the variant is "
                  "better). A CI that excludes 0 is a difference this study can see. "
                  f"{POOLED}: every setting the variant ran in, weighted equally.", "",
                  "| variant | minus | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
        for other in cfg.variants:
            cells = {c.setting: c for c in comps if c.variant == other}
            if cells:
                base = next(iter(cells.values())).baseline
                lines.append(f"| {other} | {base} | "
                             + " | ".join(_cell(cells[s]) if s in cells else "-" for s in columns) + " |")
    lines += _attention_table(cfg, results)
    return "\n".join(lines) + "\n"


def _attention_table(cfg: StudyConfig, results: list[RunResult]) -> list[str]:
    rows = attention_rows(cfg, results)
    if not rows:
        return []
    lines = ["", f"TAAF attention and modulation during training (T = {cfg.steps}; mean ± std over seeds): the "
             "normalised modality-attention entropy H_m in the last epoch trained and at its lowest epoch "
             "(1 = beta spread evenly, 0 = collapsed onto one modality), audio's share of the importance "
             "scores and the learning-rate coefficients k in the last epoch (1 = not slowed).", "",
             "| setting | variant | H_m last | H_m lowest | audio share | k_audio | k_visual |",
             "|---|---|---|---|---|---|---|"]
    for a in rows:
        lines.append(f"| {a.setting} | {a.variant} | {a.modality_entropy_last.fmt(digits=2)} | "
                     f"{a.modality_entropy_min.fmt(digits=2)} | {a.audio_share_last.fmt(digits=2)} | "
                     f"{a.k_audio_last.fmt(digits=2)} | {a.k_visual_last.fmt(digits=2)} |")
    return lines


def _cell(c: Comparison) -> str:
    ci = "" if c.ci_low is None else f" [{c.ci_low * 100:+.1f}, {c.ci_high * 100:+.1f}]"
    return f"{c.difference.mean * 100:+.1f}{ci} ({c.wins}/{c.difference.n})"
