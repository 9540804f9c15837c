"""``taaf study``: the imbalance study in one command.

    taaf study [--quick] [--out DIR] [--dataset av-mnist-temporal|av-digits|crema-d|ave --root DIR]
               [--seeds 0 1 2 3 4] [--epochs N] [--variants ...] [--settings ...] [--workers N]
               [--device auto|cpu|cuda] [--tune] [--summarize] [--replace]

Trains every variant (TAAF with fused evidence, the default, and gate-only, concat, concat +
auxiliary loss, OGM-GE in our Adam form and as published, OGM, the ablations of both TAAF
designs) in every data setting over the seeds, plus both TAAF designs and concat over the T sweep, then writes OUT/study.json (schema
``taaf-study/2``), OUT/report.md and five PNG plots, with the floors (``floors.json``) beside
the methods. ``--tune`` first runs the same number of learning-rate trials for every method
(seed 0, first setting, the study's budget) and writes OUT/tuning.json; a study in a folder
holding tuning.json trains each method at its chosen rate. Finished runs are kept in OUT/runs/
and reused, so an interrupted study picks up where it stopped. Registered through the
``taaf.commands`` entry point.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from taaf import argtypes as num
from taaf.errors import TaafError
from taaf.paths import prepare_output_dir

#: Where each data set's study lands by default: v2 (AV-MNIST-Temporal) is the study of record;
#: the AV-Digits folder holds the v1 study (schema 1, 3 seeds) it replaced.
DEFAULT_OUTS = {"av-mnist-temporal": "benchmarks/results/study", "av-digits": "benchmarks/results/study-av-digits"}
QUICK_OUT = "runs/study-quick"
DEFAULT_DATASET = "av-mnist-temporal"


def default_out(dataset: str) -> str:
    """The output folder of ``dataset``'s study when --out is not given."""
    return DEFAULT_OUTS.get(dataset, f"runs/study-{dataset}")


def register(subparsers) -> None:
    """Add the ``study`` subcommand to ``taaf`` (called through the ``taaf.commands`` entry point)."""
    from benchmarks.study.protocol import VARIANT_NAMES
    from taaf.data import DATASETS

    p = subparsers.add_parser(
        "study", help="the imbalance study: every method x setting x seed, T sweep, tables and plots",
        description="Train TAAF, concat, OGM-GE (with / without GE) and TAAF ablations over seeds and data "
                    "settings with equal budgets (model selection on validation), sweep T for TAAF and concat, "
                    "count SynOps, and write study.json, report.md and plots. Finished runs are reused.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke version: 1 seed, 2 epochs, T sweep {2, 4} (av-mnist-temporal: one preset, T sweep {12}); "
                        "a few minutes on 2 cores")
    p.add_argument("--out", default=None, help=f"output folder (default: {', '.join(f'{d} {o}' for d, o in DEFAULT_OUTS.items())}, "
                                               f"others runs/study-DATASET; {QUICK_OUT} with --quick)")
    p.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET,
                   help="crema-d / ave run their own (natural) imbalance as the one setting")
    p.add_argument("--root", default="", help="CREMA-D / AVE data root (standard OGM-GE layout)")
    p.add_argument("--seeds", type=num.seed, nargs="+", default=None, help="training seeds (default 0 1 2 3 4)")
    p.add_argument("--epochs", type=num.epochs, default=None,
                   help="epoch cap for every method (default 12 on av-mnist-temporal, 30 elsewhere); early stopping "
                        "ends most runs sooner")
    p.add_argument("--tune", action="store_true",
                   help="run the learning-rate trials (4 per method) and write OUT/tuning.json, then stop")
    p.add_argument("--variants", nargs="+", choices=VARIANT_NAMES, default=None, help="subset of methods")
    p.add_argument("--settings", nargs="+", default=None,
                   help="presets (AV-Digits default: clean audio-dominant visual-dominant; AV-MNIST-Temporal: its five)")
    p.add_argument("--workers", type=num.int_in(1, 1024, "workers"), default=None,
                   help="parallel training processes (default: CPU cores, 1 on CUDA)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--summarize", action="store_true", help="only re-summarise the runs already in OUT/runs")
    p.add_argument("--replace", action="store_true",
                   help="allow writing a study.json over one that holds variants, settings or seeds this run "
                        "leaves out (refused otherwise: a subset run would silently replace the record)")
    p.set_defaults(handler=cmd_study)


