"""How long the end of a run's test pass takes: the probabilities of the 24,999 test reviews.

For each preset, the model as `rnnkit.train` builds it (its initial weights: a pass costs the
same whatever the weights), and the test reviews as training pads them, read as a run's end
reads them (`TrainingSetup.predict`), in the same invocation:

- reader: `rnnkit.fused.FusedReader`, forward only, NumPy and time-major fused loops, in
  batches of `READ_BATCH_SIZE` rows;
- reference: the model's own layers (the fused layers inside TensorFlow) in one compiled
  function, in batches of the training's size, as the test pass read before the reader;

and for the reader, the same pass with other batch sizes (`--batch-sizes`). The two must agree
to 1e-5; each is timed twice, alternately, and the faster time kept. The last line reads
`slowest test pass: N.N s` (the reader at its batch size, the worst over the presets).

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/test_pass.py \\
        [--presets seed notebook] [--batch-sizes 128 512]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = ("seed", "notebook")
ROUNDS = 2  # each pass timed this many times, the fastest kept


def timed_pass(setup, tokens, reader: bool, batch_size: int | None = None):
    """(probabilities, seconds) of one test pass, read by the reader (in batches of
    `batch_size`, default the reader's own) or, as before it, by the model itself in batches
    of the training's size."""
    from rnnkit import fused, training

    patches = contextlib.ExitStack()
    if not reader:
        patches.enter_context(mock.patch.object(fused.FusedReader, "of", return_value=None))
        batch_size = setup.config.training.batch_size
    if batch_size is not None:
        patches.enter_context(
            mock.patch.object(training, "evaluation_batch_size", return_value=batch_size)
        )
    with patches:
        started = time.perf_counter()
        probabilities = setup.predict(tokens)
        return probabilities, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--batch-sizes", nargs="*", type=int, default=[])
    arguments = parser.parse_args()
    if not os.environ.get("RNNKIT_DATA"):
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")
    import numpy as np

    import rnnkit
    from rnnkit.devices import READ_BATCH_SIZE
    from rnnkit.training import setup_training

    print(f"{'preset':<10} {'batch':>5} {'reference':>10} {'reader':>8} {'ratio':>6}")
    slowest = 0.0
    for preset_name in arguments.presets:
        config = rnnkit.preset(preset_name)
        data = rnnkit.load_imdb(num_words=config.data.num_words)
        setup = setup_training(config, data)
        tokens = setup.prepared.x_test
        timed_pass(setup, tokens[:256], reader=False)  # traced once, as a run's end finds it
        references, readings = [], []
        for _ in range(ROUNDS):  # alternately: the machine's speed drifts
            expected, reference = timed_pass(setup, tokens, reader=False)
            probabilities, seconds = timed_pass(setup, tokens, reader=True)
            references.append(reference)
            readings.append(seconds)
        reference, seconds = min(references), min(readings)
        difference = float(np.abs(probabilities - expected).max())
        if difference > 1e-5:
            sys.exit(f"{preset_name}: the reader differs from the model by {difference:.2g}")
        print(
            f"{preset_name:<10} {READ_BATCH_SIZE:>5} {reference:>9.1f}s {seconds:>7.1f}s "
            f"{reference / seconds:>5.2f}x",
            flush=True,
        )
        slowest = max(slowest, seconds)
        for other in arguments.batch_sizes:
            _, other_seconds = timed_pass(setup, tokens, reader=True, batch_size=other)
            print(f"{'':<10} {other:>5} {'':>10} {other_seconds:>7.1f}s", flush=True)
    print(f"slowest test pass: {slowest:.1f} s")


if __name__ == "__main__":
    main()
