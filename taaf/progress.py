"""Progress bars that show on a terminal and stay out of logs (CI, pipes, ``--json``)."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, enabled: bool = True, **kwargs) -> tqdm:
    """``tqdm`` over ``items``, shown only when ``enabled`` and stderr is a terminal."""
    return tqdm(items, desc=desc, leave=False, disable=not (enabled and sys.stderr.isatty()), **kwargs)
