"""How long the Predictions page takes to read a typed review, after the model is loaded.

For a complete run of the store (`--run`, default the newest run of each `--preset`'s data
and model), in a
fresh process each (so that the first reading pays what a first visitor pays):

- loading the model as the page does (`evaluation.load_model`: the file, and the compiled
  forward and gradient functions);
- reading a test review (`evaluation.read_text`: the prediction, each word's contribution and
  the prediction word by word) with occlusion and with gradient x input, the first time and
  again, for a review of about the median length and for the longest one the model reads;
- against one prediction of the same review (`evaluation.predict_texts`), the reference.

    RNNKIT_DATA=../shared/data/aclImdb_labeled.tar.gz RNNKIT_RUNS_DIR=... \\
        python benchmarks/read_speed.py --preset seed notebook

Target: every reading <= 1 s after the model is loaded, the first one included. The last line
reads `slowest reading: N.NN s`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 1.0


def timed(function, *arguments):
    started = time.perf_counter()
    result = function(*arguments)
    return result, time.perf_counter() - started


def measure(run_id: str) -> dict:
    """The timings of one run, in this (fresh) process."""
    import numpy as np

    from rnnkit import RunStore, evaluation, load_imdb
    from rnnkit.config import TrainConfig

    run = RunStore().load(run_id)
    config = TrainConfig.from_dict(run.config)
    data = load_imdb(num_words=config.data.num_words)
    import keras  # noqa: F401  (a server has TensorFlow loaded before a model is asked for)

    from rnnkit import fused  # noqa: F401  (and its compiled loops)

    _, file_seconds = timed(run.model)
    model, load_seconds = timed(evaluation.load_model, run)
    lengths = np.array([len(text.split()) for text in data.test.texts])
    by_length = np.argsort(lengths)
    reviews = {
        "median": int(by_length[len(by_length) // 2]),
        "longest": int(by_length[-1]),
    }
    figures = {"run": run_id, "load": load_seconds, "file": file_seconds, "readings": []}
    for name, index in reviews.items():
        text = data.test.texts[index]
        for method in ("occlusion", "gradient"):
            for attempt in ("first", "again"):
                _, seconds = timed(evaluation.read_text, model, data.vocab, config, text, method)
                figures["readings"].append(
                    {
                        "review": name,
                        "words": int(lengths[index]),
                        "method": method,
                        "attempt": attempt,
                        "seconds": seconds,
                    }
                )
        _, reference = timed(evaluation.predict_texts, model, data.vocab, config, [text])
        figures[f"predict_{name}"] = reference
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", default=["seed", "notebook"])
    parser.add_argument("--run", nargs="*", default=[], help="run ids (instead of presets)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(measure(arguments.child)))
        return 0

    from rnnkit import RunStore
    from rnnkit.config import PRESETS

    runs = list(arguments.run)
    if not runs:
        summaries = RunStore().list_runs()
        for preset in arguments.preset:
            wanted = PRESETS[preset].to_dict()  # its data and model; any training settings
            matching = [
                summary
                for summary in summaries
                if summary.status == "complete"
                and summary.config
                and all(summary.config.get(part) == wanted[part] for part in ("data", "model"))
            ]
            if not matching:
                print(f"no complete run of preset {preset} in the store: train one first")
                return 1
            runs.append(matching[0].run_id)
    slowest = 0.0
    for run_id in runs:
        output = subprocess.run(
            [sys.executable, __file__, "--child", run_id],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        figures = json.loads(output.strip().splitlines()[-1])
        print(
            f"run {run_id}: model loaded in {figures['load']:.2f} s, traced included "
            f"(the model file alone: {figures['file']:.2f} s)"
        )
        for reading in figures["readings"]:
            reference = figures[f"predict_{reading['review']}"]
            verdict = "ok" if reading["seconds"] <= TARGET_SECONDS else "OVER"
            print(
                f"  {reading['review']} review ({reading['words']} words), {reading['method']}, "
                f"{reading['attempt']}: {reading['seconds']:.2f} s "
                f"({reading['seconds'] / reference:.1f}x one prediction, {reference:.3f} s): "
                f"{verdict}"
            )
            slowest = max(slowest, reading["seconds"])
    print(f"slowest reading: {slowest:.2f} s (target <= {TARGET_SECONDS:g} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
