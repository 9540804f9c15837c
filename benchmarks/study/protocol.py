"""What the imbalance study trains: variants, data settings, seeds, time steps, budget.

A :class:`Variant` is one method (or ablation) as a set of overrides on the default
:class:`~taaf.config.TrainConfig` / :class:`~taaf.config.ModelConfig`; a :class:`Job` is one
training run (variant x setting x seed x T). Every job gets the same budget: the epoch cap,
early-stopping patience and batch size come from :class:`StudyConfig`, never from the variant;
the learning rate is the study's unless ``taaf study --tune`` chose one per method with the
same number of validation trials for every method (``tuning.json``); the kept model is the
epoch with the best *validation* fused accuracy (the trainer's rule).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from taaf.config import ModelConfig, TrainConfig
from taaf.data import DATASETS, PRESETS, TEMPORAL_PRESETS, DataSpec
from taaf.errors import ConfigError

#: The data setting of CREMA-D / AVE: the imbalance the data set has by itself.
NATURAL = "natural"


#: The comparison every method is paired against: TAAF as the study chose it (fused evidence,
#: ``taaf train``'s default since 2026-12-06).
REFERENCE = "taaf-fused"


@dataclass(frozen=True)
class Variant:
    """One method or ablation. ``train`` / ``model`` are field overrides of the defaults;
    ``baseline`` is the variant its paired differences are taken against (an ablation against
    the design it removes a part from, a method against :data:`REFERENCE`)."""

    name: str
    method: str
    description: str
    train: tuple[tuple[str, Any], ...] = ()
    model: tuple[tuple[str, Any], ...] = ()
    baseline: str = REFERENCE

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """``base`` with this variant's method and training overrides applied."""
        return replace(base, method=self.method, **dict(self.train))

    def model_overrides(self) -> dict[str, Any]:
        """This variant's ModelConfig field overrides as a dict."""
        return dict(self.model)


#: The entropy rewards of the ``taaf-fused-entropy-W`` variants, not tuned. 0.5 came from a
#: one-seed, four-epoch probe of the gate-only design on AV-Digits ``visual-dominant`` (README,
#: "Attention collapse": H_m 0.85-0.89 there); on the fused design it made the attention uniform
#: (H_m 1.00 in every AV-Digits preset), so 0.05 is the weaker reward tried next.
ENTROPY_WEIGHTS = (0.5, 0.05)

# Variant names are the keys of the stored runs: a name keeps its meaning for good ("taaf" was
# and stays the gate-only design, so its fusion is spelled out rather than left to the default).
_GATE_ONLY = (("fusion", "taaf"),)
_FUSED = (("fusion", "taaf-fused"),)
VARIANTS: tuple[Variant, ...] = (
    Variant("taaf", "taaf", "TAAF gate-only (taaf train --gate-only; the default until 2026-12-06): attention "
            "gates the unimodal evidence; time-warp, balanced learning rates, per-step loss", model=_GATE_ONLY),
    Variant("taaf-fused", "taaf", "TAAF with fused evidence (taaf train's default): the fused spiking layer's class "
            "evidence joins the prediction", model=_FUSED),
    Variant("concat", "concat", "concat (sum) fusion, plain cross-entropy"),
    Variant("concat-aux", "concat-aux", "concat fusion plus the per-modality per-step loss (uniform weights)"),
    Variant("ogm-ge", "ogm-ge", "OGM-GE (Peng et al. 2022) on the concat network, our Adam form"),
    Variant("ogm-ge-published", "ogm-ge-published", "OGM-GE as the official code: SGD momentum 0.9, "
            "both encoders' kernels, noise after scaling", train=(("optimizer", "sgd"),)),
    Variant("ogm", "ogm-ge", "OGM without the GE noise term", train=(("ge_noise", False),), baseline="ogm-ge"),
    Variant("taaf-no-warp", "taaf", "gate-only TAAF ablation: no learnable time-warping",
            model=(*_GATE_ONLY, ("time_warp", False)), baseline="taaf"),
    Variant("taaf-no-lr-mod", "taaf", "gate-only TAAF ablation: no balanced learning-rate modulation",
            train=(("modulate_lr", False),), model=_GATE_ONLY, baseline="taaf"),
    Variant("taaf-no-step-loss", "taaf", "gate-only TAAF ablation: no attention-weighted per-step loss",
            train=(("step_loss_weight", 0.0),), model=_GATE_ONLY, baseline="taaf"),
    Variant("taaf-fused-no-warp", "taaf", "TAAF (fused evidence) ablation: no learnable time-warping",
            model=(*_FUSED, ("time_warp", False))),
    Variant("taaf-fused-no-lr-mod", "taaf", "TAAF (fused evidence) ablation: no balanced learning-rate modulation",
            train=(("modulate_lr", False),), model=_FUSED),
    Variant("taaf-fused-no-step-loss", "taaf", "TAAF (fused evidence) ablation: no attention-weighted per-step loss",
            train=(("step_loss_weight", 0.0),), model=_FUSED),
    *(Variant(f"taaf-fused-entropy-{w:g}", "taaf", "TAAF (fused evidence) plus the modality-attention entropy "
              f"reward (--attention-entropy-weight {w:g}): does it keep the attention from collapsing",
              train=(("attention_entropy_weight", w),), model=_FUSED) for w in ENTROPY_WEIGHTS),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)
