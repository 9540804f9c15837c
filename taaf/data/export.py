"""Taking a built data set to other tools (``taaf data --export FILE.npz``) and looking at it
(``taaf data --plot FILE.png``): what each modality shows over time, sample by sample.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from taaf.data.base import MultimodalDataset
from taaf.data.cache import default_file_mode
from taaf.errors import DataError

SPLITS = ("train", "val", "test")


def check_targets(export: str, plot: str) -> None:
    """Refuse bad --export / --plot file names (wrong suffix, a folder, a missing parent folder) before
    any data is built."""
    for flag, name, suffix in (("--export", export, ".npz"), ("--plot", plot, ".png")):
        if not name:
            continue
        path = Path(name)
        if path.suffix != suffix:
            raise DataError(f"{flag} {path}: the file name must end in {suffix}")
        if path.is_dir():
            raise DataError(f"{flag} {path} is a folder; give a file name ending in {suffix}")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise DataError(f"{flag} {path}: folder {folder} does not exist")


def export_npz(dataset: MultimodalDataset, path: Path) -> dict[str, tuple[int, ...]]:
    """Write ``{split}_audio`` [N, T, F], ``{split}_visual`` [N, T, C, H, W] (the input as seen at each
    step, dense) and ``{split}_labels`` [N] for train/val/test to one uncompressed ``.npz``; visual
    streams also get their compact ``{split}_frames`` / ``{split}_schedule``. One split's dense visual
    array is in memory at a time; the file appears only when complete. Returns the array shapes."""
    from taaf import budget

    path = Path(path)
    check_targets(str(path), "")
    biggest = max(s.audio.shape[1] * int(np.prod(s.image_shape)) * len(s) for s in map(dataset.split, SPLITS))
    budget.check("exporting the dense visual stream", 8 * biggest, "one split's [N, T, C, H, W] float32, twice")
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in SPLITS:
                split = dataset.split(name)
                arrays = {"audio": split.audio, "visual": split.dense_visual(), "labels": split.labels}
                if split.is_stream:
                    arrays.update(frames=split.image, schedule=split.schedule)
                for key, array in arrays.items():
                    with zf.open(f"{name}_{key}.npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
                    shapes[f"{name}_{key}"] = tuple(int(s) for s in array.shape)
                del arrays
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; a plain open() would not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return shapes


def plot_samples(dataset: MultimodalDataset, path: Path, title: str, n_samples: int = 3) -> None:
    """A PNG of ``n_samples`` test samples: per sample the audio (MFCCs x steps) above the visual input
    at every step, so a reader sees where each modality's evidence lies in time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    split = dataset.test.subset(slice(0, n_samples))
    visual = split.dense_visual()[:, :, 0]  # [n, T, H, W], first channel
    steps = split.n_steps
    fig, axes = plt.subplots(2 * len(split), 1, figsize=(max(8.0, steps * 0.45), 2.6 * len(split)),
                             gridspec_kw={"height_ratios": [1, 1] * len(split)})
    for k in range(len(split)):
        ax = axes[2 * k]
        ax.imshow(split.audio[k].T, aspect="auto", cmap="magma", interpolation="nearest",
                  extent=(-0.5, steps - 0.5, split.audio_features - 0.5, -0.5))
        ax.set_ylabel("MFCC")
        ax.set_title(f"test sample {k}: digit {split.class_names[split.labels[k]]} "
                     f"({split.ids[k] if split.ids else ''}) - audio", fontsize=9, loc="left")
        ax.set_xticks([])
        strip = np.concatenate(list(visual[k]), axis=1)
        ax = axes[2 * k + 1]
        ax.imshow(strip, cmap="gray", aspect="auto", interpolation="nearest",
                  extent=(-0.5, steps - 0.5, visual.shape[2], 0))
        ax.set_yticks([])
        ax.set_ylabel("visual")
        ax.set_xticks(range(0, steps, 2))
        ax.set_xlabel("time step", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=80)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write the plot {path} ({exc})") from None
    finally:
        plt.close(fig)
