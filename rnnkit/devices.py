"""Which devices this process computes on, for the choice of the fastest correct layers.

`rnnkit.model` asks before it builds a model, and `rnnkit.fused` before each call of its loops:
the fused loops are CPU kernels, so they step aside where TensorFlow sees a GPU.
"""

from __future__ import annotations


def cpu_only() -> bool:
    """Whether this process computes on CPUs only: TensorFlow sees no GPU."""
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")
