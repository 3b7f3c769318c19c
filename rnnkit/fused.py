"""A faster SimpleRNN for CPUs: the same layers, weights and results as Keras' SimpleRNN.

Keras runs a SimpleRNN as a TensorFlow while loop of small operations: every time step of
every direction, forward and backward, pays for the input projection, the mask's selects and
the loop's bookkeeping, and a bidirectional layer then reverses, masks and concatenates its
outputs in passes over the whole sequence. The fused layers compute the same function another
way:

- the input projection of all time steps and both directions is one matmul
  (`inputs @ [kernel_forward, kernel_backward] + bias`), and so, in the backward pass, are the
  kernels' gradients and the inputs';
- only the recurrence (`h = tanh(projected[t] + h @ recurrent_kernel)`, a masked step keeping
  `h`) and its back-propagation run step by step, in loops compiled by numba that write the
  layer's outputs (and gradients) directly; the two directions run at once, one per core;
- the arrays the loops fill are handed to TensorFlow without a copy, and their memory is
  reused from batch to batch (`_Buffers`): fresh memory costs page faults at first touch.
  `release_buffers()` gives it back; `rnnkit.train` calls it when it ends.

Where nothing needs a gradient (a run's test-set pass, Predictions, the unit search of Inside
the RNN), `FusedReader` reads a model of `build_model`'s layers without TensorFlow: its weights
in NumPy, time-major from the embedding on, each direction projecting its own inputs a few
steps ahead of its loop, no states kept for a backward pass.

`FusedBidirectional` subclasses `keras.layers.Bidirectional` and `FusedSimpleRNN` subclasses
`keras.layers.SimpleRNN`: the weights, their order and names, masks (`zero_output_for_mask`)
and checkpoints are Keras'. They take the fused path only where it computes what Keras does
(tanh, a bias, no dropout inside the RNN, no initial state, not stateful, float32, outputs
concatenated, no GPU); elsewhere they are Keras' layers. `tests/test_fused.py` checks outputs
and gradients against Keras', masked and unmasked, padded before and after, and the reader's
probabilities and states against Keras' layers.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from numba import njit

from rnnkit.devices import cpu_only

# error_model="numpy": no Python division check, so the loops vectorize. nogil: the two
# directions run in two threads at once.
_COMPILE = {"nogil": True, "fastmath": True, "error_model": "numpy", "cache": True}

# Eigen's float32 tanh (TensorFlow's own): a rational function on [-7.9, 7.9], exact to a few
# units in the last place, and unlike libm's tanhf it vectorizes.
_CLAMP = np.float32(7.90531110763549805)
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = (
    np.float32(-2.76076847742355e-16),
    np.float32(2.00018790482477e-13),
    np.float32(-8.60467152213735e-11),
    np.float32(5.12229709037114e-08),
    np.float32(1.48572235717979e-05),
    np.float32(6.37261928875436e-04),
    np.float32(4.89352455891786e-03),
)
_Q0, _Q1, _Q2, _Q3 = (
    np.float32(1.19825839466702e-06),
    np.float32(1.18534705686654e-04),
    np.float32(2.26843463243900e-03),
    np.float32(4.89352518554385e-03),
)


@njit(inline="always", **_COMPILE)
def _tanh(x):
    x = x if x < _CLAMP else _CLAMP
    x = x if x > -_CLAMP else -_CLAMP
    x2 = x * x
    p = ((((((_P0 * x2 + _P1) * x2 + _P2) * x2 + _P3) * x2 + _P4) * x2 + _P5) * x2 + _P6) * x
    return p / (((_Q0 * x2 + _Q1) * x2 + _Q2) * x2 + _Q3)


@njit(inline="always", **_COMPILE)
def _keep_and_output(
    active,
    zero_masked,
    current_flat,
    previous_flat,
    here,
    row_units,
    sequences,
    outputs_flat,
    there,
):
    """The rest of a row's step after the tanh of an active one: a masked step keeps the
    previous state; where `sequences`, the output (zero at a masked step where `zero_masked`)
    written at `there`."""
    if not active:
        for unit in range(row_units):
            current_flat[here + unit] = previous_flat[here + unit]
    if sequences:
        keep = active or not zero_masked
        for unit in range(row_units):
            outputs_flat[there + unit] = current_flat[here + unit] if keep else np.float32(0)


# The loops index flat views of their arrays with unsigned integers: numba checks a signed
# index for a negative value (and wraps it), which keeps LLVM from vectorizing the inner loops,
# and a view per row (`array[row, t, offset:offset + units]`) costs more than the row's work.


@njit(**_COMPILE)
def _forward_direction(
    projected, offset, recurrent_kernel, mask, go_backwards, zero_masked, states, outputs, last
):
    """One direction's recurrence from a zero state.

    Args:
        projected: (batch, time, directions * units), `inputs @ kernel + bias`; this direction
            reads columns offset : offset + units.
        offset: this direction's first column in `projected`, `outputs` and `last`.
        recurrent_kernel: (units, units).
        mask: (batch, time) bool, or (0, 0) for none; a masked step keeps the state.
        go_backwards: run from the last time step to the first.
        zero_masked: the output at a masked step is zero (else the kept state).
        states: (time, batch, units), filled: the state after each time step, time order.
        outputs: (batch, time, directions * units) to fill in time order, or (0, 0, 0).
        last: (batch, directions * units) to fill with the state after the last step run.
    """
    time, batch, units = states.shape
    width = projected.shape[2]
    masked = mask.shape[0] > 0
    sequences = outputs.shape[0] > 0
    projected_flat, outputs_flat, last_flat = (
        projected.reshape(-1),
        outputs.reshape(-1),
        last.reshape(-1),
    )
    mixed = np.empty((batch, units), np.float32)
    mixed_flat = mixed.reshape(-1)
    zero_state = np.zeros((batch, units), np.float32)
    row_units = np.uint64(units)
    for step in range(time):
        t = time - 1 - step if go_backwards else step
        if step == 0:
            previous = zero_state
        elif go_backwards:
            previous = states[t + 1]
        else:
            previous = states[t - 1]
        np.dot(previous, recurrent_kernel, mixed)  # (batch, units)
        current_flat, previous_flat = states[t].reshape(-1), previous.reshape(-1)
        for row in range(batch):
            here = np.uint64(row * units)  # the row in states, previous and mixed
            there = np.uint64((row * time + t) * width + offset)  # in projected and outputs
            active = not masked or mask[row, t]
            if active:
                for unit in range(row_units):
                    current_flat[here + unit] = _tanh(
                        mixed_flat[here + unit] + projected_flat[there + unit]
                    )
            _keep_and_output(
                active,
                zero_masked,
                current_flat,
                previous_flat,
                here,
                row_units,
                sequences,
                outputs_flat,
                there,
            )
    final_flat = (states[0] if go_backwards else states[time - 1]).reshape(-1)
    for row in range(batch):
        here, there = np.uint64(row * units), np.uint64(row * width + offset)
        for unit in range(row_units):
            last_flat[there + unit] = final_flat[here + unit]


@njit(**_COMPILE)
def _backward_direction(
    states,
    output_gradients,
    last_gradients,
    offset,
    recurrent_kernel,
    mask,
    go_backwards,
    zero_masked,
    projected_gradients,
    recurrent_gradient,
):
    """Back-propagation through time of `_forward_direction`.

    Args:
        states: (time, batch, units), as `_forward_direction` filled them.
        output_gradients: (batch, time, directions * units), the loss's gradient with respect
            to the outputs, or (0, 0, 0) when only the last state is an output.
        last_gradients: (batch, directions * units), with respect to the last state.
        offset, recurrent_kernel, mask, go_backwards, zero_masked: as in the forward pass.
        projected_gradients: (batch, time, directions * units); this direction's columns are
            filled with the gradient with respect to `projected` (zero at masked steps).
        recurrent_gradient: (units, units), filled with the recurrent kernel's gradient.
    """
    time, batch, units = states.shape
    width = projected_gradients.shape[2]
    masked = mask.shape[0] > 0
    sequences = output_gradients.shape[0] > 0
    output_flat, last_flat, target_flat = (
        output_gradients.reshape(-1),
        last_gradients.reshape(-1),
        projected_gradients.reshape(-1),
    )
    row_units = np.uint64(units)
    transposed_kernel = np.ascontiguousarray(recurrent_kernel.T)
    carried = np.empty((batch, units), np.float32)  # reaching the state from later steps
    carried_flat = carried.reshape(-1)
    for row in range(batch):
        here = np.uint64(row * units)
        there = np.uint64(row * width + offset)
        for unit in range(row_units):
            carried_flat[here + unit] = last_flat[there + unit]
    before = np.empty((batch, units), np.float32)  # d loss / d tanh argument, this step
    before_flat = before.reshape(-1)
    propagated = np.empty((batch, units), np.float32)
    propagated_flat = propagated.reshape(-1)
    step_gradient = np.empty((units, units), np.float32)
    recurrent_gradient[:, :] = 0
    for step in range(time - 1, -1, -1):
        t = time - 1 - step if go_backwards else step
        state_flat = states[t].reshape(-1)
        kept_rows = 0
        for row in range(batch):
            active = not masked or mask[row, t]
            kept_rows += 0 if active else 1
            here = np.uint64(row * units)  # the row in states, carried and before
            there = np.uint64((row * time + t) * width + offset)  # in the gradients
            if sequences and (active or not zero_masked):
                for unit in range(row_units):  # now the state's whole gradient
                    carried_flat[here + unit] += output_flat[there + unit]
            scale = np.float32(1) if active else np.float32(0)
            for unit in range(row_units):
                state = state_flat[here + unit]
                value = scale * carried_flat[here + unit] * (np.float32(1) - state * state)
                before_flat[here + unit] = value
                target_flat[there + unit] = value
        if step > 0:  # the state before the first step run is zero: it adds nothing
            previous = states[t + 1] if go_backwards else states[t - 1]
            np.dot(previous.T, before, step_gradient)
            recurrent_gradient += step_gradient
        np.dot(before, transposed_kernel, propagated)  # to the previous state
        if kept_rows == 0:
            carried, propagated = propagated, carried
            carried_flat, propagated_flat = propagated_flat, carried_flat
        else:  # a kept (masked) state passes its whole gradient back unchanged
            for row in range(batch):
                if not masked or mask[row, t]:
                    here = np.uint64(row * units)
                    for unit in range(row_units):
                        carried_flat[here + unit] = propagated_flat[here + unit]


# The second direction's thread; the first runs in TensorFlow's calling thread.
_DIRECTIONS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-fused")


def _one_blas_thread_for_numba() -> None:
    """Keep the BLAS that numba calls (SciPy's OpenBLAS) to one thread per call: the two
    directions already take the two cores, and OpenBLAS' own threads, waiting busily for
    work, would take the cores from them. NumPy's BLAS is left as it is."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba's np.dot uses)
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    for library in controller.info():
        if "scipy.libs" in library["filepath"] or "scipy/" in library["filepath"]:
            controller.select(filepath=library["filepath"]).limit(limits=1)


