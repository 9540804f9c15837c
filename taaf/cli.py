"""The ``taaf`` command: build data, train, evaluate, and run the end-to-end demo.

Every subcommand runs inside one error boundary (:mod:`taaf.boundary`): bad files, flags,
numbers, data roots, unwritable outputs, memory refusals (:mod:`taaf.budget`) and even bugs are
one line on stderr and exit code 2 (exit code 1 is never used; ``--debug`` shows the traceback),
Ctrl-C is exit code 130. Numeric flags are checked by the parser (:mod:`taaf.argtypes`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

from taaf import argtypes as num
from taaf.boundary import EXIT_USAGE, OneLineParser, add_global_options, parse_or_exit_code, run_guarded
from taaf.errors import TaafError
from taaf.paths import check_output_dir


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``taaf`` console script; returns the exit code: 0, 2 on any failure
    (one line on stderr, see :mod:`taaf.boundary`; exit code 1 is never used), 130 on Ctrl-C."""
    parser = build_parser()
    args = parse_or_exit_code(parser, argv)
    if isinstance(args, int):
        return args
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    _quiet_library_warnings()
    return run_guarded(f"taaf {args.command}", lambda: args.handler(args), args)


def build_parser() -> argparse.ArgumentParser:
    """The ``taaf`` argument parser, including the subcommands that later stages register via entry points."""
    from taaf.config import METHOD_HELP, METHODS, MODELS, TrainConfig
    from taaf.data import ALL_PRESETS, DATASETS

    parser = OneLineParser(
        prog="taaf",
        description="Multimodal spiking networks with Temporal Attention-guided Adaptive Fusion (TAAF).",
        epilog="Start with 'taaf demo', or: taaf data -> taaf train -> taaf eval. "
               "Each subcommand has --help. Any failure is one line on stderr and exit code 2 "
               "(--debug: the traceback instead); Ctrl-C exits with 130.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def data_options(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("data")
        g.add_argument("--dataset", choices=DATASETS, default="av-digits",
                       help="av-digits / av-mnist-temporal are built offline from real data; crema-d/ave "
                            "need --root")
        g.add_argument("--preset", choices=ALL_PRESETS, default="audio-dominant",
                       help="imbalance setting (which modality is degraded); av-mnist-temporal also has "
                            "misaligned and misaligned-strong (visual lags the audio)")
        g.add_argument("--steps", type=num.steps, default=None, metavar="T",
                       help="SNN time steps per sample (1..10000; default 16, av-mnist-temporal 32)")
        g.add_argument("--data-seed", type=num.seed, default=0,
                       help="seed of the data splits and degradation (0..2**32-1)")
        g.add_argument("--root", default="", help="CREMA-D / AVE data root (standard OGM-GE layout)")
        g.add_argument("--image-size", type=num.image_size, default=32, help="CREMA-D / AVE frame size (1..4096)")

    p = sub.add_parser("data", help="build (or check) a data set and print its summary",
                       description="Build AV-Digits (cached under the user cache dir) or check a "
                                   "CREMA-D / AVE root, and print split sizes and unimodal settings.")
    data_options(p)
    p.add_argument("--json", action="store_true",
                   help="print the manifest as JSON (av-mnist-temporal: with its difficulty floors)")
    p.add_argument("--export", metavar="FILE.npz", default="",
                   help="write {split}_audio, {split}_visual [N, T, C, H, W], {split}_labels to FILE.npz")
    p.add_argument("--plot", metavar="FILE.png", default="", help="plot a few test samples over time")
    p.set_defaults(handler=cmd_data)

    p = sub.add_parser("train", help="train a model and write checkpoint, metrics and plots",
                       description="Train TAAF or a baseline. Writes OUT/model.pt, OUT/metrics.json, "
                                   "OUT/training_curves.png (and OUT/attention.png for TAAF), all "
                                   "together: OUT is replaced as a whole once every file is written.")
    data_options(p)
    p.add_argument("--fusion", choices=METHODS, default="taaf",
                   help="; ".join(f"{m}: {h}" for m, h in METHOD_HELP.items()))
    p.add_argument("--model", choices=MODELS, default="snn",
                   help="snn (the deployable spiking network) or ann (same layers, ReLU, no time "
                        "dimension: the benchmarking baseline)")
    p.add_argument("--seed", type=num.seed, default=0,
                   help="training seed, 0..2**32-1 (same seed, same machine -> same metrics)")
    defaults = TrainConfig()  # one source of truth for every training default
    p.add_argument("--epochs", type=num.epochs, default=defaults.epochs)
    p.add_argument("--out", required=True, help="output folder (new, empty, or one taaf wrote: replaced whole)")
    t = p.add_argument_group("training")
    t.add_argument("--batch-size", type=num.batch_size, default=defaults.batch_size)
    t.add_argument("--lr", type=num.positive_finite_float, default=defaults.lr)
    t.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                   help=f"default: {defaults.optimizer}, sgd for ogm-ge-published (as published)")
    t.add_argument("--gamma", type=num.non_negative_finite_float, default=defaults.gamma,
                   help="TAAF learning-rate modulation strength")
    t.add_argument("--min-coefficient", type=num.unit_float, default=defaults.min_coefficient,
                   help="TAAF: the dominant modality's learning rate is never scaled below this")
    t.add_argument("--modulation-warmup", type=num.non_negative_int, default=defaults.modulation_warmup,
                   help="epochs before TAAF / OGM-GE balancing starts")
    t.add_argument("--step-loss-weight", type=num.non_negative_finite_float, default=defaults.step_loss_weight,
                   help="TAAF per-step loss lambda (0 = off)")
    t.add_argument("--attention-entropy-weight", type=num.non_negative_finite_float,
                   default=defaults.attention_entropy_weight,
                   help="TAAF: reward spread modality attention (against its collapse; 0 = off)")
    t.add_argument("--patience", type=num.non_negative_int, default=defaults.patience,
                   help="stop once validation fused accuracy has not improved for this many epochs "
                        "(--epochs is then the cap; 0 = train every epoch)")
    t.add_argument("--spike-rate-weight", type=num.non_negative_finite_float, default=defaults.spike_rate_weight,
                   help="SNN: add this multiple of the chip's mean firing rate to the loss (fewer spikes, "
                        "less energy; 0 = off)")
    head = t.add_mutually_exclusive_group()
    head.add_argument("--gate-only", action="store_true",
                      help="TAAF: the gate-only design (the default until 2026-12-06): the fused spiking layer only "
                           "weights the unimodal evidence, its own class evidence is not read out (fusion taaf)")
    head.add_argument("--fused-evidence", action="store_true",
                      help="TAAF: the fused spiking layer's class evidence joins the prediction (fusion taaf-fused); "
                           "the default, accepted so earlier commands still run")
    t.add_argument("--no-lr-modulation", action="store_true", help="TAAF ablation: no balanced learning rates")
    t.add_argument("--no-time-warp", action="store_true", help="ablation: no learnable time-warping")
    t.add_argument("--ogm-alpha", type=num.non_negative_finite_float, default=defaults.ogm_alpha,
                   help="OGM-GE modulation strength")
    t.add_argument("--no-ge-noise", action="store_true", help="OGM without the GE noise term")
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("eval", help="fused, audio-only and visual-only accuracy of a checkpoint",
                       description="Rebuild the checkpoint's data set and print accuracy on a split.")
    p.add_argument("checkpoint", help="a model.pt written by 'taaf train'")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=cmd_eval)

    _register_stage_commands(sub)

    p = sub.add_parser("demo", help="the end-to-end demo on AV-Digits (what 'make demo' runs)",
                       description="Build AV-Digits, train TAAF, evaluate, save checkpoint and plots under OUT.")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=num.epochs, default=12)
    p.add_argument("--seed", type=num.seed, default=0)
    p.set_defaults(handler=cmd_demo)
    add_global_options(parser)
    for subparser in sub.choices.values():
        add_global_options(subparser)
    return parser


