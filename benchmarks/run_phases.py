"""What a visitor waits for around the epochs: the start of a run and its end, per preset.

For each preset, a 1-epoch run trains through the app's job board, as a click on Train does,
in a run store of its own (so it really trains) and with the reviews cached:

- start: from the click to the first batch (`timings.json`'s `start_seconds`): the process
  on standby (TensorFlow loaded while the visitor filled in the form) takes the order, loads
  the cached reviews and builds the model; the reference is the same from a new process, as
  without a process on standby (`fresh start`), in the same invocation;
- first batch done: from the click to the first batch's progress (its first `batch` event):
  the first progress a visitor sees, after the start and the first batch, in which Keras
  builds the model's training step;
- epoch: the epoch with its validation pass;
- end: from the end of the epoch (its last event) to the job's results (the test-set pass
  over 24,999 reviews, saving, the process's exit); `test` and `save` are its parts as the
  process timed them.

The last line reads `slowest: start N.N s, end N.N s` (the worst over the presets).

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/run_phases.py \\
        [--presets seed notebook recommended best_rnn] [--no-fresh]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PRESETS = ("seed", "notebook", "recommended", "best_rnn")
READY_SECONDS = 120  # a process on standby loads TensorFlow well within this


def run_through_the_board(preset_name: str, runs_dir: Path, standby: bool) -> dict[str, float]:
    """Train `preset_name` for 1 epoch as a Train click does; the phases' seconds."""
    import rnnkit
    from rnnkit.jobs import JobBoard
    from rnnkit.settings import TrainingLimits

    config = rnnkit.preset(preset_name).with_overrides({"training.epochs": 1})
    data = rnnkit.load_imdb(num_words=config.data.num_words)
    board = JobBoard(rnnkit.RunStore(runs_dir), TrainingLimits(), standby=standby)
    if standby:
        board.prepare()  # the visitor opens the Train page
        if not board.standby_process().wait_ready(READY_SECONDS):
            sys.exit("the process on standby did not get ready")
    clicked = time.monotonic()
    job = board.submit(config, data)
    first_batch_done = training_seen = None  # moments of the first batch event, the last one
    while (view := board.view(job.run_id)).state in ("queued", "running"):
        kind = None if view.progress is None else view.progress.kind
        if kind in ("epoch", "validate", "batch"):
            training_seen = time.monotonic()
            if first_batch_done is None and kind == "batch":
                first_batch_done = training_seen
        time.sleep(0.02)
    done = time.monotonic()
    board.shutdown()
    if view.state != "done":
        sys.exit(f"{preset_name}: the job ended {view.state}: {view.error}")
    timings = board.store.timings(job.run_id)
    if training_seen is None:
        sys.exit(f"{preset_name}: no progress of the epoch was seen")
    return {
        "start": timings["start_seconds"],
        "first batch done": first_batch_done - clicked,
        "epoch": timings["epoch_seconds"][0],
        "test": timings["test_seconds"],
        "save": timings["save_seconds"],
        "end": done - training_seen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument(
        "--no-fresh", action="store_true", help="leave out the reference start from a new process"
    )
    arguments = parser.parse_args()
    if not os.environ.get("RNNKIT_DATA"):
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")
    import rnnkit

    for preset_name in arguments.presets:  # cache the reviews for every num_words first
        rnnkit.load_imdb(num_words=rnnkit.preset(preset_name).data.num_words)
    print(
        f"{'preset':<12} {'start':>7} {'fresh start':>12} {'ratio':>6} {'first done':>11} "
        f"{'epoch':>7} {'end':>6} {'test':>6} {'save':>6}"
    )
    slowest_start = slowest_end = slowest_first = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for preset_name in arguments.presets:
            phases = run_through_the_board(preset_name, Path(folder) / preset_name, True)
            fresh = (
                None
                if arguments.no_fresh
                else run_through_the_board(
                    preset_name, Path(folder) / f"{preset_name}-fresh", False
                )
            )
            fresh_start = f"{fresh['start']:>11.1f}s" if fresh else f"{'-':>12}"
            ratio = f"{fresh['start'] / phases['start']:>5.1f}x" if fresh else f"{'-':>6}"
            print(
                f"{preset_name:<12} {phases['start']:>6.1f}s {fresh_start} {ratio} "
                f"{phases['first batch done']:>10.1f}s {phases['epoch']:>6.1f}s "
                f"{phases['end']:>5.1f}s {phases['test']:>5.1f}s {phases['save']:>5.1f}s",
                flush=True,
            )
            slowest_start = max(slowest_start, phases["start"])
            slowest_first = max(slowest_first, phases["first batch done"])
            slowest_end = max(slowest_end, phases["end"])
    print(f"slowest first batch done: {slowest_first:.1f} s")
    print(f"slowest: start {slowest_start:.1f} s, end {slowest_end:.1f} s")


if __name__ == "__main__":
    main()
