"""Seconds per epoch on a GPU, with Keras' own layers: the notebook's model and rnnkit's presets.

The CPU figures come from `train_speed.py`; this script measures the same models where a GPU is
at hand, with any Keras backend (`KERAS_BACKEND=jax`: XLA-compiled loops; `torch`: cuDNN for
LSTM and GRU when the padding is after the words, which cuDNN needs to honour a mask). It trains
`--batches` batches of 128 of the 20,000 training reviews per config after `--warmup` batches
(compilation), and extrapolates to an epoch. Masked configs train on length-grouped batches cut
to a multiple of 64 steps (exact under the mask; few shapes to compile).

    KERAS_BACKEND=jax RNNKIT_DATA=... python benchmarks/gpu_speed.py --configs notebook seed
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

CONFIGS = {
    # name: (preset, overrides)
    "notebook": ("notebook", {}),
    "seed": ("seed", {}),
    "best_rnn": ("best_rnn", {}),
    "lstm-post": ("best_rnn", {"data.padding": "post"}),
    "gru-post": ("best_rnn", {"data.padding": "post", "model.cell": "gru"}),
}


def batches_of(config, tokens: np.ndarray, seed: int) -> list[np.ndarray]:
    """Row batches: in random order; of similar length when the config masks its padding."""
    from rnnkit.sequences import length_grouped_batches

    size = config.training.batch_size
    if not config.model.mask_padding:
        order = np.random.default_rng(seed).permutation(len(tokens))
        return [order[start : start + size] for start in range(0, len(order), size)]
    lengths = np.count_nonzero(tokens, axis=1)
    return length_grouped_batches(lengths, size, seed=seed, pool_batches=50)


def cut(config, rows: np.ndarray) -> np.ndarray:
    """Drop padding columns, keeping a multiple of 64 steps (masked configs only)."""
    if not config.model.mask_padding:
        return rows
    width = int(np.count_nonzero(rows, axis=1).max())
    width = min(rows.shape[1], -(-max(width, 1) // 64) * 64)
    return rows[:, :width] if config.data.padding == "post" else rows[:, rows.shape[1] - width :]


def measure(name: str, data, batches: int, warmup: int) -> dict:
    import keras

    import rnnkit
    from rnnkit.model import build_model
    from rnnkit.training import prepare_data

    preset_name, overrides = CONFIGS[name]
    config = rnnkit.preset(preset_name).with_overrides(overrides)
    prepared = prepare_data(config, data)
    keras.utils.set_random_seed(0)
    model = build_model(config)
    order = batches_of(config, prepared.x_train, seed=0)
    timed = order[warmup : warmup + batches]
    # Compile first for every batch shape that the timed batches have (XLA compiles per shape).
    seen = set()
    for rows in order[:warmup] + timed:
        tokens = cut(config, prepared.x_train[rows])
        if tokens.shape not in seen or len(seen) < warmup:
            seen.add(tokens.shape)
            model.train_on_batch(tokens, prepared.y_train[rows])
    started = time.perf_counter()
    for rows in timed:
        model.train_on_batch(cut(config, prepared.x_train[rows]), prepared.y_train[rows])
    seconds = time.perf_counter() - started
    return {
        "name": name,
        "summary": config.summary(),
        "batch_seconds": seconds / len(timed),
        "epoch_seconds": seconds / len(timed) * len(order),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batches", type=int, default=30, help="timed batches per config")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    arguments = parser.parse_args()
    if arguments.batches < 1 or arguments.warmup < 0:
        parser.error("--batches must be at least 1 and --warmup at least 0")

    import keras

    import rnnkit

    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}", flush=True)
    data = rnnkit.load_imdb(num_words=10000)
    results = []
    for name in arguments.configs:
        result = measure(name, data, arguments.batches, arguments.warmup)
        results.append(result)
        print(
            f"{name:12s} {result['batch_seconds'] * 1000:8.1f} ms/batch "
            f"{result['epoch_seconds']:8.1f} s/epoch  ({result['summary']})",
            flush=True,
        )
    by_name = {result["name"]: result for result in results}
    if "notebook" in by_name:
        for result in results:
            ratio = by_name["notebook"]["epoch_seconds"] / result["epoch_seconds"]
            print(f"notebook / {result['name']}: {ratio:.2f}x")
    print(f"backend: {os.environ.get('KERAS_BACKEND', 'tensorflow')}")


if __name__ == "__main__":
    main()
