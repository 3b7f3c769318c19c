"""How honest the Train page's estimate is: estimated against measured click-to-results time.

For each preset, trained for 1 epoch (2 for `recommended`, whose epochs take seconds), as a
visitor's Train click trains it (the app's job board, a process on standby, the reviews cached):

- first: on a server with no completed runs (a store of its own), the estimate (the default
  speeds and times, scaled by this machine's probe) against the measured time from the click
  to the results;
- calibrated: after that one completed run, the same preset with another training seed (so
  another run) is estimated again from it and measured.

Each line gives the estimate, the measurement and their ratio (measured / estimated); the last
line reads `worst estimate error: NN%` (the largest |measured / estimated - 1|). The targets:
within 35% for the first estimates, 20% once calibrated.

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/estimate.py \\
        [--presets seed notebook recommended best_rnn]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PRESETS = ("seed", "notebook", "recommended", "best_rnn")
EPOCHS = {"recommended": 2}  # the others train 1 epoch
READY_SECONDS = 120


def estimated_and_measured(board, config, data) -> tuple[float, float]:
    """The estimate the Train page shows for `config`, then the click-to-results seconds."""
    from rnnkit.estimate import estimate_run

    board.prepare()  # the visitor opens the Train page
    if not board.standby_process().wait_ready(READY_SECONDS):
        sys.exit("the process on standby did not get ready")
    estimate = estimate_run(
        config, data.train.lengths, data.test.lengths, board.store, warm_start=True
    )
    clicked = time.monotonic()
    job = board.submit(config, data)
    view = board.wait(job.run_id)
    measured = time.monotonic() - clicked
    if view.state != "done":
        sys.exit(f"the job ended {view.state}: {view.error}")
    return estimate.total, measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the run stores in this folder (to study)"
    )
    arguments = parser.parse_args()
    if not os.environ.get("RNNKIT_DATA"):
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")
    import rnnkit
    from rnnkit.estimate import PROBE_REFERENCE_FLOPS_PER_SECOND, machine_factor, probe_speed
    from rnnkit.jobs import JobBoard
    from rnnkit.settings import TrainingLimits

    print(
        f"this machine's probe: {probe_speed() / 1e9:.1f} GFLOP/s, "
        f"{machine_factor():.2f}x the defaults' machine "
        f"({PROBE_REFERENCE_FLOPS_PER_SECOND / 1e9:.1f} GFLOP/s)"
    )
    print(f"{'preset':<12} {'estimate':<11} {'estimated':>10} {'measured':>9} {'ratio':>6}")
    errors = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = arguments.keep or temporary
        for preset_name in arguments.presets:
            config = rnnkit.preset(preset_name).with_overrides(
                {"training.epochs": EPOCHS.get(preset_name, 1)}
            )
            data = rnnkit.load_imdb(num_words=config.data.num_words)
            board = JobBoard(
                rnnkit.RunStore(Path(folder) / preset_name), TrainingLimits(), standby=True
            )
            other_seed = config.with_overrides({"training.seed": config.training.seed + 1})
            for label, trained in (("first", config), ("calibrated", other_seed)):
                estimated, measured = estimated_and_measured(board, trained, data)
                errors.append(abs(measured / estimated - 1))
                print(
                    f"{preset_name:<12} {label:<11} {estimated:>9.1f}s {measured:>8.1f}s "
                    f"{measured / estimated:>5.2f}x",
                    flush=True,
                )
            board.shutdown()
    print(f"worst estimate error: {max(errors):.0%}")


if __name__ == "__main__":
    main()