def cmd_study(args) -> int:
    """``taaf study``: run (or only re-summarise) the study and write study.json, report.md and the plots."""
    from benchmarks.bench_cli import machine
    from benchmarks.study.floors import study_floors
    from benchmarks.study.plots import plot_all
    from benchmarks.study.protocol import StudyConfig
    from benchmarks.study.runner import reusable, run_study
    from benchmarks.study.summary import markdown, results_document
    from taaf.cli import resolve_device
    from taaf.data.cache import atomic_write_bytes

    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in
                 (("seeds", args.seeds), ("epochs", args.epochs), ("variants", args.variants),
                  ("settings", args.settings)) if v is not None}
    cfg = StudyConfig.for_dataset(args.dataset, args.root, quick=args.quick, **overrides)
    if args.workers is not None and args.workers < 1:
        raise TaafError("--workers must be >= 1")
    out = prepare_output_dir(args.out or (QUICK_OUT if args.quick else default_out(args.dataset)))
    _check_same_dataset(out, cfg.dataset)
    if not args.tune and not args.replace:
        _check_not_narrowing(out, cfg)
    device = resolve_device(args.device)
    if args.tune:
        return _tune(cfg, out, device, args.workers)
    cfg = with_tuned_lrs(cfg, out)
    if args.summarize:
        results = [reusable(cfg, out, job) for job in cfg.jobs()]  # tuning trials count, as in a run
        missing = sum(r is None for r in results)
        if missing:
            raise TaafError(f"{missing} of {len(results)} runs are missing in {out}/runs (run without --summarize)")
        # Keep the record of where the runs were actually trained.
        execution = _previous_execution(out / "study.json") or {"jobs_run": 0, "jobs_reused": len(results)}
    else:
        results, ran = run_study(cfg, out, device=device, workers=args.workers)
        print(f"trained {ran.jobs_run} runs in {ran.wall_seconds / 60:.1f} min")
        execution = asdict(ran)
    floors = study_floors(cfg, out, compute=not cfg.quick)
    document = results_document(cfg, results, execution, machine().as_dict(), floors)
    atomic_write_bytes(out / "study.json", json.dumps(document, indent=2).encode())
    table = markdown(cfg, results, floors)
    atomic_write_bytes(out / "report.md", f"# Imbalance study ({cfg.dataset})\n\n{table}".encode())
    plots = plot_all(cfg, results, out)
    print(table)
    print(f"wrote {out}/study.json, {out}/report.md and {len(plots)} plots")
    return 0


TUNING_FILE = "tuning.json"


def _tune(cfg, out, device: str, workers: int | None) -> int:
    """Run the tuning trials and write OUT/tuning.json: per method its trials and the chosen rate.
    Methods tuned before under the same budget and left out of this run keep their entry; a trial
    that diverged in its first epoch is recorded as such and cannot be chosen."""
    from collections import defaultdict

    from benchmarks.study.runner import run_study
    from taaf.data.cache import atomic_write_bytes

    jobs = cfg.tuning_jobs()
    if not jobs:
        raise TaafError("--tune: none of the chosen variants is a method (ablations reuse their method's rate)")
    results, ran = run_study(cfg, out, device=device, workers=workers, jobs=jobs, diverged_ok=True)
    trials: dict[str, list[dict]] = defaultdict(list)
    for job, r in zip(jobs, results):
        trials[job.variant].append({"lr": job.lr, "val_fused": None, "diverged": True} if r is None else
                                   {"lr": r.lr, "val_fused": r.val["fused"], "selected_epoch": r.selected_epoch,
                                    "stopped_epoch": r.stopped_epoch})
    methods = {**_previous_methods(out, cfg), **{v: _choose(v, t) for v, t in trials.items()}}
    edge = {v: m["chosen_lr"] for v, m in methods.items() if m.get("at_grid_edge")}
    document = {
        "schema": "taaf-study-tuning/1", "dataset": cfg.dataset, "setting": cfg.settings[0], "seed": cfg.seeds[0],
        "steps": cfg.steps, "budget": cfg.budget(), "trials_per_method": len(jobs) // len(trials),
        "selection": "the learning rate with the best validation fused accuracy (first on ties; a diverged "
                     "trial is never chosen); at_grid_edge: the top rate, or the bottom one strictly better "
                     "than the next (the best rate may lie beyond the grid)",
        "wall_seconds": ran.wall_seconds,
        "methods": methods,
        "chosen_at_grid_edge": sorted(edge),
    }
    atomic_write_bytes(out / TUNING_FILE, json.dumps(document, indent=2).encode())
    for v, m in trials.items():
        print(f"{v}: " + ", ".join(f"lr {t['lr']:g} " + ("diverged" if t["val_fused"] is None else
                                                       f"val {t['val_fused']:.3f}") for t in m)
              + f" -> {methods[v]['chosen_lr']:g}")
    if edge:
        print("note: chosen at the edge of the grid (the best rate may lie beyond it): "
              + ", ".join(f"{v} {lr:g}" for v, lr in sorted(edge.items())))
    print(f"wrote {out}/{TUNING_FILE} ({len(jobs)} trials in {ran.wall_seconds / 60:.1f} min)")
    return 0