def _register_stage_commands(sub) -> None:
    """Subcommands of later pipeline stages (e.g. ``simulate`` from hardware/), found through the
    ``taaf.commands`` entry point group so that this package does not depend on them."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="taaf.commands"), key=lambda e: e.name):
        ep.load()(sub)


def _quiet_library_warnings() -> None:
    """Third-party deprecation chatter is not the user's business on a normal run."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*requires_grad=True to a scalar.*")


def _data_spec(args):
    from taaf.data import PRESETS, TEMPORAL_STEPS, DataSpec
    from taaf.errors import ConfigError

    temporal = args.dataset == "av-mnist-temporal"
    if args.dataset == "av-digits" and args.preset not in PRESETS:
        raise ConfigError(f"preset {args.preset!r} is for av-mnist-temporal; av-digits has {', '.join(PRESETS)}")
    steps = args.steps or (TEMPORAL_STEPS if temporal else 16)
    degradation = PRESETS.get(args.preset, PRESETS["audio-dominant"])
    return DataSpec(dataset=args.dataset, n_steps=steps, seed=args.data_seed, preset=args.preset,
                    degradation=degradation, root=args.root, image_size=args.image_size)


def resolve_device(name: str) -> str:
    """auto -> cuda when present, else cpu; a CUDA request without CUDA is a user error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TaafError("--device cuda requested but no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise TaafError(f"unknown device {name!r} (auto, cpu or cuda)")
    return name


def cmd_data(args) -> int:
    """``taaf data``: build or check the data set and print its split sizes (or its manifest with --json)."""
    from taaf.data import load_dataset
    from taaf.data.avdigits import AVDigitsConfig, build_av_digits

    spec = _data_spec(args)
    if args.export or args.plot:
        from taaf.data.export import check_targets

        check_targets(args.export, args.plot)  # before the build: a bad name costs nothing
    manifest = None
    if spec.dataset == "av-digits":
        dataset, manifest = build_av_digits(AVDigitsConfig(spec.seed, spec.n_steps, spec.degradation))
    elif spec.dataset == "av-mnist-temporal":
        from taaf.data.temporal import TemporalConfig, build_av_mnist_temporal, cached_floors

        config = TemporalConfig.from_preset(spec.preset, spec.seed, spec.n_steps)
        dataset, manifest = build_av_mnist_temporal(config)
        if args.json:
            manifest = {**manifest, "floors": cached_floors(config, dataset)}
    else:
        dataset = load_dataset(spec)
    if args.export or args.plot:
        _export_and_plot(args, dataset, spec)
    if args.json:
        print(json.dumps(manifest or {"dataset": spec.dataset, "root": spec.root}, indent=2))
        return 0
    print(f"{dataset.name}: {len(dataset.train.class_names)} classes, T = {dataset.train.n_steps} steps")
    print(f"  audio  [T, F] = {list(dataset.train.audio.shape[1:])}   image [C, H, W] = {list(dataset.train.image_shape)}")
    for name in ("train", "val", "test"):
        print(f"  {name:5s} {len(dataset.split(name)):6d} samples")
    if spec.dataset in ("av-digits", "av-mnist-temporal"):
        knobs = asdict(spec.degradation) if spec.dataset == "av-digits" else manifest["config"]["params"]
        print(f"  preset {spec.preset}: {knobs}")
        from taaf.data.cache import cache_dir

        print(f"  cached in {cache_dir(spec.dataset)} (key {manifest['key']})")
    for what, path in (("export", args.export), ("plot", args.plot)):
        if path:
            print(f"  {what}: {path}")
    return 0


def _export_and_plot(args, dataset, spec) -> None:
    """``taaf data --export / --plot``: write the splits to an .npz and / or a PNG of a few samples."""
    from taaf.data.export import export_npz, plot_samples

    if args.export:
        export_npz(dataset, Path(args.export))
    if args.plot:
        plot_samples(dataset, Path(args.plot), f"{dataset.name}, preset {spec.preset}, T = {spec.n_steps}")


def cmd_train(args) -> int:
    """``taaf train``: train one model as the flags say and save checkpoint, metrics and plots under --out."""
    from taaf.config import DEFAULT_OPTIMIZER, TrainConfig
    from taaf.data import load_dataset
    from taaf.errors import ConfigError
    from taaf.training.trainer import model_config_for
    from taaf.workflow import train_and_save

    if (args.fused_evidence or args.gate_only) and args.fusion != "taaf":
        raise ConfigError(f"--{'gate-only' if args.gate_only else 'fused-evidence'} is an option of --fusion taaf")
    check_output_dir(args.out, inputs=[args.root or None])
    spec = _data_spec(args)
    device = resolve_device(args.device)
    optimizer = args.optimizer or DEFAULT_OPTIMIZER.get(args.fusion, TrainConfig().optimizer)
    cfg = TrainConfig(
        method=args.fusion, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=optimizer, seed=args.seed, gamma=args.gamma, min_coefficient=args.min_coefficient,
        modulation_warmup=args.modulation_warmup, modulate_lr=not args.no_lr_modulation,
        step_loss_weight=args.step_loss_weight, attention_entropy_weight=args.attention_entropy_weight,
        spike_rate_weight=args.spike_rate_weight, patience=args.patience, ogm_alpha=args.ogm_alpha, ge_noise=not args.no_ge_noise,
    )
    data = load_dataset(spec)
    model_cfg = model_config_for(data, cfg, model=args.model)
    if args.no_time_warp:
        model_cfg = replace(model_cfg, time_warp=False)
    if args.gate_only:
        model_cfg = replace(model_cfg, fusion="taaf")
    train_and_save(data, spec, cfg, model_cfg, Path(args.out), device=device, progress=not args.quiet)
    return 0


def cmd_eval(args) -> int:
    """``taaf eval``: report fused, audio-only and visual-only accuracy of a checkpoint on one split."""
    from taaf.workflow import evaluate_checkpoint

    report = evaluate_checkpoint(args.checkpoint, args.split, device=resolve_device(args.device))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['checkpoint']}: {report['method']} on {report['dataset']} ({report['preset']}), T = {report['steps']}")
    print(f"{report['split']} split, {report['samples']} samples")
    for key in ("fused", "audio", "visual"):
        print(f"  {key:7s} accuracy {report[key]:.4f}")
    return 0


def cmd_demo(args) -> int:
    """``taaf demo``: the timed end-to-end AV-Digits run behind ``make demo``."""
    from taaf.workflow import run_demo

    start = time.perf_counter()
    check_output_dir(args.out)
    run_demo(Path(args.out), epochs=args.epochs, seed=args.seed, device=resolve_device("auto"))
    print(f"demo finished in {time.perf_counter() - start:.0f} s; everything is in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