#: The methods (not ablations): what ``taaf study --tune`` gives the same number of trials.
METHOD_VARIANTS = ("taaf", "taaf-fused", "concat", "concat-aux", "ogm-ge", "ogm-ge-published")
#: Learning rates each method's tuning tries, by optimizer: four trials for every method. The
#: fourth (8e-3, 0.3) was added when every method chose the top of the first three-rate grid.
TUNING_LRS = {"adam": (1e-3, 2e-3, 4e-3, 8e-3), "sgd": (1e-2, 3e-2, 1e-1, 3e-1)}
#: AV-MNIST-Temporal's presets in study order: the first is where the learning rates are tuned
#: and the ablations and T sweep run (the preset that needs every TAAF part).
TEMPORAL_STUDY_SETTINGS = ("misaligned", "audio-dominant", "visual-dominant", "clean", "misaligned-strong")
#: The variants of the time-step sweep.
T_SWEEP_VARIANTS = ("taaf", "taaf-fused", "concat")


def tuning_grid(name: str) -> tuple[float, ...]:
    """The learning rates ``taaf study --tune`` tries for method ``name`` (by its optimizer)."""
    return TUNING_LRS[variant(name).train_config(TrainConfig()).optimizer]


def variant(name: str) -> Variant:
    """The variant called ``name``; an unknown name raises ConfigError."""
    for v in VARIANTS:
        if v.name == name:
            return v
    raise ConfigError(f"unknown variant {name!r} (choose from {', '.join(VARIANT_NAMES)})")


@dataclass(frozen=True)
class Job:
    """One training run of the study."""

    variant: str
    setting: str
    seed: int
    steps: int
    lr: float | None = None  # a tuning trial's learning rate (None: the study's for this variant)

    @property
    def key(self) -> str:
        """Unique, file-name-safe identifier of the run, used to name its result file."""
        trial = "" if self.lr is None else f"__lr{self.lr:g}"
        return f"{self.variant}__{self.setting}__T{self.steps}__s{self.seed}{trial}"