def _choose(name: str, trials: list[dict]) -> dict:
    """One method's tuning record: its trials, the chosen rate, and whether it sits at the grid's edge."""
    ok = sorted((t for t in trials if t["val_fused"] is not None), key=lambda t: t["lr"])
    if not ok:
        rates = ", ".join(f"{t['lr']:g}" for t in trials)
        raise TaafError(f"--tune: every trial of {name} diverged ({rates}): its grid is too high for this model")
    best = max(ok, key=lambda t: t["val_fused"])  # max keeps the first (lowest rate) on ties
    top = best is ok[-1] and len(ok) > 1
    bottom = best is ok[0] and len(ok) > 1 and best["val_fused"] > ok[1]["val_fused"]
    return {"trials": trials, "chosen_lr": best["lr"], "at_grid_edge": top or bottom}


def _previous_methods(out, cfg) -> dict:
    """The methods of an existing OUT/tuning.json tuned under this budget (kept when a --tune run
    covers fewer methods); nothing when there is none or it was tuned otherwise."""
    try:
        doc = json.loads((out / TUNING_FILE).read_text())
        same = (doc["dataset"] == cfg.dataset and doc.get("setting") == cfg.settings[0]
                and _tuning_budget(doc["budget"], doc["steps"]) == _tuning_budget(cfg.budget(), cfg.steps))
        return {v: m for v, m in doc["methods"].items() if isinstance(m, dict)} if same else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def with_tuned_lrs(cfg, out):
    """``cfg`` with the learning rates OUT/tuning.json chose (unchanged when there is none, or it
    was tuned for another data set; a corrupt file is refused). Trials tuned under another budget
    (epoch cap, patience, batch, T) are refused: their rates were chosen for other runs, and the
    seed-0 trial would be reused as a study run trained differently from the rest."""
    from dataclasses import replace

    from benchmarks.study.protocol import METHOD_VARIANTS, tuning_grid

    path = out / TUNING_FILE
    if not path.exists():
        return cfg
    try:
        doc = json.loads(path.read_text())
        chosen = {v: float(m["chosen_lr"]) for v, m in doc["methods"].items()}
        stale = sorted(v for v, m in doc["methods"].items() if v in METHOD_VARIANTS
                       and sorted(float(t["lr"]) for t in m.get("trials", [])) != sorted(tuning_grid(v)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TaafError(f"{path}: not a tuning file written by taaf study --tune ({exc})") from None
    if doc.get("dataset") != cfg.dataset:
        return cfg
    tuned, ours = _tuning_budget(doc.get("budget", {}), doc.get("steps")), _tuning_budget(cfg.budget(), cfg.steps)
    if tuned != ours:
        raise TaafError(f"{path} was tuned with {tuned}, this study uses {ours}: pass the same --epochs "
                        f"(and T), rerun --tune, or use another --out")
    if stale:
        print(f"note: {path} tried other rates than today's grid for {', '.join(stale)}: taaf study --tune "
              f"adds the missing trials (finished ones are reused); a method whose chosen rate then changes "
              f"retrains its runs (and its ablations') at the new rate")
    return replace(cfg, lrs=tuple(sorted(chosen.items())))


def _tuning_budget(budget: dict, steps) -> dict:
    """What must match between the tuning trials and the study that uses their rates."""
    return {"epochs_cap": budget.get("epochs_cap"), "patience": budget.get("patience"),
            "batch_size": budget.get("batch_size"), "steps": steps}


def _check_same_dataset(out, dataset: str) -> None:
    """Refuse a folder holding another data set's study: run records are keyed by variant,
    setting, seed and T, and presets share names across data sets, so they would be reused."""
    for name, key in (("study.json", ("protocol", "dataset")), (TUNING_FILE, ("dataset",))):
        try:
            doc = json.loads((out / name).read_text())
            for k in key:
                doc = doc[k]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if doc != dataset:
            raise TaafError(f"{out} holds a study of {doc}, not {dataset}: use another --out")


def _check_not_narrowing(out, cfg) -> None:
    """Refuse to replace OUT/study.json by a study of fewer variants, settings or seeds: the
    subset's summary would overwrite the record (its runs stay, but the tables and plots go).
    A record of an older schema is superseded, not narrowed: its runs cannot be reused anyway."""
    from benchmarks.study.summary import SCHEMA

    try:
        doc = json.loads((out / "study.json").read_text())
        if doc.get("schema") != SCHEMA:
            return
        protocol = doc["protocol"]
        before = {"variants": set(protocol["variants"]), "settings": set(protocol["settings"]),
                  "seeds": set(protocol["seeds"])}
    except (OSError, ValueError, KeyError, TypeError):
        return
    now = {"variants": set(cfg.variants), "settings": set(cfg.settings), "seeds": set(cfg.seeds)}
    dropped = {k: sorted(before[k] - now[k], key=str) for k in before if before[k] - now[k]}
    if dropped:
        what = "; ".join(f"{k} {' '.join(map(str, v))}" for k, v in dropped.items())
        raise TaafError(f"{out}/study.json also covers {what}, which this run leaves out: pass them too, "
                        f"use another --out, or --replace to overwrite it")


def _previous_execution(path) -> dict | None:
    try:
        return json.loads(path.read_text()).get("execution")
    except (OSError, ValueError, AttributeError):
        return None