_one_blas_thread_for_numba()


def _in_parallel(calls: list) -> None:
    """Run the calls (function, arguments) at once: the first here, the others in threads."""
    pending = [_DIRECTIONS.submit(function, *arguments) for function, arguments in calls[1:]]
    function, arguments = calls[0]
    function(*arguments)
    for future in pending:
        future.result()


_NO_SEQUENCE = np.zeros((0, 0, 0), np.float32)


class _Buffers:
    """Float32 buffers for the loops' outputs and gradients, reused from batch to batch.

    A fresh 15 MB array is memory the kernel has never mapped: touching it first costs page
    faults, thousands per batch of the seed model. (glibc gives such arrays back to the kernel
    when they are freed, from TensorFlow's threads whatever `M_MMAP_THRESHOLD` says.) So the
    arrays handed to TensorFlow come from buffers kept here, and a buffer is handed out again
    only when nothing else holds it: TensorFlow's tensor of an array that `tf.numpy_function`
    returned holds the array, and the array its buffer, until TensorFlow frees the tensor.
    """

    # At most this many buffers are kept, and at most this many bytes in buffers nothing holds
    # (the seed model's longest batches hold 5 of 33 MB at once); beyond, arrays are allocated
    # as usual. `release` lets go of them all.
    MAX_BUFFERS = 16
    MAX_IDLE_BYTES = 256 * 2**20

    def __init__(self) -> None:
        self._buffers: list[np.ndarray] = []
        self._lock = threading.Lock()
        # What `_references` counts for a buffer nothing else holds (CPython versions differ).
        self._unheld = self._references([np.empty(1, np.float32)], 0)

    @staticmethod
    def _references(buffers: list[np.ndarray], index: int) -> int:
        return sys.getrefcount(buffers[index])

    def _idle(self) -> list[int]:
        """Indices of the buffers nothing else holds, smallest first."""
        idle = [
            index
            for index in range(len(self._buffers))
            if self._references(self._buffers, index) <= self._unheld
        ]
        return sorted(idle, key=lambda index: len(self._buffers[index]))

    def empty(self, shape) -> np.ndarray:
        """np.empty, float32, starting on a 64-byte boundary. In a graph (as Keras trains),
        TensorFlow takes such an array returned by `tf.numpy_function` as the tensor itself,
        and copies any other: 15 MB per layer and batch for the seed model."""
        size = int(np.prod(shape))
        with self._lock:
            idle = self._idle()
            fitting = [index for index in idle if len(self._buffers[index]) >= size + 16]
            if fitting:  # the smallest that fits
                buffer = self._buffers[fitting[0]]
            else:  # a new one, in place of the largest idle one (too small) if any
                buffer = np.empty(size + 16, np.float32)
                if idle:
                    del self._buffers[idle[-1]]
                if len(self._buffers) < self.MAX_BUFFERS:
                    self._buffers.append(buffer)
            self._trim()
        start = (-buffer.ctypes.data % 64) // 4
        return buffer[start : start + size].reshape(shape)

    def _trim(self) -> None:
        """Let go of the largest idle buffers while they hold more than MAX_IDLE_BYTES."""
        idle = self._idle()
        idle_bytes = sum(self._buffers[index].nbytes for index in idle)
        dropped = set()
        for index in reversed(idle):
            if idle_bytes <= self.MAX_IDLE_BYTES:
                break
            idle_bytes -= self._buffers[index].nbytes
            dropped.add(index)
        self._buffers = [b for index, b in enumerate(self._buffers) if index not in dropped]

    def release(self) -> None:
        """Let go of every buffer (training is over): their memory goes back to the system
        once nothing else holds them."""
        with self._lock:
            self._buffers = []


