"""Start-up cost of the Japanese catalog: `cnnkit size` wall time with `--lang ja` against
`--lang en`, measured in one run.

Each round runs both languages once, in alternating order (so that a slow moment of this
shared machine falls on both), as whole processes (`python -m cnnkit size 28 -k 3 -s 2 -p 1`,
the interpreter's start included). Prints the min and median of each language, the ratio of
the medians (ja / en), and the 1-minute load average before and after. Also checks that the
Japanese run still imports neither NumPy nor torch (`-X importtime`).

    python benchmarks/bench_lang_startup.py            # 30 rounds
    python benchmarks/bench_lang_startup.py --rounds 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ARGV = [sys.executable, "-m", "cnnkit", "size", "28", "-k", "3", "-s", "2", "-p", "1"]


def run_once(lang: str) -> float:
    env = {**os.environ, "CNNKIT_LANG": "", "LANG": "C.UTF-8"}
    t = time.perf_counter()
    subprocess.run([*ARGV, "--lang", lang], env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def heavy_imports(lang: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-X", "importtime", *ARGV[1:], "--lang", lang],
        check=True,
        capture_output=True,
        text=True,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()}
    return sorted(n for n in names if n in ("numpy", "torch", "matplotlib"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {"en": [], "ja": []}
    for lang in ("en", "ja"):  # warm the file cache once, not counted
        run_once(lang)
    for i in range(args.rounds):
        order = ("en", "ja") if i % 2 == 0 else ("ja", "en")
        for lang in order:
            times[lang].append(run_once(lang))
    load_after = os.getloadavg()[0]
    for lang, ts in times.items():
        low, mid = min(ts) * 1000, statistics.median(ts) * 1000
        print(f"--lang {lang}: min {low:6.1f} ms  median {mid:6.1f} ms  ({len(ts)} runs)")
    ratio = statistics.median(times["ja"]) / statistics.median(times["en"])
    print(f"ratio ja / en (medians): {ratio:.3f}")
    print(f"heavy imports with --lang ja: {heavy_imports('ja') or 'none'}")
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
