"""How the hardware stage writes JSON artifacts (netx manifests, Lava programs, resource reports).

One function, below both :mod:`hardware.netx` and :mod:`hardware.targets`, so the netx layer
does not import the export targets built on top of it.
"""
from __future__ import annotations

import json
import re


def dump_json(data) -> bytes:
    """Indented JSON with numeric lists on one line each (bias vectors stay readable); refuses
    NaN and infinity, which are not JSON."""
    text = json.dumps(data, indent=1, allow_nan=False)
    text = re.sub(r"\[\s+([-0-9.eE+,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return (text + "\n").encode()


__all__ = ["dump_json"]
