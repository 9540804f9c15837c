"""First decode vs cached load of CREMA-D at its full size, on a generated fixture (no download).

    python -m benchmarks.decode_cache_crema [--per-class 1117] [--test-per-class 123] [--steps 16]

The fixture (``tests/av_fixtures.make_crema_d_root``) has 6 x (per-class + test-per-class) clips
(default 7,440, CREMA-D's 7,442 rounded to whole classes), 3 s of 16 kHz audio and 3 small jpg
frames each, in OGM-GE's layout. Prints one JSON line: clips, seconds to generate, to decode
(first ``load_crema_d``, cache empty) and to load from the cache (second call), and the speed-up.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Generate the fixture in a temporary folder, decode it twice, print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=1117)
    parser.add_argument("--test-per-class", type=int, default=123)
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from av_fixtures import make_crema_d_root

    from taaf.data.crema_d import load_crema_d

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TAAF_CACHE_DIR"] = str(Path(tmp) / "cache")
        start = time.perf_counter()
        root = make_crema_d_root(Path(tmp), n_per_class=args.per_class, n_test_per_class=args.test_per_class,
                                 seconds=3.0)
        generated = time.perf_counter() - start
        timings = []
        for _ in range(2):
            start, cpu = time.perf_counter(), time.process_time()
            data = load_crema_d(root, n_steps=args.steps)
            timings.append((time.perf_counter() - start, time.process_time() - cpu))
        clips = len(data.train) + len(data.val) + len(data.test)
    (first, first_cpu), (cached, cached_cpu) = timings
    print(json.dumps({"clips": clips, "steps": args.steps, "generate_s": round(generated, 1),
                      "first_decode_s": round(first, 2), "first_decode_cpu_s": round(first_cpu, 2),
                      "cached_load_s": round(cached, 2), "cached_load_cpu_s": round(cached_cpu, 2),
                      "speedup_wall": round(first / cached, 1), "speedup_cpu": round(first_cpu / cached_cpu, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
