"""Which devices this process computes on, and so which layers compute a model fastest.

`rnnkit.model` asks before it builds a model, and `rnnkit.fused` before each call of its loops:
the fused loops are CPU kernels, so they step aside where TensorFlow sees a GPU. The app's
server asks too, for its estimate, without loading TensorFlow (half a GB) for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.config import TrainConfig
from rnnkit.settings import fused_rnn_enabled

# The NVIDIA driver lists a folder per GPU here; TensorFlow sees no GPU without one.
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def cpu_only() -> bool:
    """Whether this process computes on CPUs only: TensorFlow sees no GPU."""
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


def cpu_only_without_loading() -> bool:
    """`cpu_only()` where TensorFlow is loaded already; else whether the NVIDIA driver shows
    no GPU, answered without loading TensorFlow."""
    if "tensorflow" in sys.modules:
        return cpu_only()
    return not (NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir()))


def uses_fused_rnn(config: TrainConfig, load_tensorflow: bool = True) -> bool:
    """Whether `rnnkit.model.build_model(config)` computes its RNN layers with `rnnkit.fused`:
    SimpleRNN cells without recurrent dropout, with `RNNKIT_FUSED_RNN` on and no GPU in this
    process (answered without importing `rnnkit.fused` and numba, which an app server never
    needs).

    Args:
        config: the configuration.
        load_tensorflow: ask TensorFlow whether it sees a GPU (loading it if need be); False:
            `cpu_only_without_loading()`, for an estimate.
    """
    model = config.model
    if model.cell != "simple_rnn" or model.recurrent_dropout_rate > 0 or not model.rnn_units:
        return False
    return fused_rnn_enabled() and (cpu_only() if load_tensorflow else cpu_only_without_loading())


# Rows per batch of a test-set pass read by `rnnkit.fused.FusedReader`: time-major, a step's
# rows are one block, and more of them make each step's matmul cheaper per row (a layer in
# TensorFlow lays its batch out review by review, and reads best at the training's size).
READ_BATCH_SIZE = 512


def evaluation_batch_size(config: TrainConfig, load_tensorflow: bool = True) -> int:
    """Rows per batch of the test-set pass of a run of `config`: READ_BATCH_SIZE where the
    fused reader reads it (`uses_fused_rnn`), else the training's batch size.

    Args:
        config: the configuration.
        load_tensorflow: as in `uses_fused_rnn`.
    """
    if uses_fused_rnn(config, load_tensorflow=load_tensorflow):
        return READ_BATCH_SIZE
    return config.training.batch_size
