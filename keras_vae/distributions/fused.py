"""Per-example log-probabilities computed by one XLA kernel, forward and
backward, inside a training step's graph that is otherwise not compiled.

A likelihood such as the discretized logistic mixture is some 25 elementwise
operations on a tensor of batch × pixels × components × channels values,
and its gradient some 50 more. TensorFlow's graph runs each as its own
kernel, reading and writing the whole tensor; on a CPU that made the
mixture's log-probability with its gradient slower than the same loss in
PyTorch (docs/benchmarks/resnet.md times it alone). Compiling the whole
model with XLA fuses them, but XLA's CPU convolutions are slower than
oneDNN's. `per_example` compiles only the log-probability: one
`tf.function(jit_compile=True)` computes the values and, in the same
kernel, their gradient with respect to the parameters; the surrounding
graph (convolutions included) is left as it is. As each example's value
depends only on its own parameters, the gradient of the sum of the values is
every example's gradient, and the backward pass multiplies it by the
incoming gradient.

Only a graph traced inside `training_step()` (which `keras_vae.VAE`'s
`train_step` opens) is fused: there the gradient is always taken. A forward
pass alone ran faster as plain operations than as an XLA kernel on a CPU
(docs/benchmarks/resnet.md), and exported graphs
must hold no XLA cluster (TF Serving runs none unless started with
`--xla_cpu_compilation_enabled`; LiteRT has no XLA). Eager calls use the
plain operations too; both forms compute the same values.
"""

import tensorflow as tf

from keras_vae.distributions import thread_flag

_TRAINING_STEP = thread_flag.ThreadFlag()


def training_step():
    """Within the block, graphs trace `per_example` as one XLA kernel (a
    training step, whose gradient is taken)."""
    return _TRAINING_STEP.on()


def active():
    """Whether a `training_step()` block is open in this thread."""
    return _TRAINING_STEP.active()


def per_example(function, parameters, data, batch_rank, event_ndims):
    """`function(*parameters, data)`: a value per example, computed with its
    gradient by one XLA kernel where that is safe (module docstring).

    Args:
        function: a function of the `parameters` tensors and `data`, giving
            a value per example, each depending on its own example's entries
            of the parameters only.
        parameters: float tensors whose first `batch_rank` dimensions index
            the examples (the values' shape).
        data: a tensor whose last `event_ndims` dimensions are one example.
            No gradient flows to it (the likelihoods round it to levels).
        batch_rank: how many leading dimensions of each parameter tensor
            index examples.
        event_ndims: how many trailing dimensions of `data` are one example.
    """
    if tf.executing_eagerly() or not active() or not _one_value_per_example(
            parameters, data.shape[:len(data.shape) - event_ndims], batch_rank):
        return function(*parameters, data)

    @tf.function(jit_compile=True, autograph=False)
    def values_and_gradients(parameters, data):
        with tf.GradientTape() as tape:
            tape.watch(parameters)
            values = function(*parameters, data)
        return values, tape.gradient(values, parameters,
                                     unconnected_gradients=tf.UnconnectedGradients.ZERO)

    @tf.custom_gradient
    def values(*parameters):
        result, gradients = values_and_gradients(list(parameters), data)

        def backward(upstream):
            # The data's examples may broadcast against the parameters' only
            # where each value still has parameters of its own.
            check = tf.debugging.assert_equal(
                tf.shape(result), tf.shape(gradients[0])[:batch_rank], message=(
                    "keras_vae.distributions.fused: the data has more examples than the "
                    "likelihood parameters (a batch of 1 in the parameters broadcast against "
                    "it), so one example of parameters gave several values and the fused "
                    "gradient would be wrong. Compute this log-probability outside "
                    "keras_vae.distributions.fused.training_step()."))
            with tf.control_dependencies([check]):
                return [tf.reshape(upstream, tf.concat(
                    [tf.shape(upstream), tf.ones([tf.rank(gradient) - batch_rank], tf.int32)],
                    0)) * gradient for gradient in gradients]

        return result, backward

    return values(*parameters)


def _one_value_per_example(parameters, data_batch, batch_rank):
    """Whether each value has its own parameters, as far as the static
    shapes tell: every parameter tensor has the same batch dimensions, and
    the data's (`data_batch`) broadcast into them without enlarging any."""
    shapes = {tuple(p.shape[:batch_rank]) for p in parameters}
    if len(shapes) != 1:
        return False
    batch = shapes.pop()
    if len(batch) != batch_rank or len(data_batch) > batch_rank:
        return False
    return all(theirs in (1, mine) or (mine is None and theirs is None)
               for mine, theirs in zip(reversed(batch), reversed(tuple(data_batch)),
                                       strict=False))
