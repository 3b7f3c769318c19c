"""How long the padding experiment takes, from the click to its result table.

The Learning curves page's padding experiment trains a run's configuration with post padding,
pre padding and post padding masked (`compare.padding_variants`), through the app's job board,
as its button does: the three jobs queued at once, a training process on standby. This script
does the same for `--preset` (default `notebook`, the course notebook's model) with
`--epochs` epochs (default 2), in a run store of its own so that every variant really trains,
and prints each variant's seconds from the click to its results with its epochs and its end,
and the reference: the sum of the variants' epochs, what the experiment would take if starting
and ending a run cost nothing.

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/padding_experiment.py \\
        [--preset notebook] [--epochs 2]

Target: at most 120 s for 2 epochs of the notebook's model's three variants. The last line
reads `padding experiment: N s (target 120 s)`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

READY_SECONDS = 120  # a process on standby loads TensorFlow well within this
TARGET_SECONDS = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="notebook")
    parser.add_argument("--epochs", type=int, default=2)
    arguments = parser.parse_args()
    if not os.environ.get("RNNKIT_DATA"):
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")
    import rnnkit
    from rnnkit import compare
    from rnnkit.jobs import JobBoard
    from rnnkit.settings import TrainingLimits

    config = rnnkit.preset(arguments.preset).with_overrides({"training.epochs": arguments.epochs})
    data = rnnkit.load_imdb(num_words=config.data.num_words)  # cached, as a server has it
    variants = compare.padding_variants(config)
    with tempfile.TemporaryDirectory() as folder:
        board = JobBoard(rnnkit.RunStore(Path(folder)), TrainingLimits(), standby=True)
        board.prepare()  # the visitor opens the page
        if not board.standby_process().wait_ready(READY_SECONDS):
            sys.exit("the process on standby did not get ready")
        clicked = time.monotonic()
        jobs = {label: board.submit(variant, data) for label, variant in variants.items()}
        finished: dict[str, float] = {}
        while len(finished) < len(jobs):
            for label, job in jobs.items():
                view = board.view(job.run_id)
                if label not in finished and view.state not in ("queued", "running"):
                    if view.state != "done":
                        sys.exit(f"{label}: the job ended {view.state}: {view.error}")
                    finished[label] = time.monotonic() - clicked
            time.sleep(0.05)
        total = time.monotonic() - clicked
        print(f"{'variant':<28} {'done at':>8} {'epochs':>7} {'test':>6}")
        epochs_sum = 0.0
        for label, job in jobs.items():
            timings = board.store.timings(job.run_id)
            epochs = sum(timings["epoch_seconds"])
            epochs_sum += epochs
            print(
                f"{label:<28} {finished[label]:>7.1f}s {epochs:>6.1f}s "
                f"{timings['test_seconds']:>5.1f}s"
            )
        board.shutdown()
    print(f"reference, the variants' epochs alone: {epochs_sum:.0f} s ({total / epochs_sum:.2f}x)")
    print(f"padding experiment: {total:.0f} s (target {TARGET_SECONDS:.0f} s)")


if __name__ == "__main__":
    main()
