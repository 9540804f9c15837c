"""The simple models every study table reports beside the methods: what must be beaten.

Per data setting, the test accuracy of unimodal logistic-regression probes, their linear late
fusion (product of experts) and, on AV-MNIST-Temporal, a non-spiking GRU of about the SNN's size
on the same frames (:func:`taaf.data.floors.compute_floors`, the numbers ``taaf data --json``
prints); on AV-Digits and CREMA-D / AVE the probes and their fusion
(:func:`benchmarks.linear_floor.fit_floor`). They are computed once per study folder and kept in
``floors.json`` (keyed by dataset, setting, T and data seed), so re-summarising trains nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.study.protocol import StudyConfig
from taaf.data.cache import atomic_write_bytes

FILE = "floors.json"


def _key(cfg: StudyConfig, setting: str) -> str:
    return f"{cfg.dataset}/{setting}/T{cfg.steps}/data{cfg.data_seed}"


def compute_setting_floors(cfg: StudyConfig, setting: str) -> dict[str, float]:
    """audio / visual probe, linear fusion (and GRU where defined) test accuracy for one setting."""
    from dataclasses import replace

    from taaf.config import TrainConfig
    from taaf.data import load_dataset
    from taaf.training.trainer import model_config_for

    data = load_dataset(cfg.data_spec(setting, cfg.steps))
    if cfg.dataset == "av-mnist-temporal":
        from taaf.data.floors import compute_floors

        f = compute_floors(data)
        return {"audio_probe": f.audio_probe, "visual_probe": f.visual_probe, "linear_fusion": f.poe_fusion,
                "gru": f.gru}
    from benchmarks.linear_floor import fit_floor

    f = fit_floor(data, replace(model_config_for(data, TrainConfig()), fusion="concat"))
    return {"audio_probe": f.audio, "visual_probe": f.visual, "linear_fusion": f.fused}


def study_floors(cfg: StudyConfig, out: Path, compute: bool = True) -> dict[str, dict[str, float]]:
    """setting -> floors for every setting of ``cfg``, from ``out/floors.json`` or computed (and
    stored) when missing; with ``compute=False`` missing settings are left out."""
    path = out / FILE
    try:
        stored = json.loads(path.read_text())
        stored = stored if isinstance(stored, dict) else {}
    except (OSError, ValueError):
        stored = {}
    result, changed = {}, False
    for setting in cfg.settings:
        key = _key(cfg, setting)
        if key not in stored and compute:
            stored[key] = compute_setting_floors(cfg, setting)
            changed = True
        if key in stored:
            result[setting] = stored[key]
    if changed:
        atomic_write_bytes(path, json.dumps(stored, indent=2).encode())
    return result
