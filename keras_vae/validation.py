"""Checks of user input that raise clear errors before anything is trained.

Every message says what was received, what was expected and how to fix it.
"""

import math
import numbers

import numpy as np
import tensorflow as tf


def positive_int(name, value, minimum=1):
    """Return `value` as an int, or raise if it is not an int ≥ `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"Expected an integer for {name}. Received: {name}={value!r}"
        )
    if value < minimum:
        raise ValueError(
            f"Expected an integer >= {minimum} for {name}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def positive_int_tuple(name, value):
    """Return `value` as a non-empty tuple of positive ints, or raise."""
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if not items or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
        for v in items
    ):
        raise ValueError(
            f"Expected a non-empty tuple of positive integers for {name}. "
            f"Received: {name}={value!r}"
        )
    return tuple(int(v) for v in items)


def non_negative(name, value):
    """Return `value` as a float, or raise if it is not a finite number ≥ 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"Expected a finite number >= 0 for {name}. Received: {name}={value!r}"
        )
    return float(value)


def divisor(name, value, of_name, of_value):
    """Return `value` as an int, or raise if it is not a positive int that
    divides `of_value`."""
    value = positive_int(name, value)
    if of_value % value:
        raise ValueError(
            f"{name} must divide {of_name}: the {of_name} samples are split into "
            f"{name} equal groups. Received: {name}={value} with {of_name}={of_value}. "
            f"Use a divisor of {of_value}, for example {name}=1.")
    return value


def fraction(name, value):
    """Return `value` as a float, or raise if it is not a number in [0, 1]."""
    value = non_negative(name, value)
    if value > 1:
        raise ValueError(f"Expected a number in [0, 1] for {name}. Received: {name}={value!r}")
    return value


def check_shape(shape, expected, name="x"):
    """Raise unless `shape` is `(batch,) + expected` (unknown dims pass)."""
    shape = tuple(shape)
    matches = len(shape) == len(expected) + 1 and all(
        got is None or got == want for got, want in zip(shape[1:], expected, strict=True)
    )
    if not matches:
        raise ValueError(
            f"Expected {name} of shape (batch, {', '.join(map(str, expected))}): "
            f"a batch of examples of the model's shape {tuple(expected)}. "
            f"Received: {name}.shape={shape}. Reshape the data, or build the "
            "model with the data's shape."
        )


def checked_data(data, shape, likelihood, name):
    """Check training data before `fit` or `evaluate` sees it.

    Arrays and tensors are checked at once (shape, finiteness, the
    likelihood's range); a `tf.data.Dataset` gets the same checks as
    assertions in its pipeline, outside the compiled training step. Tuples
    such as `validation_data=(x_val,)` have their first element checked.
    Other inputs (generators, `keras.utils.PyDataset`) pass unchanged.
    """
    if data is None:
        return None
    if isinstance(data, tf.data.Dataset):
        return _checked_dataset(data, likelihood, name)
    if isinstance(data, tuple):
        return (checked_data(data[0], shape, likelihood, name),) + data[1:]
    if isinstance(data, dict) and "images" in data:  # a conditional model's inputs
        return {**data, "images": checked_data(data["images"], shape, likelihood, name)}
    if isinstance(data, (np.ndarray, tf.Tensor, list)):
        _check_array(np.asarray(data), shape, likelihood, name)
    return data


def _check_array(array, shape, likelihood, name):
    check_shape(array.shape, shape, name)
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"Expected numeric data for {name}. Received dtype {array.dtype}."
        )
    finite = np.isfinite(array)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name} contains {array.size - np.count_nonzero(finite)} NaN or "
            f"infinite values (the first at index {first}). Training on them "
            "would turn the weights into NaN: remove or replace them first."
        )
    low, high = likelihood.support
    minimum, maximum = float(array.min()), float(array.max())
    if minimum < low or maximum > high:
        received = f"{name} with minimum {minimum:g} and maximum {maximum:g}"
        raise ValueError(likelihood.range_error(received))


def _checked_dataset(dataset, likelihood, name):
    low, high = likelihood.support

    def check(*element):
        x = element[0]["images"] if isinstance(element[0], dict) else element[0]
        x = tf.cast(x, tf.float32)
        checks = [
            tf.debugging.assert_all_finite(
                x,
                f"{name} contains NaN or infinite values. Training on them "
                "would turn the weights into NaN: remove or replace them first.",
            ),
            tf.debugging.Assert(
                tf.logical_and(tf.reduce_min(x) >= low, tf.reduce_max(x) <= high),
                [
                    likelihood.range_error(
                        f"a batch of {name} outside it (minimum and maximum:)"
                    ),
                    tf.reduce_min(x),
                    tf.reduce_max(x),
                ],
            ),
        ]
        with tf.control_dependencies(checks):
            element = tf.nest.map_structure(tf.identity, element)
        return element if len(element) > 1 else element[0]

    return dataset.map(check)
