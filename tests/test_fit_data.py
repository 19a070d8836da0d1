"""What `fit` and `evaluate` give Keras: datasets with tf.data's autotuning
off (keras_vae/data/untuned.py says why), and arrays as such datasets,
batched and shuffled as Keras batches arrays."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae

from keras_vae.data import arrays
from keras_vae.data.untuned import untuned
from keras_vae.models import fitting


def _epoch(dataset):
    return [tf.nest.map_structure(lambda t: t.numpy(), batch) for batch in dataset]


@pytest.mark.parametrize("chosen", [None, True, False])
def test_untuned_turns_autotuning_off_unless_the_dataset_chose(chosen):
    dataset = tf.data.Dataset.range(3)
    if chosen is not None:
        options = tf.data.Options()
        options.autotune.enabled = chosen
        dataset = dataset.with_options(options)
    result = untuned(dataset)
    assert result.options().autotune.enabled is (False if chosen is None else chosen)
    assert [int(v) for v in result] == [0, 1, 2]


def test_batches_in_order_are_the_arrays_cut_every_batch_size():
    x = np.arange(70 * 3, dtype="float32").reshape(70, 3)
    dataset = arrays.batches(x, 32)
    batches = _epoch(dataset)
    assert [len(b) for b in batches] == [32, 32, 6]
    np.testing.assert_array_equal(np.concatenate(batches), x)
    assert int(dataset.cardinality()) == 3
    options = dataset.options()
    assert options.autotune.enabled is False
    assert options.experimental_distribute.auto_shard_policy == \
        tf.data.experimental.AutoShardPolicy.DATA
    assert [len(b) for b in _epoch(arrays.batches(x))] == [32, 32, 6]  # Keras's 32
    assert [len(b) for b in _epoch(arrays.batches(x[:5], 32))] == [5]


def test_shuffled_batches_are_a_new_permutation_every_epoch_with_pairs_kept():
    count = 50
    inputs = {"images": np.arange(count, dtype="float32")[:, None] * np.ones((1, 4), "float32"),
              "labels": np.arange(count, dtype="int32")}
    keras.utils.set_random_seed(3)
    dataset = arrays.batches(inputs, 16, shuffle=True)
    orders = []
    for _ in range(3):
        batches = _epoch(dataset)
        assert [len(b["labels"]) for b in batches] == [16, 16, 16, 2]
        labels = np.concatenate([b["labels"] for b in batches])
        images = np.concatenate([b["images"] for b in batches])
        np.testing.assert_array_equal(np.sort(labels), np.arange(count))  # each once
        np.testing.assert_array_equal(images, labels[:, None] * np.ones((1, 4)))
        orders.append(labels)
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    keras.utils.set_random_seed(3)  # the same seed gives the same orders
    again = arrays.batches(inputs, 16, shuffle=True)
    np.testing.assert_array_equal(
        np.concatenate([b["labels"] for b in _epoch(again)]), orders[0])


def test_batches_refuse_arrays_of_different_lengths_and_a_batch_size_below_one():
    with pytest.raises(ValueError, match=r"same number of examples.*\[4, 5\]"):
        arrays.batches({"images": np.zeros((5, 2)), "labels": np.zeros(4)}, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer. Received: 0"):
        arrays.batches(np.zeros((5, 2)), 0)


def test_fit_on_arrays_trains_the_weights_kerass_own_batching_trains(small_data):
    """In order (shuffle=False), the package's batches and Keras's array
    adapter give the same steps: the same weights after two epochs."""
    weights = []
    for fit in (lambda vae, **kw: vae.fit(small_data, **kw),
                lambda vae, **kw: keras.Model.fit(vae, small_data, **kw)):
        vae = small_vae()
        vae.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = fit(vae, batch_size=24, epochs=2, shuffle=False, verbose=0)
        assert int(vae.optimizer.iterations.numpy()) == 6  # 24 + 24 + 16, twice
        weights.append((vae.get_weights(), history.history["loss"]))
    for ours, theirs in zip(weights[0][0], weights[1][0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights[0][1], weights[1][1], rtol=1e-5)


def test_fit_gives_keras_datasets_without_autotuning(small_data):
    """What reaches Keras's `fit`: arrays and validation arrays as datasets
    (the batch-size arguments used up), a user's dataset untuned."""
    kwargs = {"batch_size": 16, "validation_batch_size": 8}
    validation = fitting._batches((small_data,), kwargs, "validation_batch_size", 8)
    assert kwargs == {"batch_size": 16}
    assert [len(b) for b in _epoch(validation)] == [8] * 8
    assert validation.options().autotune.enabled is False
    dataset = tf.data.Dataset.from_tensor_slices(small_data).batch(16)
    assert fitting._batches(dataset, kwargs, "batch_size", 16).options().autotune.enabled \
        is False
    assert kwargs == {"batch_size": 16}  # a dataset's batches are its own
    pairs = (small_data, small_data)  # (x, y): Keras's, unchanged
    assert fitting._batches(pairs, kwargs, "validation_batch_size", 8) is pairs


def test_fit_leaves_arrays_to_keras_where_keras_options_need_them(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    history = vae.fit(small_data, batch_size=16, validation_split=0.25, verbose=0)
    assert int(vae.optimizer.iterations.numpy()) == 3  # 48 training examples
    assert "val_loss" in history.history
    vae.fit(small_data, batch_size=16, steps_per_epoch=2, verbose=0)
    assert int(vae.optimizer.iterations.numpy()) == 5


def test_the_packages_pipelines_have_autotuning_off(small_data):
    from keras_vae.data import make_dataset

    dataset = make_dataset(small_data, 16, training=True)
    assert dataset.options().autotune.enabled is False
    assert sum(len(b) for b in dataset) == len(small_data)
