"""Six tiny jobs through the local job board against the same six on a Ray cluster of two nodes
of this machine, and the app's page times while they train.

The local board trains one job at a time (`RNNKIT_MAX_JOBS` = 1, a server's default), each in a
child process of its own (no process on standby). The cluster is a head and one more node of
one CPU each, started here with `ray start` (as the cluster tests do) and stopped at the end; its
board hands all six to Ray at once. Both train the same configurations (seeds 1 to 6) on the
same generated corpus, into run stores of their own. While each side trains, this process
renders the app's Home and Lengths pages under Streamlit's AppTest, over and over (the script's
time, as `page_speed.py` measures it); the same renders with nothing training are the
reference.

    .venv/bin/python benchmarks/cluster.py [--jobs 6] [--epochs 10] [--reviews 200]

It needs `requirements-cluster.txt`. It prints each side's wall time, their ratio, the page
times, and what a machine of 2 cores can and cannot show about scaling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from page_speed import timed_view  # noqa: E402

from rnnkit import RunStore, load_imdb  # noqa: E402
from rnnkit.jobs import JobBoard  # noqa: E402
from rnnkit.settings import TrainingLimits  # noqa: E402
from tests.helpers import (  # noqa: E402
    local_ray_cluster,
    tiny_masked_config,
    tiny_reviews,
    write_archive,
)

PAGES = ["views/home.py", "views/lengths.py"]


def page_seconds() -> list[float]:
    """One first view of each page in a new session."""
    return [timed_view(page, {})[0] for page in PAGES]


def train_all(board: JobBoard, configs, data) -> tuple[float, list[float], set[str]]:
    """Submit every config to `board`, render pages until all are done.

    Returns:
        (wall seconds from the first submit to the last job's end, the page times meanwhile,
        the nodes the jobs trained on).
    """
    started = time.perf_counter()
    jobs = [board.submit(config, data) for config in configs]
    pages: list[float] = []
    while any(board.view(job.run_id).state in ("queued", "running") for job in jobs):
        pages += page_seconds()
    for job in jobs:
        board.wait(job.run_id)
    wall = time.perf_counter() - started
    views = [board.view(job.run_id) for job in jobs]
    failed = [view for view in views if view.state != "done"]
    if failed:
        sys.exit(f"{len(failed)} jobs did not finish: {failed[0].state} {failed[0].error}")
    return wall, pages, {view.node or "this machine" for view in views}


def describe(pages: list[float]) -> str:
    if not pages:
        return "no page rendered"
    ordered = sorted(pages)
    high = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):.2f} s, 95th percentile {high:.2f} s, "
        f"max {ordered[-1]:.2f} s over {len(ordered)} renders"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--reviews", type=int, default=200, help="training reviews per label")
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rnnkit-cluster-benchmark-"))
    corpus = write_archive(
        folder / "corpus.tar.gz", tiny_reviews(arguments.reviews, arguments.reviews // 4)
    )
    # The pages and the jobs (the nodes' too: the variables travel with each task) read the
    # generated corpus, parsed once into a cache of this run's own.
    os.environ["RNNKIT_DATA"] = str(corpus)
    os.environ["RNNKIT_CACHE_DIR"] = str(folder / "cache")
    os.environ["RNNKIT_STANDBY"] = "0"
    data = load_imdb(num_words=100, path=corpus)
    configs = [
        tiny_masked_config(**{"training.seed": str(seed), "training.epochs": str(arguments.epochs)})
        for seed in range(1, arguments.jobs + 1)
    ]
    limits = TrainingLimits(max_jobs=1, max_queue=arguments.jobs)
    print(
        f"{arguments.jobs} jobs: {configs[0].summary()}, "
        f"{2 * arguments.reviews} training reviews; pages: {', '.join(PAGES)}"
    )
    page_seconds()  # the first renders load the reviews and the caches: not timed
    idle = [seconds for _ in range(3) for seconds in page_seconds()]
    print(f"pages, nothing training:        {describe(idle)}")

    local_board = JobBoard(RunStore(folder / "local"), limits)
    local_wall, local_pages, _ = train_all(local_board, configs, data)
    local_board.shutdown()
    print(f"local queue (1 at a time):      {local_wall:6.1f} s; pages {describe(local_pages)}")

    from rnnkit import cluster

    with local_ray_cluster(folder) as started:
        cluster_board = JobBoard(RunStore(folder / "cluster"), limits, ray_address=started.address)
        cluster_wall, cluster_pages, nodes = train_all(cluster_board, configs, data)
        cluster_board.shutdown()
        cluster.disconnect()
    print(
        f"cluster (2 nodes, 1 CPU each): {cluster_wall:6.1f} s; pages {describe(cluster_pages)}"
        f"; trained on {len(nodes)} nodes"
    )
    print(f"ratio local / cluster: {local_wall / cluster_wall:.2f}x")
    print(
        "What this shows: both nodes run on this machine's 2 cores, so the cluster can only do\n"
        "what 2 processes at once on 2 cores do against the local board's 1 at a time: two tiny\n"
        "jobs that each leave a core idle, and a node's worker process that keeps TensorFlow\n"
        "loaded from one job to the next where the local board starts a process per job. It\n"
        "cannot show scaling past 2 cores, more machines, the network between them, or a shared\n"
        "file system's lock and write latency; and the server's pages compete with the nodes\n"
        "for the same cores, which on a real cluster they would not."
    )


if __name__ == "__main__":
    main()
