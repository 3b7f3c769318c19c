"""How long `rnnkit.load_imdb` takes on the real archive: first (parsing) and cached loads.

Each load runs in a fresh Python process with an empty cache folder of its own, as a user's
first and second `import rnnkit; rnnkit.load_imdb()` would. The reference is the time a plain
`tarfile` pass takes to read every member of the same archive in the same invocation, so the
ratio says how much of the first load is parsing beyond reading.

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/load_speed.py [--repeat N]

Targets on a 2-core machine: first load <= 15 s, cached load <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

FIRST_TARGET, CACHED_TARGET = 15.0, 1.5

LOAD = """
import json, time
started = time.perf_counter()
import rnnkit
imported = time.perf_counter()
data = rnnkit.load_imdb()
done = time.perf_counter()
print(json.dumps({"import": imported - started, "load": done - imported,
                  "from_cache": data.source.from_cache, "train": len(data.train),
                  "test": len(data.test)}))
"""


def timed_load(cache_dir: str) -> dict:
    environment = {**os.environ, "RNNKIT_CACHE_DIR": cache_dir}
    result = subprocess.run(
        [sys.executable, "-c", LOAD], env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def read_archive_seconds(path: Path) -> float:
    started = time.perf_counter()
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            if member.isfile():
                archive.extractfile(member).read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="first/cached pairs to run")
    arguments = parser.parse_args()
    data_path = os.environ.get("RNNKIT_DATA")
    if not data_path or not Path(data_path).exists():
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")

    firsts, cacheds = [], []
    for attempt in range(arguments.repeat):
        reference = read_archive_seconds(Path(data_path))
        with tempfile.TemporaryDirectory() as cache_dir:
            first = timed_load(cache_dir)
            cached = timed_load(cache_dir)
        if first["from_cache"] or not cached["from_cache"]:
            sys.exit("the cache did not behave: first load was cached or the second was not")
        firsts.append(first["load"])
        cacheds.append(cached["load"])
        print(
            f"run {attempt + 1}: reference tarfile read {reference:.2f} s | first load "
            f"{first['load']:.2f} s ({first['load'] / reference:.2f}x reference) | cached load "
            f"{cached['load']:.2f} s (import rnnkit {cached['import']:.2f} s) | "
            f"{first['train']} train / {first['test']} test reviews"
        )
    first_best, cached_best = min(firsts), min(cacheds)
    print(f"first load:  {first_best:.2f} s (target <= {FIRST_TARGET} s)")
    print(f"cached load: {cached_best:.2f} s (target <= {CACHED_TARGET} s)")
    print(f"cached/first ratio: {cached_best / first_best:.3f}")
    met = first_best <= FIRST_TARGET and cached_best <= CACHED_TARGET
    print("targets met" if met else "TARGETS MISSED")


if __name__ == "__main__":
    main()
