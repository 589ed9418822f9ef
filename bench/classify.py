"""Benchmark: classifying an error's text as infrastructure or not, on adversarial text.

Usage::

    uv run python bench/classify.py [--reps 7]

Issue 23, item 9: the old pattern ``\\b50[234]\\b.*(error|gateway|unavailable)``
backtracked quadratically on text holding many "503" and no keyword (15 s on 20 KB,
142 s on 80 KB). ``classify`` now searches only the first and last ``CLASSIFY_CHARS``
characters, and each ``A.*B`` pattern is ``INFRA_PAIRS``' linear "A, then later on the
line B". Measured in the same run:

* **new**: ``classify`` with every default matcher on 1 MB of ``"503 "`` (the target:
  under 50 ms), and on 1 MB of ordinary text;
* **baseline**: the old default patterns (the whole text, ``re.search`` each) on 4, 8 and
  16 KB of the same adversarial text (larger would take minutes), with the growth ratio
  that shows the quadratic.
Prints medians over ``--reps``; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

from fle_core.sources import sample_facts as sf

OLD_PAIRS = (
    r"\b50[234]\b.*(error|gateway|unavailable)",
    r"container\b.*\b(is )?not running|container (exited|died|was killed|not found)",
    r"docker (daemon|compose)\b.*(error|failed|not running|unavailable)",
)


def _median(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")
    pats = sf.compile_patterns()
    hostile = "503 " * 250_000
    plain = ("the agent placed a drill on iron ore and the belt backed up; " * 20_000)[: 1 << 20]
    new_hostile = _median(lambda: sf.classify(hostile, None, pats), args.reps)
    new_plain = _median(lambda: sf.classify(plain, None, pats), args.reps)
    print(f"new classify, 1 MB adversarial: {new_hostile * 1e3:.2f} ms (target < 50 ms)")
    print(f"new classify, 1 MB ordinary:    {new_plain * 1e3:.2f} ms")
    old = [re.compile(p, re.IGNORECASE) for p in (*sf.INFRA_PATTERNS, *OLD_PAIRS)]
    prev = None
    for kb in (4, 8, 16):
        text = ("503 " * (kb * 256))[: kb * 1024]
        t = _median(lambda text=text: any(p.search(text) for p in old), max(1, args.reps // 3))
        growth = f", x{t / prev:.1f} for twice the text" if prev else ""
        print(f"old patterns, {kb:>2} KB adversarial: {t * 1e3:,.0f} ms{growth}")
        prev = t
    print(f"ratio: old on 16 KB / new on 1 MB = {prev / new_hostile:,.0f}x")


if __name__ == "__main__":
    main()
