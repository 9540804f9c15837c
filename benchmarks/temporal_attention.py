"""What TAAF's temporal attention and time-warp do on a trained checkpoint of temporal data
(AV-MNIST-Temporal): the README's one-seed note is made with this.

    python -m benchmarks.temporal_attention RUN/model.pt [RUN2/model.pt ...] [--split test]

Per checkpoint, one JSON line:
- ``fused``: accuracy as trained; ``fused_uniform_alpha``: the same network with its temporal
  attention replaced by a uniform mean over steps (a post-hoc ablation of alpha_t);
- ``alpha_on_visual_window``: mean attention mass on the steps where the target digit is shown
  (uniform attention would give window / T);
- ``audio_delay`` / ``visual_delay``: mean and max learned time-warp delay (steps), if present.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def analyse(path: str, split_name: str = "test") -> dict:
    """The numbers above for one checkpoint."""
    from taaf.checkpoint import check_split_matches, load_checkpoint
    from taaf.data import load_dataset
    from taaf.evaluate import schedule_tensor, split_tensors

    ckpt = load_checkpoint(path)
    split = load_dataset(ckpt.data_spec).split(split_name)
    check_split_matches(ckpt, split, path)
    audio, image, labels = split_tensors(split)
    schedule = schedule_tensor(split)
    fused, uniform, alphas = [], [], []
    with torch.no_grad():
        for start in range(0, len(split), 200):
            w = slice(start, start + 200)
            out = ckpt.model(audio[w], image[w], None if schedule is None else schedule[w])
            fused.append(out.logits.argmax(-1))
            uniform.append(out.step_logits.mean(dim=1).argmax(-1))
            alphas.append(out.alpha)
    alpha = torch.cat(alphas).numpy()
    report = {"checkpoint": path, "method": ckpt.train_config.method, "preset": ckpt.data_spec.preset,
              "time_warp": ckpt.model_config.time_warp, "steps": split.n_steps,
              "fused": float((torch.cat(fused) == labels).float().mean()),
              "fused_uniform_alpha": float((torch.cat(uniform) == labels).float().mean())}
    if split.schedule is not None:
        shown = split.schedule[:, :, 0] > 0
        report["alpha_on_visual_window"] = float((alpha * shown).sum(1).mean())
        report["uniform_on_visual_window"] = float(shown.mean())
    for name in ("audio", "visual"):
        warp = getattr(ckpt.model, f"{name}_warp", None)
        if warp is not None:
            d = warp.clamped_delay().detach().numpy()
            report[f"{name}_delay"] = {"mean": round(float(np.mean(d)), 3), "max": round(float(np.max(d)), 3)}
    return report


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per checkpoint; a bad checkpoint is one line on stderr and exit code 2."""
    from taaf.errors import TaafError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    args = parser.parse_args(argv)
    try:
        for path in args.checkpoints:
            print(json.dumps(analyse(path, args.split)))
    except TaafError as exc:
        print(f"temporal_attention: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
