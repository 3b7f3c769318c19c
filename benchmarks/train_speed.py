"""Seconds per epoch: the course notebook's code against rnnkit's training of a preset.

In one invocation, two worker processes train on the same 20,000 training reviews (rnnkit's
seeded split; the other 5,000 validate), taking turns so that a noisy machine slows both alike:

- notebook: the notebook's code as written: `pad_sequences(maxlen=500, padding='post')`, the
  Sequential model, plain `model.fit` on the arrays with batch 128;
- rnnkit: `rnnkit.training.setup_training` for the preset (what `rnnkit.train` fits), its
  SimpleRNN layers computed by `rnnkit.fused` unless `RNNKIT_FUSED_RNN=0`, in the environment
  of rnnkit's training processes (`settings.training_environment`).

Full mode trains `--epochs` epochs each and reports validation accuracy after each; `--short`
times `--batches` batches each (a few minutes in all) and extrapolates to an epoch. The TF-IDF +
logistic regression baseline on the same split is printed for reference, and full mode also
trains the `recommended` and `best_rnn` presets to the end and prints their test accuracy.
The last line reads `speedup: N.NNx` (notebook seconds per epoch / rnnkit's).

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz python benchmarks/train_speed.py --short
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.config import PRESETS

ROOT = Path(__file__).resolve().parents[1]
# Full mode then trains these presets to the end and prints their test accuracy.
PRESETS_TRAINED = ("recommended", "best_rnn")


def _notebook_setup(config, data):
    """The notebook's preprocessing and model, written as the notebook writes them."""
    from keras import Sequential, layers
    from keras.utils import pad_sequences

    from rnnkit.training import split_rows

    # Only the rows come from rnnkit: the notebook trains on the same reviews.
    validation_rows, training_rows = split_rows(config, len(data.train))
    sequences = data.train.sequences.to_list()
    padded = pad_sequences(sequences, maxlen=500, padding="post")
    model = Sequential(
        [
            layers.Input((500,)),
            layers.Embedding(10000, 16),
            layers.Bidirectional(layers.SimpleRNN(64, return_sequences=True)),
            layers.Bidirectional(layers.SimpleRNN(64)),
            layers.Dense(64, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    labels = data.train.labels.astype("float32")
    arguments = {
        "x": padded[training_rows],
        "y": labels[training_rows],
        "batch_size": 128,
        "validation_data": (padded[validation_rows], labels[validation_rows]),
    }
    return model, arguments


def train_preset(name: str) -> None:
    """Train a preset (recommended, best_rnn) with `rnnkit.train` into a temporary run store;
    print one JSON line: training seconds (fit, without the test predictions) and test
    accuracy."""
    import tempfile

    import rnnkit
    from rnnkit.runs import RunStore

    config = rnnkit.preset(name)
    data = rnnkit.load_imdb(num_words=config.data.num_words)
    with tempfile.TemporaryDirectory() as folder:
        run = rnnkit.train(config, data, store=RunStore(Path(folder)))
        answer = {
            "fit_seconds": run.timings["fit_seconds"],
            "epochs": len(run.history),
            "test_accuracy": run.metrics["test_accuracy"],
            "summary": config.summary(),
        }
    print(json.dumps(answer), flush=True)


def worker(kind: str, preset_name: str) -> None:
    """Answer commands on stdin: "batches N" or "epoch"; print one JSON line per command."""

    import rnnkit
    from rnnkit.model import has_fused_layers
    from rnnkit.training import setup_training

    config = rnnkit.preset(preset_name)
    data = rnnkit.load_imdb(num_words=config.data.num_words)
    if kind == "notebook":
        model, arguments = _notebook_setup(config, data)
        batches_per_epoch = -(-len(arguments["x"]) // arguments["batch_size"])
    else:
        setup = setup_training(config, data)
        model, arguments = setup.model, setup.fit_arguments
        batches_per_epoch = setup.batches_per_epoch
    epochs_done = 0
    print(
        json.dumps(
            {
                "ready": True,
                "parameters": model.count_params(),
                "batches_per_epoch": batches_per_epoch,
                "fused": has_fused_layers(model),
            }
        ),
        flush=True,
    )
    for line in sys.stdin:
        command = line.split()
        started = time.perf_counter()
        if command[0] == "batches":
            count = int(command[1])
            if "y" in arguments:  # padded arrays, in the order Keras shuffles them
                rows = np.random.default_rng(len(line)).permutation(len(arguments["x"]))
                rows = rows[: count * arguments["batch_size"]]
                x, y = arguments["x"][rows], arguments["y"][rows]
                model.fit(x, y, batch_size=arguments["batch_size"], epochs=1, verbose=0)
            else:  # a length-grouped dataset: its first batches of a new random order
                model.fit(arguments["x"].take(count), epochs=1, shuffle=False, verbose=0)
            print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)
        elif command[0] == "epoch":
            history = model.fit(
                **arguments, epochs=epochs_done + 1, initial_epoch=epochs_done, verbose=0
            )
            epochs_done += 1
            print(
                json.dumps(
                    {
                        "seconds": time.perf_counter() - started,
                        "val_accuracy": history.history["val_accuracy"][-1],
                    }
                ),
                flush=True,
            )


def _environment(kind: str) -> dict[str, str]:
    """A worker's environment: rnnkit's side as rnnkit's training processes have it
    (`settings.training_environment`: TensorFlow's pooling allocator), the notebook's as the
    notebook's code runs, this shell's."""
    from rnnkit.settings import training_environment

    base = training_environment() if kind != "notebook" else dict(os.environ)
    return {**base, "PYTHONPATH": str(ROOT)}


class Worker:
    def __init__(self, kind: str, preset_name: str) -> None:
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, "--preset", preset_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env=_environment(kind),
        )
        self.info = self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.kind} worker died; run it alone to see why")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="time batches, not epochs")
    parser.add_argument("--batches", type=int, default=30, help="batches per side (--short)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per side (full mode)")
    parser.add_argument(
        "--preset", default="seed", choices=sorted(PRESETS), help="rnnkit's preset to time"
    )
    parser.add_argument(
        "--no-recommended",
        action="store_true",
        help="full mode: skip training the recommended and best_rnn presets",
    )
    parser.add_argument(
        "--worker",
        choices=("notebook", "rnnkit", *PRESETS_TRAINED),
        help=argparse.SUPPRESS,
    )
    arguments = parser.parse_args()
    if arguments.batches < 1 or arguments.epochs < 1:
        parser.error("--batches and --epochs must be at least 1")
    if arguments.worker in PRESETS_TRAINED:
        train_preset(arguments.worker)
        return
    if arguments.worker:
        worker(arguments.worker, arguments.preset)
        return
    if not os.environ.get("RNNKIT_DATA"):
        sys.exit("Set RNNKIT_DATA to the aclImdb archive (../shared/data/aclImdb_labeled.tar.gz)")

    workers = [Worker("notebook", arguments.preset), Worker("rnnkit", arguments.preset)]
    for item in workers:
        computed = "rnnkit.fused's loop" if item.info["fused"] else "Keras' loop"
        print(
            f"{item.kind}: {item.info['parameters']:,} parameters, "
            f"{item.info['batches_per_epoch']} batches per epoch, RNN computed by {computed}"
        )
    seconds = {item.kind: [] for item in workers}
    accuracy = {item.kind: [] for item in workers}
    if arguments.short:
        for item in workers:
            item.ask("batches 2")  # tracing and warm-up, not timed
        chunk = 5
        for _ in range(max(1, arguments.batches // chunk)):
            for item in workers:
                seconds[item.kind].append(item.ask(f"batches {chunk}")["seconds"] / chunk)
        per_epoch = {
            item.kind: np.mean(seconds[item.kind]) * item.info["batches_per_epoch"]
            for item in workers
        }
    else:
        for epoch in range(1, arguments.epochs + 1):
            for item in workers:
                answer = item.ask("epoch")
                seconds[item.kind].append(answer["seconds"])
                accuracy[item.kind].append(answer["val_accuracy"])
                print(
                    f"epoch {epoch} {item.kind}: {answer['seconds']:.1f} s, validation accuracy "
                    f"{answer['val_accuracy']:.4f}",
                    flush=True,
                )
        # The first epoch includes tracing; later epochs are the steady pace when there are any.
        per_epoch = {kind: min(values) for kind, values in seconds.items()}
    for item in workers:
        item.close()
    for kind in ("notebook", "rnnkit"):
        line = f"{kind}: {per_epoch[kind]:.1f} s per epoch"
        if accuracy[kind]:
            line += f", validation accuracy after {len(accuracy[kind])} epochs "
            line += f"{accuracy[kind][-1]:.4f}"
        print(line)
    for name in () if arguments.short or arguments.no_recommended else PRESETS_TRAINED:
        finished = subprocess.run(
            [sys.executable, __file__, "--worker", name],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=_environment("rnnkit"),
            check=True,
        )
        answer = json.loads(finished.stdout.strip().splitlines()[-1])
        print(
            f"{name} ({answer['summary']}): test accuracy {answer['test_accuracy']:.4f} "
            f"after {answer['epochs']} epochs, {answer['fit_seconds']:.0f} s of training"
        )
    try:
        import rnnkit
        from rnnkit.baseline import tfidf_baseline

        baseline = tfidf_baseline(rnnkit.load_imdb(num_words=10000))
        print(
            f"TF-IDF + logistic regression: validation accuracy {baseline['val_accuracy']:.4f}, "
            f"test accuracy {baseline['test_accuracy']:.4f}"
        )
    except ImportError:
        print("TF-IDF baseline: rnnkit.evaluation is not available")
    print(f"speedup: {per_epoch['notebook'] / per_epoch['rnnkit']:.2f}x")


if __name__ == "__main__":
    main()
