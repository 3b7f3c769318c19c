"""How long the Inside the RNN page's computations take on the real data, against one forward
pass of the same model over the same reviews in the same invocation.

For a complete run of the store (`--run`, default the newest run of `--preset`, the seed preset),
copied to a temporary store so that nothing is written into the real one:

- the states of every layer and direction along one test review padded to max_length (500
  steps for the seed preset): the first call (which traces the TensorFlow functions) and the
  next ones, against the model's prediction on the same row;
- the memory profile over 256 test reviews, then its second read from the run's folder, against
  one forward pass over those reviews;
- the unit search over every test review (all units of every layer at once), then its second
  read, against one forward pass over every test review.

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz RNNKIT_RUNS_DIR=... \\
        python benchmarks/inside_speed.py [--run RUN_ID | --preset seed]

Targets on a 2-core machine: states of one review <= 1 s, the memory profile <= 15 s, the unit
search <= 20 s, each second read instant (<= 0.1 s here).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnnkit import RunStore, compare, inside, load_imdb  # noqa: E402
from rnnkit.config import PRESETS, TrainConfig  # noqa: E402

STATES_TARGET, PROFILE_TARGET, SEARCH_TARGET, READ_TARGET = 1.0, 15.0, 20.0, 0.1


def timed(function, *arguments, **keywords):
    started = time.perf_counter()
    result = function(*arguments, **keywords)
    return result, time.perf_counter() - started


def forward_pass(inspector: inside.Inspector, tokens: np.ndarray) -> float:
    """Seconds for the model's logits over `tokens`, in the batches the page's passes use
    (length-grouped and cut under a mask)."""
    started = time.perf_counter()
    for _, batch, _ in inside._batches(tokens, inspector.masked):
        inspector.logits(batch)
    return time.perf_counter() - started


def line(what: str, seconds: float, target: float, reference: float | None = None) -> None:
    verdict = "ok" if seconds <= target else "OVER"
    against = f" (one forward pass over the same reviews: {reference:.2f} s)" if reference else ""
    print(f"{what}: {seconds:.3f} s, target <= {target:g} s: {verdict}{against}")


def computed_then_read(what: str, target: float, reference: float, compute):
    """Time `compute()` twice and print a line for each: the first computes (against `target`
    and a forward pass of `reference` seconds over the same reviews), the second reads what the
    first stored in the run's folder (against READ_TARGET). Returns the second result."""
    _, seconds = timed(compute)
    line(what, seconds, target, reference)
    result, read_seconds = timed(compute)
    line("  its second read, from the run's folder", read_seconds, READ_TARGET)
    return result


def pick_run(store: RunStore, run_id: str | None, preset_name: str) -> str:
    if run_id:
        return run_id
    wanted = PRESETS[preset_name]
    for summary in store.list_runs():  # newest first
        config = compare.config_or_none(summary.config)
        same = config is not None and (
            config.with_overrides({"training.epochs": wanted.training.epochs}) == wanted
        )
        if summary.status == "complete" and same:  # any number of epochs
            return summary.run_id
    sys.exit(
        f"No complete run of the {preset_name} preset in {store.root}: train one with "
        f"`python -m rnnkit train --preset {preset_name} --epochs 1`."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a complete run's id (default: the newest of --preset)")
    parser.add_argument("--preset", default="seed", choices=sorted(PRESETS))
    arguments = parser.parse_args()

    real_store = RunStore()
    run_id = pick_run(real_store, arguments.run, arguments.preset)
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(real_store.folder(run_id), Path(folder) / run_id)
        shutil.rmtree(Path(folder) / run_id / "derived", ignore_errors=True)
        store = RunStore(folder)
        run = store.load(run_id)
        config = TrainConfig.from_dict(run.config)
        data = load_imdb(num_words=config.data.num_words)
        print(f"run {run_id}: {config.summary()}; {len(data.test):,} test reviews")
        model, load_seconds = timed(run.model)
        inspector, open_seconds = timed(inside.Inspector, model)
        print(f"loading the model: {load_seconds:.2f} s; opening it up: {open_seconds:.2f} s")

        # One review padded to max_length.
        longest = int(np.argmax(data.test.lengths))
        row = inside.padded_rows([data.test.sequences[longest]], config)
        _, first_seconds = timed(inspector.states, row)
        state_seconds = min(timed(inspector.states, row)[1] for _ in range(3))
        predict_seconds = min(timed(model.predict_on_batch, row)[1] for _ in range(3))
        print(f"states of one review, first call (traces the functions): {first_seconds:.2f} s")
        line(
            f"states of one review of {row.shape[1]} steps, {len(inspector.directions)} directions",
            state_seconds,
            STATES_TARGET,
        )
        print(f"  reference: the model's prediction on that row: {predict_seconds:.3f} s")

        # The memory profile over the page's sample.
        sample = inside.padded_rows(
            data.test.sequences[inside.profile_sample(len(data.test))], config
        )
        forward_pass(inspector, sample[:8])  # traces the logits' function outside the timing
        sample_reference = forward_pass(inspector, sample)
        profile = computed_then_read(
            f"memory profile over {len(sample)} test reviews",
            PROFILE_TARGET,
            sample_reference,
            lambda: inside.run_memory_profile(store, run, data, inspector),
        )
        print(f"  memory: {profile.memory_text} steps; reach per direction {profile.reach()}")

        # The unit search over every test review.
        every = inside.padded_rows(data.test.sequences, config)
        every_reference = forward_pass(inspector, every)
        computed_then_read(
            f"unit search over {len(every):,} test reviews, all "
            f"{sum(d.units for d in inspector.directions)} units",
            SEARCH_TARGET,
            every_reference,
            lambda: inside.run_unit_search(store, run, data, inspector),
        )


if __name__ == "__main__":
    main()
