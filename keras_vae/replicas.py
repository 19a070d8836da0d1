"""What each replica must know about the global batch, gathered before `call`.

Under a distribution strategy the replicas split the global batch, and two
things in the model need the whole of it:

- the noise ε: each replica keeps the rows of the global batch's draw that
  belong to its examples, so replicas never share ε and a run on N replicas
  equals a one-device run (`VAE._noise`); with an uneven split (33 → 17 + 16)
  a replica's first row is the sum of the earlier replicas' batch sizes;
- free bits floor the KL of each latent dimension averaged over the *global*
  batch (`VAE._free_bits_kl`).

Both need a collective. Keras keeps the losses of `add_loss` in one list per
model, shared by the replicas of a `MirroredStrategy`, which trace `call` in
turns; a collective inside `call` makes them interleave, and one replica
then counts another's loss too. So the collectives run in `train_step`,
`test_step` and `predict_step`, before `call`, and `call` reads their
results here, per replica thread.
"""

import contextlib
import threading

import tensorflow as tf

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
    if model.free_bits > 0:
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
