"""What each replica must know about the global batch, gathered before `call`.

Under a distribution strategy the replicas split the global batch, and two
things in the model need the whole of it:

- the noise ε: each replica keeps the rows of the global batch's draw that
  belong to its examples, so replicas never share ε and a run on N replicas
  equals a one-device run (`noise`); with an uneven split (33 → 17 + 16)
  a replica's first row is the sum of the earlier replicas' batch sizes;
- free bits floor the KL of each latent dimension averaged over the *global*
  batch (`kl_share_and_mean`).

Both need a collective. Keras keeps the losses of `add_loss` in one list per
model, shared by the replicas of a `MirroredStrategy`, which trace `call` in
turns; a collective inside `call` makes them interleave, and one replica
then counts another's loss too. So the collectives run in `train_step`,
`test_step` and `predict_step`, before `call`, and `call` reads their
results here, per replica thread.
"""

import contextlib
import threading

import keras
import tensorflow as tf
from keras import ops

_STATE = threading.local()


@contextlib.contextmanager
def global_batch(model, inputs):
    """Gather, for this replica, its first row in the global batch, the
    global batch size and (with free bits) the global mean KL per latent
    dimension; `state(model)` returns them inside the block."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context else 1
    if replicas == 1:
        yield
        return
    x, condition = model.split_inputs(inputs)
    size = tf.shape(x)[0]
    replica = context.replica_id_in_sync_group
    sizes = context.all_reduce(
        tf.distribute.ReduceOp.SUM,
        tf.one_hot(replica, replicas, dtype=tf.float32) * tf.cast(size, tf.float32))
    sizes = tf.cast(tf.round(sizes), tf.int32)
    state = {"start": tf.reduce_sum(sizes[:replica]), "total": tf.reduce_sum(sizes)}
    if model.objective.uses_kl_per_dimension:
        per_dimension = tf.stop_gradient(model.kl_per_dimension(x, condition))
        sums = tf.concat([tf.reduce_sum(per_dimension, axis=0),
                          [tf.cast(size, per_dimension.dtype)]], axis=0)
        totals = context.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        state["kl_mean"] = totals[:-1] / totals[-1]
    states = _states()
    states[id(model)] = state
    try:
        yield
    finally:
        states.pop(id(model), None)


def state(model):
    """The gathered values of `model` on this replica, or None outside a
    `global_batch` block (one device, or a direct call)."""
    return _states().get(id(model))


def _states():
    if not hasattr(_STATE, "models"):
        _STATE.models = {}
    return _STATE.models


def noise(model, batch_size):
    """ε ~ N(0, I) of shape `(model.num_samples, batch_size, model.latent_dim)`.

    Under a distribution strategy each replica draws the noise of the whole
    global batch from the shared seed and keeps its own rows (their start
    gathered by `global_batch`, so uneven splits such as 33 → 17 + 16 work
    too): replicas never share ε, and a run on N replicas sees the same noise
    as a one-device run on the same global batch.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context else 1
    if replicas == 1:
        shape = (model.num_samples, batch_size, model.latent_dim)
        return keras.random.normal(shape, seed=model.seed_generator)
    gathered = state(model)
    if gathered is None:  # called directly: assume an even split
        start = context.replica_id_in_sync_group * batch_size
        total = replicas * batch_size
    else:
        start, total = gathered["start"], gathered["total"]
    shape = tf.stack([model.num_samples, total, model.latent_dim])
    eps = keras.random.normal(shape, seed=model.seed_generator)
    return eps[:, start : start + batch_size]


def kl_share_and_mean(model, per_dimension):
    """`(share, mean)` of the KL per latent dimension, from this replica's
    `(batch, latent_dim)` values, for `objectives.free_bits_kl`.

    `mean` is the mean over the global batch (no gradient), which decides
    the floor; `share` carries the gradient: on one device the batch mean,
    and under a strategy R · (this replica's sum) / N, which Keras divides by
    the R replicas and sums to the one-device value and gradient.
    """
    local_sum = ops.sum(per_dimension, axis=0)
    gathered = state(model)
    if gathered is None:
        share = local_sum / ops.cast(ops.shape(per_dimension)[0], local_sum.dtype)
        return share, tf.stop_gradient(share)
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    share = replicas * local_sum / ops.cast(gathered["total"], local_sum.dtype)
    return share, gathered["kl_mean"]
