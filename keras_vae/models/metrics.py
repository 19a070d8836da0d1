"""The model's loss trackers, kept in float32 under mixed precision.

Keras reads a layer's float32 variables as float16 inside its `call` under
mixed_float16 (autocasting), and a metric updated there, as the VAE's
reconstruction and KL trackers are, would sum in float16: a reconstruction
of 8-bit colour images (hundreds of thousands of nats per image before
training) overflows 65 504 and `history.csv` would record inf while the loss
stays finite. These trackers' variables are never autocast.
"""

import keras


class Float32Mean(keras.metrics.Mean):
    """`keras.metrics.Mean` whose total and count are never autocast."""

    def add_variable(self, shape, initializer, dtype=None, aggregation="sum", name=None):
        # As keras.metrics.Metric.add_variable, with autocast=False; the
        # metric tracks the variable when Mean assigns it to an attribute.
        return keras.Variable(initializer=keras.initializers.get(initializer), shape=shape,
                              dtype=dtype, trainable=False, aggregation=aggregation,
                              synchronization="on_read", name=name, autocast=False)