_BUFFERS = _Buffers()
_empty = _BUFFERS.empty
release_buffers = _BUFFERS.release


def _recurrence(
    inputs, kernel, bias, recurrent_kernels, mask, go_backwards, sequences, zero_masked
):
    """The directions' recurrences as a TensorFlow operation with its gradient.

    Args:
        inputs: (batch, time, features) float32 tensor.
        kernel: (features, directions * units), the directions' kernels side by side: all
            steps' input projections are one matmul, `inputs @ kernel + bias` (one fused
            operation), and so are the kernel's and the inputs' gradients.
        bias: (directions * units,) float32 tensor.
        recurrent_kernels: (directions, units, units) float32 tensor.
        mask: (batch, time) tensor, or None.
        go_backwards: per direction, whether it runs backwards.
        sequences: return every step's outputs (batch, time, directions * units), else the
            last states (batch, directions * units).
        zero_masked: outputs at masked steps are zero.
    """
    directions = len(go_backwards)
    mask_argument = tf.zeros((0, 0), tf.bool) if mask is None else tf.cast(mask, tf.bool)
    width = kernel.shape[1]
    static_shape = (*inputs.shape[:2], width)
    shape = tf.concat([tf.shape(inputs)[:2], [width]], axis=0)

    def forward(projected, recurrent_kernels, mask):
        batch, time, width = projected.shape
        units = width // directions
        states = _empty((directions, time, batch, units))
        outputs = _empty((batch, time, width)) if sequences else _NO_SEQUENCE
        last = _empty((batch, width))
        _in_parallel(
            [
                (
                    _forward_direction,
                    (
                        projected,
                        direction * units,
                        recurrent_kernels[direction],
                        mask,
                        go_backwards[direction],
                        zero_masked,
                        states[direction],
                        outputs,
                        last,
                    ),
                )
                for direction in range(directions)
            ]
        )
        return (outputs if sequences else last), states

    def backward(states, output_gradients, recurrent_kernels, mask):
        directions, time, batch, units = states.shape
        if sequences:
            last_gradients = np.zeros((batch, directions * units), np.float32)
        else:
            last_gradients, output_gradients = output_gradients, _NO_SEQUENCE
        projected_gradients = _empty((batch * time, directions * units))
        recurrent_gradients = np.zeros((directions, units, units), np.float32)
        _in_parallel(
            [
                (
                    _backward_direction,
                    (
                        states[direction],
                        output_gradients,
                        last_gradients,
                        direction * units,
                        recurrent_kernels[direction],
                        mask,
                        go_backwards[direction],
                        zero_masked,
                        projected_gradients.reshape(batch, time, directions * units),
                        recurrent_gradients[direction],
                    ),
                )
                for direction in range(directions)
            ]
        )
        return projected_gradients, recurrent_gradients

    @tf.custom_gradient
    def run(inputs, kernel, bias, recurrent_kernels):
        # All steps' input projections in one matmul, in Keras' order (x @ W + b, then h @ U);
        # a bias_add TensorFlow fuses into the matmul, where `+` costs a pass of its own.
        projected = tf.reshape(tf.nn.bias_add(tf.matmul(inputs, kernel), bias), shape)
        outputs, states = tf.numpy_function(
            forward,
            [projected, recurrent_kernels, mask_argument],
            [tf.float32, tf.float32],
            stateful=False,
            name="fused_rnn_forward",
        )
        outputs = tf.ensure_shape(outputs, static_shape if sequences else (static_shape[0], width))

        def gradient(output_gradients):
            projected_gradients, recurrent_gradients = tf.numpy_function(
                backward,
                [states, output_gradients, recurrent_kernels, mask_argument],
                [tf.float32, tf.float32],
                stateful=False,
                name="fused_rnn_backward",
            )
            projected_gradients = tf.ensure_shape(projected_gradients, (None, width))
            recurrent_gradients = tf.ensure_shape(recurrent_gradients, recurrent_kernels.shape)
            # What TensorFlow's own gradients of `matmul + bias` are, ordered: the inputs'
            # gradient comes last, because the layer below starts its loop on it, and an
            # operation still running beside the loop takes the cores its threads need.
            bias_gradient = tf.reduce_sum(projected_gradients, axis=0)
            kernel_gradient = tf.matmul(inputs, projected_gradients, transpose_a=True)
            with tf.control_dependencies([bias_gradient, kernel_gradient]):
                inputs_gradient = tf.matmul(projected_gradients, kernel, transpose_b=True)
            return inputs_gradient, kernel_gradient, bias_gradient, recurrent_gradients

        return outputs, gradient

    return run(tf.reshape(inputs, (-1, inputs.shape[-1])), kernel, bias, recurrent_kernels)


