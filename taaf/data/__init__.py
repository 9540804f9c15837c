"""Data sets, all returned as :class:`~taaf.data.base.MultimodalDataset`.

:class:`DataSpec` says which data a model was trained on; it is stored in every checkpoint so
``taaf eval`` can rebuild exactly the same splits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from taaf.config import MAX_IMAGE_SIZE, MAX_SEED, MAX_STEPS, check_count
from taaf.data.avdigits import DEFAULT_PRESET, PRESETS, AVDigitsConfig, Degradation, load_av_digits
from taaf.data.base import MultimodalDataset, MultimodalSplit
from taaf.errors import ConfigError

from taaf.data.temporal import DEFAULT_STEPS as TEMPORAL_STEPS
from taaf.data.temporal import TEMPORAL_PRESETS, TemporalConfig

DATASETS = ("av-digits", "av-mnist-temporal", "crema-d", "ave")
#: Every preset name of either AV-Digits family (the CLI's --preset choices).
ALL_PRESETS = tuple(sorted(set(PRESETS) | set(TEMPORAL_PRESETS)))


@dataclass(frozen=True)
class DataSpec:
    """Which data a model was trained on; stored in every checkpoint so evaluation can rebuild the same splits."""

    dataset: str = "av-digits"
    n_steps: int = 16
    seed: int = 0
    preset: str = DEFAULT_PRESET  # AV-Digits: which Degradation preset ("custom" if edited); AV-MNIST-Temporal:
    # which TEMPORAL_PRESETS entry
    degradation: Degradation = field(default_factory=lambda: PRESETS[DEFAULT_PRESET])
    root: str = ""  # CREMA-D / AVE: the data root in its standard layout
    image_size: int = 32  # CREMA-D / AVE: frames are resized to image_size x image_size

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r} (choose from {', '.join(DATASETS)})")
        if self.dataset == "av-mnist-temporal" and self.preset not in TEMPORAL_PRESETS:
            raise ConfigError(f"unknown av-mnist-temporal preset {self.preset!r} "
                              f"(choose from {', '.join(TEMPORAL_PRESETS)})")
        if self.dataset not in ("av-digits", "av-mnist-temporal") and not self.root:
            raise ConfigError(f"{self.dataset} needs --root, the folder holding its files")
        check_count("n_steps", self.n_steps, MAX_STEPS)
        check_count("seed", self.seed, MAX_SEED, low=0)
        check_count("image_size", self.image_size, MAX_IMAGE_SIZE)


def load_dataset(spec: DataSpec) -> MultimodalDataset:
    """Build or load the data set ``spec`` names (AV-Digits offline, CREMA-D / AVE from ``spec.root``)."""
    if spec.dataset == "av-digits":
        return load_av_digits(AVDigitsConfig(seed=spec.seed, n_steps=spec.n_steps, degradation=spec.degradation))
    if spec.dataset == "av-mnist-temporal":
        from taaf.data.temporal import load_av_mnist_temporal

        return load_av_mnist_temporal(TemporalConfig.from_preset(spec.preset, spec.seed, spec.n_steps))
    if spec.dataset == "crema-d":
        from taaf.data.crema_d import load_crema_d

        return load_crema_d(Path(spec.root), n_steps=spec.n_steps, image_size=spec.image_size, seed=spec.seed)
    from taaf.data.ave import load_ave

    return load_ave(Path(spec.root), n_steps=spec.n_steps, image_size=spec.image_size, seed=spec.seed)


__all__ = ["DataSpec", "DATASETS", "PRESETS", "ALL_PRESETS", "TEMPORAL_PRESETS", "TEMPORAL_STEPS", "Degradation", "MultimodalDataset", "MultimodalSplit", "load_dataset"]
