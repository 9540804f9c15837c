"""Typed configuration: what a model *is* and how it was trained.

A checkpoint stores these dataclasses as JSON next to the weights, so a model can be rebuilt
without the training script's arguments. ``from_dict`` is strict: an unknown or missing key is
a :class:`ConfigError`, which is how a foreign or hand-edited checkpoint is caught early.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from taaf.errors import ConfigError

FUSIONS = ("taaf", "taaf-fused", "concat")
#: The fusions with TAAF's attention head (fused spiking layer, modality and temporal scores).
#: ``taaf-fused`` (the default since 2026-12-06): the fused spiking layer also reads out class
#: evidence that reaches the prediction (the abstract's "importance scores to fused spiking
#: features"); study v2 found it ahead of ``taaf``, the gate-only design (the fused layer only
#: gates the unimodal evidence; ``taaf train --gate-only``), kept for comparison and old checkpoints.
ATTENTION_FUSIONS = ("taaf", "taaf-fused")
#: The architecture method ``taaf`` trains unless told otherwise (``--gate-only``).
DEFAULT_TAAF_FUSION = "taaf-fused"
MODELS = ("snn", "ann")  # spiking network (the deployable one) | its ReLU, timeless baseline
METHODS = ("taaf", "concat", "concat-aux", "ogm-ge", "ogm-ge-published")
#: One line per training method, for ``taaf train --help`` and the study tables.
METHOD_HELP = {
    "taaf": "attention fusion, attention-driven learning rates, attention-weighted per-step loss",
    "concat": "sum fusion, plain cross-entropy",
    "concat-aux": "sum fusion plus the per-modality per-step loss at uniform weights (no balancing)",
    "ogm-ge": "OGM-GE as we adapted it (Adam, dominant modality's encoder and readout)",
    "ogm-ge-published": "OGM-GE as the official code (SGD momentum 0.9, both encoders' kernels, noise after scaling)",
}
#: The optimizer each method trains with unless told otherwise.
DEFAULT_OPTIMIZER = {"ogm-ge-published": "sgd"}
MODALITIES = ("audio", "visual")

T = TypeVar("T")

# Documented upper bounds. A checkpoint, flag or data spec beyond them is refused (ConfigError)
# before anything is allocated; they are far above any network this toolkit deploys on a chip.
MAX_STEPS = 10_000  # time steps T (n_steps, data T, max_delay)
MAX_UNITS = 1_000_000  # neurons of one layer, features, channels, classes, image C/H/W
MAX_KERNEL = 1_024  # convolution kernel size and stride
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000
MAX_IMAGE_SIZE = 4_096  # CREMA-D / AVE frame size
MAX_SEED = 2 ** 32 - 1  # numpy's seed range
MAX_FACTOR = 1e6  # init_gain, lr, gamma, loss weights: finite and at most this


@dataclass(frozen=True)
class NeuronConfig:
    """One LIF population: a single decay and threshold per layer (a Lava LIF process shares
    du/dv/vth across its neurons), reset to zero in the same step (what NIR and Lava can express)."""

    beta: float = 0.9
    threshold: float = 1.0
    learn_beta: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"neuron beta must be in [0, 1], got {self.beta}")
        check_real("neuron threshold", self.threshold, 0.0, MAX_FACTOR, open_low=True)


@dataclass(frozen=True)
class AudioEncoderConfig:
    """Frame-wise fully connected spiking encoder: [F] -> hidden[0] -> ... -> hidden[-1] spikes."""

    in_features: int
    hidden: tuple[int, ...] = (128, 128)

    def __post_init__(self) -> None:
        check_count("audio.in_features", self.in_features)
        if not self.hidden:
            raise ConfigError("audio.hidden needs at least one layer")
        if len(self.hidden) > 64:
            raise ConfigError(f"audio.hidden has {len(self.hidden)} layers (at most 64)")
        for h in self.hidden:
            check_count("audio.hidden", h)


@dataclass(frozen=True)
class VisualEncoderConfig:
    """Convolutional spiking encoder on a static image presented at every step.

    Strided convolutions instead of pooling: every layer is a synapse group followed by LIF
    neurons, which is exactly what a Loihi core runs.
    """

    in_shape: tuple[int, int, int]
    channels: tuple[int, ...] = (8, 16)
    kernel_size: int = 3
    strides: tuple[int, ...] = (1, 2)
    hidden: int = 128

    def __post_init__(self) -> None:
        if len(self.in_shape) != 3:
            raise ConfigError(f"visual.in_shape must be (C, H, W), got {self.in_shape}")
        if len(self.channels) != len(self.strides):
            raise ConfigError("visual.channels and visual.strides must have the same length")
        if len(self.channels) > 64:
            raise ConfigError(f"visual.channels has {len(self.channels)} layers (at most 64)")
        for name, v in (("in_shape", self.in_shape), ("channels", self.channels), ("hidden", (self.hidden,))):
            for x in v:
                check_count(f"visual.{name}", x)
        for name, v in (("strides", self.strides), ("kernel_size", (self.kernel_size,))):
            for x in v:
                check_count(f"visual.{name}", x, MAX_KERNEL)
        if self.kernel_size % 2 != 1:
            raise ConfigError("visual.kernel_size must be odd ('same' padding)")

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """The [C, H, W] output of every strided 'same'-padded convolution, in order."""
        c, h, w = self.in_shape
        pad, shapes = self.kernel_size // 2, []
        for out_c, stride in zip(self.channels, self.strides):
            h = (h + 2 * pad - self.kernel_size) // stride + 1
            w = (w + 2 * pad - self.kernel_size) // stride + 1
            c = out_c
            shapes.append((c, h, w))
        return shapes


@dataclass(frozen=True)
class ModelConfig:
    """The architecture. ``fusion`` picks the head; the training method lives in TrainConfig.

    ``init_gain`` multiplies PyTorch's default initial weights of every synapse group that
    drives LIF neurons: with sparse spike inputs the default scale leaves deeper layers silent
    (no spikes, no surrogate gradient); 3x gives 15-25 % initial firing on AV-Digits.

    ``model`` = snn (:class:`~taaf.model.network.AVSpikingNet`) or ann
    (:class:`~taaf.model.ann.AVANNNet`, the same layers with ReLU and no time dimension, the
    benchmarking baseline; it ignores ``neuron``, ``time_warp``, ``max_delay`` and ``init_gain``).
    Defaults to snn so checkpoints written before the ANN existed still load.
    """

    n_classes: int
    n_steps: int
    audio: AudioEncoderConfig
    visual: VisualEncoderConfig
    fusion: str = DEFAULT_TAAF_FUSION
    fused_hidden: int = 128
    time_warp: bool = True
    max_delay: int = 3
    init_gain: float = 3.0
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    model: str = "snn"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r} (choose from {', '.join(MODELS)})")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {self.fusion!r} (choose from {', '.join(FUSIONS)})")
        check_count("n_classes", self.n_classes)
        check_count("n_steps", self.n_steps, MAX_STEPS)
        check_count("fused_hidden", self.fused_hidden)
        if self.n_classes < 2:
            raise ConfigError("n_classes must be at least 2")
        check_count("max_delay", self.max_delay, MAX_STEPS, low=0)
        check_real("init_gain", self.init_gain, 0.0, MAX_FACTOR, open_low=True)

    def parameter_count(self) -> int:
        """An upper bound (within a few percent) of the parameters of the network this config
        describes, computed from the shapes without allocating anything, so a checkpoint's config
        is sized against the memory budget before the network is built."""
        sizes = (self.audio.in_features, *self.audio.hidden)
        n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        c, k = self.visual.in_shape[0], self.visual.kernel_size
        for out_c, _ in zip(self.visual.channels, self.visual.strides):
            n += c * out_c * k * k + out_c
            c = out_c
        last = self.visual.conv_shapes()[-1] if self.visual.channels else self.visual.in_shape
        n += last[0] * last[1] * last[2] * self.visual.hidden + self.visual.hidden
        fa, fv, fh = self.audio.hidden[-1], self.visual.hidden, self.fused_hidden
        n += (fa + fv + 2) * self.n_classes + 2 * (fa + fv)  # evidence readouts, time-warp delays
        if self.fusion in ATTENTION_FUSIONS:
            n += fa * fh + fh + fv * fh + 3 * fh + 3
        if self.fusion == "taaf-fused":  # the fused evidence readout
            n += (fh + 1) * self.n_classes
        return n + 8 * (len(self.audio.hidden) + len(self.visual.channels) + 2)  # neuron parameters

    def neuron_count(self) -> int:
        """Neurons (state per sample and step) of the whole network: every LIF layer."""
        conv = sum(c * h * w for c, h, w in self.visual.conv_shapes())
        return sum(self.audio.hidden) + conv + self.visual.hidden + self.fused_hidden + 2 * self.n_classes


@dataclass(frozen=True)
class TrainConfig:
    """How a model was trained. ``method``: one of :data:`METHODS` (:data:`METHOD_HELP`).

    TAAF: gamma scales the attention-driven learning-rate modulation, never below
    min_coefficient; step_loss_weight is the lambda of the attention-weighted per-step loss.
    ``modulation_warmup`` epochs train with k = 1 (both methods; OGM-GE's code has the same
    "modulation starts" knob). OGM-GE: ogm_alpha and ge_noise follow Peng et al. (CVPR 2022).
    ``modulate_lr`` / ``step_loss_weight = 0`` / ``ModelConfig.time_warp`` are the ablation switches.
    ``attention_entropy_weight`` (TAAF) subtracts that multiple of the normalised modality-attention
    entropy from the loss, against the collapse of beta onto one modality (0: off).
    ``spike_rate_weight`` (any SNN method) adds that multiple of the mean firing rate of the
    chip's spiking layers to the loss: fewer spikes, fewer synaptic events, less energy
    (``taaf frontier --spike-rate-weight`` puts the trade-off on the accuracy-energy plot; 0: off).
    ``patience`` > 0 stops training once validation fused accuracy has not improved for that
    many epochs (early stopping; ``epochs`` is then the cap), so that no method's kept epoch is
    its last for want of budget (0: train every epoch).

    The balancing defaults were chosen on the AV-Digits *validation* split (imbalance study,
    README), the same number of trials per balancing method: the modality attention saturates
    early (beta -> 0.95, attention ratio > 20 in epochs 2-3), so the first reading
    (gamma 0.5, floor 0.1, no warm-up) held the dominant modality at 10 % of the learning rate
    exactly while it was learning fastest, and lost 2-5 points of fused accuracy in a 12-epoch
    budget. gamma 0.1 with a floor of 0.5 after one warm-up epoch keeps the slowdown at most 2x.
    A floor of 0 freezes the modality's evidence, and the attention ratio then cannot recover.
    """

    method: str = "taaf"
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adam"
    seed: int = 0
    gamma: float = 0.1
    min_coefficient: float = 0.5
    modulate_lr: bool = True
    modulation_warmup: int = 1
    step_loss_weight: float = 0.5
    attention_entropy_weight: float = 0.0
    spike_rate_weight: float = 0.0
    patience: int = 0
    ogm_alpha: float = 0.1
    ge_noise: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r} (adam or sgd)")
        if self.method == "ogm-ge-published" and self.optimizer != "sgd":
            raise ConfigError("ogm-ge-published trains with SGD (momentum 0.9) as published; use optimizer sgd, "
                              "or method ogm-ge for the Adam form")
        check_count("epochs", self.epochs, MAX_EPOCHS)
        check_count("batch_size", self.batch_size, MAX_BATCH)
        check_count("seed", self.seed, MAX_SEED, low=0)
        check_count("modulation_warmup", self.modulation_warmup, MAX_EPOCHS, low=0)
        check_count("patience", self.patience, MAX_EPOCHS, low=0)
        check_real("lr", self.lr, 0.0, MAX_FACTOR, open_low=True)
        for name in ("weight_decay", "gamma", "step_loss_weight", "ogm_alpha", "attention_entropy_weight",
                     "spike_rate_weight"):
            check_real(name, getattr(self, name), 0.0, MAX_FACTOR)
        check_real("min_coefficient", self.min_coefficient, 0.0, 1.0)

    @property
    def fusion(self) -> str:
        """The architecture a method trains: TAAF with fused evidence (``--gate-only`` overrides it
        in the model config); every baseline (OGM-GE included) is a concat-fusion network."""
        return DEFAULT_TAAF_FUSION if self.method == "taaf" else "concat"


def check_count(name: str, value: int, high: int = MAX_UNITS, low: int = 1) -> None:
    """An integer in [low, high] (bools and non-integers refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be {'positive' if low == 1 else f'>= {low}'}, got {value}")
    if value > high:
        raise ConfigError(f"{name} = {value} is beyond the supported maximum {high}")


def check_real(name: str, value: float, low: float, high: float, open_low: bool = False) -> None:
    """A finite number in [low, high] (``(low, high]`` with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < low or (open_low and value == low):
        raise ConfigError(f"{name} must be {'>' if open_low else '>='} {low:g}, got {value}")
    if value > high:
        raise ConfigError(f"{name} = {value} is beyond the supported maximum {high:g}")


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass -> plain JSON-able dict (tuples become lists)."""
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: Any, where: str | None = None) -> T:
    """Rebuild a (nested) config dataclass from ``to_dict`` output, strictly."""
    where = where or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing key {f.name!r}")
            continue
        kwargs[f.name] = _coerce(hints[f.name], data[f.name], f"{where}.{f.name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        return tuple(_coerce(item, v, where) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value) or abs(value) > 1e300:
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        if tp is int and isinstance(value, float) and value != int(value):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value