# --- reading: forward only, time-major ----------------------------------------------------------


# The steps of input projection a reading loop computes at a time: this many floats, so that
# they are still in the core's cache (1 MB here) when the loop reads them.
_CHUNK_FLOATS = 64 * 1024


@njit(**_COMPILE)
def _read_direction(
    inputs, kernel, bias, recurrent_kernel, mask, go_backwards, zero_masked, offset, outputs, last
):
    """`_forward_direction` for reading only, time-major, its input projection included.

    No states are kept for a backward pass (the state lives in two (batch, units) arrays); a
    step's rows are side by side in memory (batch-major, they are a whole review apart); and
    the direction projects its own inputs (`inputs @ kernel + bias`), a few steps at a time
    just before it reads them, on its own core. (One matmul for both directions, through
    NumPy's multi-threaded BLAS, left that BLAS' threads spinning on the cores the loops
    needed.)

    Args:
        inputs: (time, batch, features) float32, C-contiguous.
        kernel: (features, units) this direction's input kernel, C-contiguous; bias: (units,).
        recurrent_kernel, go_backwards, zero_masked: as in `_forward_direction`.
        mask: (time, batch) bool, or (0, 0) for none.
        offset: this direction's first column in `outputs` and `last`.
        outputs: (time, batch, directions * units) to fill, or (0, 0, 0).
        last: (batch, directions * units) to fill with the state after the last step run.
    """
    time, batch, features = inputs.shape
    units = recurrent_kernel.shape[0]
    masked = mask.shape[0] > 0
    sequences = outputs.shape[0] > 0
    width = outputs.shape[2]
    inputs_flat, outputs_flat = inputs.reshape(-1), outputs.reshape(-1)
    chunk = max(1, _CHUNK_FLOATS // (batch * units))  # steps projected at a time
    projected = np.empty(chunk * batch * units, np.float32)
    previous = np.zeros((batch, units), np.float32)
    current = np.empty((batch, units), np.float32)
    mixed = np.zeros((batch, units), np.float32)  # h @ recurrent_kernel; zero before step 1
    row_units = np.uint64(units)
    for done in range(0, time, chunk):
        steps = min(chunk, time - done)
        first = time - done - steps if go_backwards else done  # the chunk's first step
        rows = steps * batch
        block = inputs_flat[first * batch * features : (first + steps) * batch * features]
        target = projected[: rows * units].reshape((rows, units))
        np.dot(block.reshape((rows, features)), kernel, target)
        for step in range(steps):
            t = first + steps - 1 - step if go_backwards else first + step
            if done + step > 0:
                np.dot(previous, recurrent_kernel, mixed)
            current_flat, previous_flat, mixed_flat = (
                current.reshape(-1),
                previous.reshape(-1),
                mixed.reshape(-1),
            )
            for row in range(batch):
                here = np.uint64(row * units)  # the row in current, previous and mixed
                source = np.uint64(((t - first) * batch + row) * units)  # in projected
                there = np.uint64((t * batch + row) * width + offset)  # in outputs
                active = not masked or mask[t, row]
                if active:
                    for unit in range(row_units):
                        current_flat[here + unit] = _tanh(
                            mixed_flat[here + unit] + (projected[source + unit] + bias[unit])
                        )
                _keep_and_output(
                    active,
                    zero_masked,
                    current_flat,
                    previous_flat,
                    here,
                    row_units,
                    sequences,
                    outputs_flat,
                    there,
                )
            previous, current = current, previous
    for row in range(batch):
        for unit in range(units):
            last[row, offset + unit] = previous[row, unit]


@njit(**_COMPILE)
def _word_extremes(outputs, words, first, end, highest, highest_at, lowest, lowest_at):
    """For rows first : end, each column's highest and lowest value at a word and the first
    step where it is reached (-inf / +inf and step 0 for a row without words).

    Args:
        outputs: (time, batch, width) float32, time-major.
        words: (time, batch) bool.
        first, end: the rows to reduce.
        highest, lowest: (batch, width) float32 to fill; highest_at, lowest_at: int32.
    """
    time, _, width = outputs.shape
    for row in range(first, end):
        for column in range(width):
            highest[row, column] = -np.inf
            lowest[row, column] = np.inf
            highest_at[row, column] = 0
            lowest_at[row, column] = 0
    for t in range(time):
        for row in range(first, end):
            if not words[t, row]:
                continue
            for column in range(width):
                value = outputs[t, row, column]
                if value > highest[row, column]:
                    highest[row, column] = value
                    highest_at[row, column] = t
                if value < lowest[row, column]:
                    lowest[row, column] = value
                    lowest_at[row, column] = t


def word_extremes(outputs: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each row's and column's highest and lowest value at a word, and the first step of each.

    Args:
        outputs: (time, batch, width) float32, time-major (`FusedReader.layer_outputs`).
        words: (time, batch) bool: the steps that are words.

    Returns:
        (highest, highest_at, lowest, lowest_at), each (batch, width): float32 values (-inf
        and +inf for a row without words) and int32 steps (0 for a row without words).
    """
    _, batch, width = outputs.shape
    highest, lowest = np.empty((batch, width), np.float32), np.empty((batch, width), np.float32)
    highest_at, lowest_at = np.empty((batch, width), np.int32), np.empty((batch, width), np.int32)
    arguments = (outputs, np.ascontiguousarray(words))
    results = (highest, highest_at, lowest, lowest_at)
    half = batch // 2
    _in_parallel(
        [
            (_word_extremes, (*arguments, 0, half, *results)),
            (_word_extremes, (*arguments, half, batch, *results)),
        ]
    )
    return results


def _read_layer(inputs, layer: _ReadLayer, mask, sequences: bool, zero_masked: bool, buffers):
    """A layer's directions over time-major `inputs` (time, batch, features): (time, batch,
    width) outputs (or None) and the (batch, width) states where each direction finishes."""
    time, batch, _ = inputs.shape
    width = layer.bias.shape[0]
    units = width // len(layer.go_backwards)
    outputs = buffers.empty((time, batch, width)) if sequences else _NO_SEQUENCE
    last = np.empty((batch, width), np.float32)
    mask_argument = _NO_MASK if mask is None else mask
    _in_parallel(
        [
            (
                _read_direction,
                (
                    inputs,
                    layer.kernels[direction],
                    layer.bias[direction * units : (direction + 1) * units],
                    layer.recurrent_kernels[direction],
                    mask_argument,
                    backwards,
                    zero_masked,
                    direction * units,
                    outputs,
                    last,
                ),
            )
            for direction, backwards in enumerate(layer.go_backwards)
        ]
    )
    return (outputs if sequences else None), last


@dataclass(frozen=True)
class _ReadLayer:
    """An RNN layer's weights as the reading loops take them (see `_recurrence`'s)."""

    kernels: np.ndarray  # (directions, features, units)
    bias: np.ndarray  # (directions * units,)
    recurrent_kernels: np.ndarray  # (directions, units, units)
    go_backwards: tuple[bool, ...]  # per direction
    sequences: bool  # the layer returns every step's outputs (else its last states)
    zero_masked: bool  # its outputs at masked steps are zero


@njit(**_COMPILE)
def _dense(inputs, kernel, bias):
    """`inputs @ kernel + bias` through the one-thread BLAS the loops call. NumPy's BLAS
    would run it on two threads, which then wait busily for more work: beside the next
    batch's loops they took 3.6 of the 16 CPU seconds of a `seed` test pass, which took 8.1 s
    instead of 5.5 s."""
    return np.dot(inputs, kernel) + bias


_NO_MASK = np.zeros((0, 0), np.bool_)
_ACTIVATIONS = {"linear": lambda x: x, "relu": lambda x: np.maximum(x, np.float32(0))}


class FusedReader:
    """A model of `build_model`'s layers read forward only, in NumPy and the fused loops:
    the same function as the model's, faster where nothing needs its gradient (a test pass,
    predictions, a search over the test reviews).

    A layer in TensorFlow lays a batch out review by review, keeps every step's state for a
    backward pass, and hands its outputs on through TensorFlow. Here a batch is time-major from
    the embedding on (each step's rows side by side in memory: a step of the loop reads and
    writes one block instead of a row per review), a direction keeps only its current state,
    and nothing goes through TensorFlow. `tests/test_fused.py` checks the probabilities and
    states against Keras' layers.

    Made by `FusedReader.of(model)`, with the model's weights of that moment. Its arrays are
    reused from batch to batch; `release()` gives them back after a pass.
    """

    def __init__(self, embedding: np.ndarray, masked: bool, rnns: list, head: list) -> None:
        self.embedding = embedding  # (num_words, features) float32
        self.masked = masked  # id 0 is masked padding
        self.rnns: list[_ReadLayer] = rnns
        self.head = head  # (kernel, bias, activation) per Dense layer; the last is the logit's
        self._buffers = _Buffers()

    @classmethod
    def of(cls, model: keras.Model) -> FusedReader | None:
        """A reader of `model`'s current weights; None where the fused loops do not compute it
        as Keras does (an LSTM or GRU, the mean of word vectors, a GPU, `RNNKIT_FUSED_RNN`
        off, layers `build_model` does not make): read it with Keras then."""
        from rnnkit.settings import fused_rnn_enabled

        if not (fused_rnn_enabled() and cpu_only()):
            return None
        try:
            embedding = model.get_layer("embedding")
        except ValueError:
            return None
        if not isinstance(embedding, layers.Embedding) or embedding.compute_dtype != "float32":
            return None
        rnns, head = [], []
        for layer in model.layers[model.layers.index(embedding) + 1 :]:
            if isinstance(layer, layers.Dropout):  # nothing at inference
                continue
            if isinstance(layer, layers.Dense) and rnns:
                name = getattr(layer.activation, "__name__", None)
                head.append((*_float32(layer.kernel, layer.bias), name))
                continue
            rnn = None if head else _read_layer_of(layer)
            if rnn is None:
                return None
            rnns.append(rnn)
        if not rnns or rnns[-1].sequences or any(not rnn.sequences for rnn in rnns[:-1]):
            return None
        if not head or head[-1][0].shape[1] != 1 or head[-1][2] != "sigmoid":
            return None
        if any(name not in _ACTIVATIONS for _, _, name in head[:-1]):
            return None
        (table,) = _float32(embedding.embeddings)
        return cls(table, bool(embedding.mask_zero), rnns, head)

    def _read(self, tokens: np.ndarray, every_sequence: bool):
        """(outputs per RNN layer, time-major, or None; the logits (batch,))."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] == 0:
            raise ValueError(f"tokens must be (batch, time) with time > 0, not {tokens.shape}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= len(self.embedding)):
            raise ValueError(f"token ids must lie in [0, {len(self.embedding)})")
        time_major = np.ascontiguousarray(tokens.T)  # (time, batch)
        hidden = self.embedding[time_major]  # (time, batch, features)
        mask = (time_major != 0) if self.masked else None
        outputs = []
        for rnn in self.rnns:
            sequences = every_sequence or rnn.sequences
            zero_masked = rnn.zero_masked and not every_sequence
            output, last = _read_layer(hidden, rnn, mask, sequences, zero_masked, self._buffers)
            outputs.append(output)
            hidden = output
        for kernel, bias, name in self.head[:-1]:
            last = _ACTIVATIONS[name](_dense(last, kernel, bias))
        kernel, bias, _ = self.head[-1]
        return outputs, _dense(last, kernel, bias)[:, 0]

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """(batch,) float32 logits of (batch, time) token ids, padded as in training: the
        probability is their sigmoid."""
        return self._read(tokens, every_sequence=False)[1]

    def probabilities(self, tokens: np.ndarray) -> np.ndarray:
        """(batch,) float32 probabilities of (batch, time) token ids, as the model gives them."""
        logits = self.logits(tokens)
        return (np.float32(1) / (np.float32(1) + np.exp(-logits))).astype(np.float32)

    def layer_outputs(self, tokens: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Every RNN layer's states at every step, and the logits.

        Args:
            tokens: (batch, time) token ids, padded as in training.

        Returns:
            (per RNN layer (time, batch, directions * units) float32, time-major, the
            directions side by side, a masked step carrying the state; the (batch,) logits).
            The arrays are reused by the next call: copy what must outlive it.
        """
        return self._read(tokens, every_sequence=True)

    def release(self) -> None:
        """Give back the arrays kept for the next batch."""
        self._buffers.release()


def _float32(*variables) -> tuple[np.ndarray, ...]:
    return tuple(np.ascontiguousarray(keras.ops.convert_to_numpy(v), np.float32) for v in variables)


def _read_layer_of(layer) -> _ReadLayer | None:
    """`layer`'s weights for the reading loops, or None where they do not compute it."""
    bidirectional = isinstance(layer, layers.Bidirectional)
    if bidirectional and layer.merge_mode != "concat":
        return None
    parts = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
    if not all(_fusable_layer(part) for part in parts):
        return None
    if not bidirectional and layer.go_backwards and layer.return_sequences:
        return None  # Keras gives its outputs in the order it ran
    cells = [part.cell for part in parts]
    kernels = _float32(*(cell.kernel for cell in cells))
    biases = _float32(*(cell.bias for cell in cells))
    recurrent = _float32(*(cell.recurrent_kernel for cell in cells))
    sequences = bool(layer.return_sequences)
    return _ReadLayer(
        kernels=np.ascontiguousarray(np.stack(kernels)),
        bias=np.concatenate(biases),
        recurrent_kernels=np.ascontiguousarray(np.stack(recurrent)),
        go_backwards=tuple(bool(part.go_backwards) for part in parts),
        sequences=sequences,
        # Bidirectional zeroes masked outputs of sequences (`force_zero_output_for_mask`).
        zero_masked=sequences if bidirectional else bool(layer.zero_output_for_mask),
    )


def _fusable_layer(layer) -> bool:
    """Whether the fused loops compute `layer` (its weights as they are) as Keras does."""
    cell = getattr(layer, "cell", None)
    return (
        type(layer) in (layers.SimpleRNN, FusedSimpleRNN)
        and not layer.stateful
        and not layer.return_state
        and cell.use_bias
        and cell.activation is keras.activations.tanh
        and cell.dropout == 0
        and cell.recurrent_dropout == 0
        and layer.compute_dtype == "float32"
    )


def _fusable_rnn(layer, inputs, initial_state) -> bool:
    return (
        _fusable_layer(layer)
        and initial_state is None
        and inputs.dtype == "float32"
        and cpu_only()  # the fused loop is a CPU kernel
    )


def _fused_call(rnns: list, inputs, mask, sequences: bool, zero_masked: bool):
    """The outputs of SimpleRNN layers `rnns` over `inputs`, concatenated, computed fused."""
    cells = [rnn.cell for rnn in rnns]
    kernel = tf.concat([tf.convert_to_tensor(cell.kernel) for cell in cells], axis=1)
    bias = tf.concat([tf.convert_to_tensor(cell.bias) for cell in cells], axis=0)
    recurrent_kernels = tf.stack([tf.convert_to_tensor(cell.recurrent_kernel) for cell in cells])
    go_backwards = tuple(bool(rnn.go_backwards) for rnn in rnns)
    return _recurrence(
        inputs, kernel, bias, recurrent_kernels, mask, go_backwards, sequences, zero_masked
    )


def fused_states(rnns: list, inputs, mask=None) -> list | None:
    """Every step's state of the SimpleRNN directions `rnns` (a bidirectional layer's two, say)
    over the same inputs, in one fused call with the directions in parallel.

    Args:
        rnns: SimpleRNN layers (one per direction), built, of equal units.
        inputs: (batch, time, features) float32 tensor.
        mask: (batch, time) bool tensor, or None.

    Returns:
        Per layer, (batch, time, units) in input positions (a backward direction's too), a
        masked step carrying the state; None where the fused loop would not compute one of
        them as Keras does (then call the layers themselves).
    """
    if not all(_fusable_rnn(rnn, inputs, None) for rnn in rnns):
        return None
    outputs = _fused_call(rnns, inputs, mask, sequences=True, zero_masked=False)
    return tf.split(outputs, [rnn.units for rnn in rnns], axis=-1)


@keras.saving.register_keras_serializable(package="rnnkit")
class FusedSimpleRNN(layers.SimpleRNN):
    """`keras.layers.SimpleRNN`, computed by the fused loop on CPUs (see the module doc)."""

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if not _fusable_rnn(self, sequences, initial_state):
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        outputs = _fused_call(
            [self], sequences, mask, self.return_sequences, self.zero_output_for_mask
        )
        # Keras gives a backwards layer's outputs in the order it ran.
        if self.return_sequences and self.go_backwards:
            return tf.reverse(outputs, axis=[1])
        return outputs


@keras.saving.register_keras_serializable(package="rnnkit")
class FusedBidirectional(layers.Bidirectional):
    """`keras.layers.Bidirectional` over a SimpleRNN, both directions in one fused call."""

    def call(self, sequences, initial_state=None, mask=None, training=None):
        rnns = [self.forward_layer, self.backward_layer]
        if self.merge_mode != "concat" or not all(
            _fusable_rnn(rnn, sequences, initial_state) for rnn in rnns
        ):
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        # Bidirectional zeroes masked outputs of sequences (see its `force_zero_output_for_mask`).
        return _fused_call(rnns, sequences, mask, self.return_sequences, self.return_sequences)