@dataclass(frozen=True)
class StudyConfig:
    """The whole protocol. ``steps`` is the main T; ``t_sweep`` runs :data:`T_SWEEP_VARIANTS`
    at every listed T in ``t_sweep_setting`` (T = ``steps`` is shared with the main grid)."""

    dataset: str = "av-digits"
    root: str = ""
    settings: tuple[str, ...] = ("clean", "audio-dominant", "visual-dominant")
    variants: tuple[str, ...] = VARIANT_NAMES
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    epochs: int = 30  # the cap; early stopping (patience) ends most runs before it
    patience: int = 4
    steps: int = 16
    convergence_target: float = 0.90  # "epochs to target": first epoch whose val fused accuracy reaches it
    lrs: tuple[tuple[str, float], ...] = ()  # per-variant learning rates chosen by --tune (else lr)
    t_sweep: tuple[int, ...] = (2, 4, 8, 16)
    t_sweep_setting: str = "audio-dominant"
    #: Where the ablations (variants that are not in METHOD_VARIANTS) run; empty: every setting.
    #: The methods always run in every setting.
    ablation_settings: tuple[str, ...] = ()
    batch_size: int = 64
    lr: float = 2e-3
    data_seed: int = 0
    synops_samples: int = 600  # test samples the SynOps count runs on (the whole AV-Digits test split)
    attention_samples: int = 4  # test samples whose attention is stored (TAAF variants, first seed)
    quick: bool = False

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r} (choose from {', '.join(DATASETS)})")
        if self.dataset not in ("av-digits", "av-mnist-temporal") and not self.root:
            raise ConfigError(f"{self.dataset} needs --root, the folder holding its files")
        allowed = {"av-digits": tuple(PRESETS), "av-mnist-temporal": tuple(TEMPORAL_PRESETS)}.get(
            self.dataset, (NATURAL,))
        for s in (*self.settings, *((self.t_sweep_setting,) if self.t_sweep else ()), *self.ablation_settings):
            if s not in allowed:
                raise ConfigError(f"unknown setting {s!r} for {self.dataset} (choose from {', '.join(allowed)})")
        for name in self.variants:
            variant(name)
        if self.dataset == "av-mnist-temporal":  # refuse a T a preset cannot hold now, not mid-study
            from taaf.data.temporal import TemporalConfig

            for job in self.jobs():
                TemporalConfig.from_preset(job.setting, self.data_seed, job.steps)
        if not self.seeds or not self.settings or not self.variants:
            raise ConfigError("a study needs at least one seed, setting and variant")
        if not 0.0 < self.convergence_target <= 1.0:
            raise ConfigError(f"convergence_target must be in (0, 1], got {self.convergence_target}")
        for name, lr in self.lrs:
            variant(name)
            if not 0.0 < lr < 1.0:
                raise ConfigError(f"learning rate of {name} must be in (0, 1), got {lr}")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        for value, what in ((self.epochs, "epochs"), (self.steps, "steps"), (self.batch_size, "batch_size"),
                            (self.synops_samples, "synops_samples"), *((t, "t_sweep") for t in self.t_sweep)):
            if value < 1:
                raise ConfigError(f"{what} must be >= 1, got {value}")

    @classmethod
    def for_dataset(cls, dataset: str, root: str = "", quick: bool = False, **overrides) -> "StudyConfig":
        """The full protocol, or the ``--quick`` smoke version (1 seed, 2 epochs, T sweep {2, 4},
        SynOps on 100 samples); CREMA-D / AVE have one setting, their own imbalance.
        AV-MNIST-Temporal: its five presets, T = 16 (half its data default, for CPU cost), a cap
        of 12 epochs with patience 3, a convergence target of 95 % (just under its linear-fusion
        floor, 96 % on ``misaligned``: a lower target is reached by every method in 1-2 epochs)
        and the ablations on ``misaligned`` only, the preset that needs every TAAF part."""
        base: dict[str, Any] = {"dataset": dataset, "root": root, "quick": quick}
        if dataset == "av-mnist-temporal":
            first = TEMPORAL_STUDY_SETTINGS[0]
            base.update(settings=TEMPORAL_STUDY_SETTINGS, t_sweep=(12, 16), t_sweep_setting=first, epochs=12,
                        patience=3, convergence_target=0.95, ablation_settings=(first,))
        elif dataset != "av-digits":
            base.update(settings=(NATURAL,), t_sweep_setting=NATURAL)
        if quick:
            base.update(seeds=(0,), epochs=2, patience=0, t_sweep=(2, 4), synops_samples=100)
            if dataset == "av-mnist-temporal":  # one preset, the T sweep at a T that preset holds
                base.update(settings=TEMPORAL_STUDY_SETTINGS[:1], t_sweep=(12,))
        base.update(overrides)
        return cls(**base)

    def jobs(self) -> list[Job]:
        """Every run, main grid first (setting by setting, so a partial study holds whole settings),
        T sweep after; duplicates (T = steps) appear once."""
        jobs = [Job(v, s, seed, self.steps) for s in self.settings for v in self.variants for seed in self.seeds
                if self.runs_in(v, s)]
        jobs += [Job(v, self.t_sweep_setting, seed, t) for t in self.t_sweep
                 for v in T_SWEEP_VARIANTS if v in self.variants for seed in self.seeds]
        return list(dict.fromkeys(jobs))  # Job is hashable; keeps the first of each

    def runs_in(self, name: str, setting: str) -> bool:
        """Whether variant ``name`` trains in ``setting`` (ablations only in ``ablation_settings``)."""
        return name in METHOD_VARIANTS or not self.ablation_settings or setting in self.ablation_settings

    def data_spec(self, setting: str, steps: int) -> DataSpec:
        """The data spec of one setting at ``steps`` time steps (a preset for AV-Digits, the root otherwise)."""
        if self.dataset == "av-digits":
            return DataSpec(dataset="av-digits", n_steps=steps, seed=self.data_seed, preset=setting,
                            degradation=PRESETS[setting])
        if self.dataset == "av-mnist-temporal":
            return DataSpec(dataset="av-mnist-temporal", n_steps=steps, seed=self.data_seed, preset=setting)
        return DataSpec(dataset=self.dataset, n_steps=steps, seed=self.data_seed, root=self.root)

    def train_config(self, job: Job) -> TrainConfig:
        """The job's training config: the study's shared budget plus the variant's overrides."""
        base = TrainConfig(epochs=self.epochs, patience=self.patience, batch_size=self.batch_size,
                           lr=self.lr_of(job.variant) if job.lr is None else job.lr, seed=job.seed)
        return variant(job.variant).train_config(base)

    def tuning_jobs(self) -> list[Job]:
        """The tuning trials: every method of the study (not the ablations) gets the same number of
        learning rates (:data:`TUNING_LRS`, by optimizer), seed 0, the first setting, the study's
        budget; validation accuracy decides."""
        return [Job(name, self.settings[0], self.seeds[0], self.steps, lr)
                for name in self.variants if name in METHOD_VARIANTS for lr in tuning_grid(name)]

    def lr_of(self, name: str) -> float:
        """The learning rate ``name`` trains with: its tuned one; an ablation (not tuned) its
        baseline's, so an ablation differs from the design it ablates in that one part and not
        in the rate too; else the study's."""
        lrs = dict(self.lrs)
        if name in lrs:
            return lrs[name]
        if name not in METHOD_VARIANTS:
            return lrs.get(variant(name).baseline, self.lr)
        return self.lr

    def budget(self) -> dict[str, Any]:
        """What every variant gets, for the results file."""
        return {"epochs_cap": self.epochs, "patience": self.patience, "batch_size": self.batch_size, "lr": self.lr,
                "tuned_lrs": dict(self.lrs), "optimizer": "adam (ogm-ge-published: sgd, momentum 0.9)",
                "selection": "epoch with the best validation fused accuracy (test never used for selection); "
                             "training stops after `patience` epochs without improvement"}


def model_config(base: ModelConfig, job: Job) -> ModelConfig:
    """The variant's architecture on top of the data set's default one."""
    return replace(base, **variant(job.variant).model_overrides())


__all__ = ["Job", "METHOD_VARIANTS", "NATURAL", "REFERENCE", "StudyConfig", "TEMPORAL_STUDY_SETTINGS", "TUNING_LRS",
           "T_SWEEP_VARIANTS", "VARIANTS", "tuning_grid",
           "VARIANT_NAMES", "Variant", "model_config", "variant"]
