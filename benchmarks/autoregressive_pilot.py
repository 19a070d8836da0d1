"""Pilot for issue 33's bits/dim goal: does a likelihood that predicts each
pixel from its decoded neighbours close the gap to the lossless codecs?

    python benchmarks/autoregressive_pilot.py --minutes 15 --out /tmp/pilot.json
    python benchmarks/autoregressive_pilot.py --minutes 15 --neighbours 0   # the baseline
    python benchmarks/autoregressive_pilot.py --minutes 15 --augment   # flips, channel orders
    python benchmarks/autoregressive_pilot.py --minutes 15 --augment --cross-channel --scale-context

A measurement made to decide whether to build an option, kept because
BENCHMARKS.md reports its runs: the option it led to is
`likelihood="autoregressive_logistic_mixture"` with `augment:
flip+channel_order` (`examples/photos.yaml`), which benchmarks/photo_benchmark.py
trains with `keras-vae train`; `--cross-channel` and `--scale-context` led
to its `cross_channel` and `local_scales` switches
(`keras_vae/distributions/neighbour_context.py`, the same formulas).
The VAE is the one of examples/photos.yaml (resnet encoder and decoder,
widths 32 and 64, 2 blocks a stage, silu, latent 128, the discretized logistic
mixture with K = 5 and PixelCNN++'s channel coupling, Adam 2e-3 on a half
cosine over the wall-clock budget, batch 64), trained on the same crops as
benchmarks/photo_benchmark.py (`keras_vae.data.photos`, 20 000 train crops;
the first 200 test crops of the two held-out photos), in a plain
`tf.function` loop.

The only change: each component's location of channel c at pixel (i, j) is
shifted by the same channel of `--neighbours` causal neighbours (4: left,
up, up-left, up-right; 12: all within two rows and two columns; mid-grey
outside the image),

    loc_kc(i, j) += Σ_n b_kcn(i, j) · (x_c(neighbour n) − ½),

with the coefficients b given by the decoder per pixel (K·C·N more
outputs), as a lossless codec predicts a pixel from its neighbours. The
log-likelihood of an image is still one pass (the neighbours are the data's);
drawing a sample would take one pass per pixel. `--neighbours 0` is the
factorised mixture of the package (the baseline).

Reports bits/dim (discrete convention) on the test crops by the ELBO and by
importance sampling with `--k` samples, and by the ELBO on 200 train crops.
"""

import argparse
import json
import math
import time

import numpy as np

#: Causal neighbours, (row, column) offsets: the first 4 (left, up, up-left,
#: up-right), or all 12 within two rows and two columns.
NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1),
              (0, -2), (-1, -2), (-1, 2), (-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2))
SHAPE, WIDTHS, BLOCKS, LATENT, COMPONENTS = (32, 32, 3), (32, 64), 2, 128, 5


def neighbour_values(x, n):
    """(batch, H, W, C, n): each channel's first `n` causal neighbours
    (`NEIGHBOURS`) of images `x` in [0, 1], centred (mid-grey outside)."""
    import tensorflow as tf

    padded = tf.pad(x - 0.5, [[0, 0], [2, 0], [2, 2], [0, 0]])
    h, w = x.shape[1], x.shape[2]
    return tf.stack([padded[:, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w, :]
                     for dy, dx in NEIGHBOURS[:n]], axis=-1)


#: Local gradients for --scale-context, pairs of causal offsets (a, b):
#: |x_a − x_b| per channel (left/up-left, up/up-left, up-right/up,
#: left/left-left, up/up-up), as a codec's context measures activity.
GRADIENTS = (((0, -1), (-1, -1)), ((-1, 0), (-1, -1)), ((-1, 1), (-1, 0)),
             ((0, -1), (0, -2)), ((-1, 0), (-2, 0)))


def gradients(x):
    """(batch, H, W, C, M): |x_a − x_b| of each pair of `GRADIENTS` (0 outside)."""
    import tensorflow as tf

    padded = tf.pad(x - 0.5, [[0, 0], [2, 0], [2, 2], [0, 0]])
    h, w = x.shape[1], x.shape[2]

    def at(dy, dx):
        return padded[:, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w, :]

    return tf.stack([tf.abs(at(*a) - at(*b)) for a, b in GRADIENTS], axis=-1)


def augment(batch, rng):
    """Each crop flipped left to right with probability ½ and its three
    colour channels in a random order (the test photos' colours are not the
    training photos')."""
    batch = batch.copy()
    flip = rng.random(len(batch)) < 0.5
    batch[flip] = batch[flip, :, ::-1]
    order = rng.permuted(np.tile(np.arange(batch.shape[-1]), (len(batch), 1)), axis=1)
    return np.take_along_axis(batch, order[:, None, None, :], axis=3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--neighbours", type=int, choices=(0, 4, 12), default=4)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--augment", action="store_true",
                        help="flip half the training crops left to right and shuffle "
                             "each crop's colour channels")
    parser.add_argument("--cross-channel", action="store_true",
                        help="shift each channel's location by every channel of the "
                             "neighbours (K·C·C·N coefficients instead of K·C·N)")
    parser.add_argument("--scale-context", action="store_true",
                        help="widen each logistic by the local gradients (GRADIENTS): "
                             "scale += Σ_m softplus(e_kcm) · 255 |x_a − x_b|, e from the decoder")
    parser.add_argument("--train-crops", type=int, default=20_000)
    parser.add_argument("--out", default=None, help="a JSON file for the results")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from keras_vae.data import photos
    from keras_vae.distributions import logistic_mixture
    from keras_vae.distributions.scale import positive_scale
    from keras_vae.models import resnet

    keras.utils.set_random_seed(0)
    arrays = photos.make_arrays(32, args.train_crops, 1000, seed=0)
    x_train = arrays["x_train"].astype("float32") / 255.0
    x_test = arrays["x_test"][:200].astype("float32") / 255.0
    k, c, n = COMPONENTS, SHAPE[2], args.neighbours
    base = logistic_mixture.parameter_count(c, k)
    shifts = k * c * n * (c if args.cross_channel else 1)
    widths = k * c * len(GRADIENTS) if args.scale_context else 0
    encoder = resnet.resnet_encoder(SHAPE, 2 * LATENT, WIDTHS, BLOCKS, "silu")
    decoder = resnet.resnet_decoder(LATENT, SHAPE[:2] + (base + shifts + widths,), WIDTHS, BLOCKS,
                                    "silu")
    variables = encoder.trainable_variables + decoder.trainable_variables
    optimizer = keras.optimizers.Adam(2e-3)

    def log_px(params, x):
        mixture = logistic_mixture.Mixture(params[..., :base], 3, k, 1e-2)
        batch_pixels = tf.shape(params)[:-1]
        if n and args.cross_channel:  # b_kcdn: channel c shifted by channel d of neighbour n
            b = tf.reshape(params[..., base:base + shifts],
                           tf.concat([batch_pixels, [k, c, c * n]], 0))
            values = tf.reshape(neighbour_values(x, n), tf.concat([batch_pixels, [c * n]], 0))
            mixture.locs += tf.reduce_sum(b * values[..., None, None, :], -1)
        elif n:
            b = tf.reshape(params[..., base:base + shifts],
                           tf.concat([batch_pixels, [k, c, n]], 0))
            mixture.locs += tf.reduce_sum(b * neighbour_values(x, n)[..., None, :, :], -1)
        if widths:
            e = tf.reshape(params[..., base + shifts:],
                           tf.concat([batch_pixels, [k, c, len(GRADIENTS)]], 0))
            mixture.scales += tf.reduce_sum(
                tf.math.softplus(e) * 255.0 * gradients(x)[..., None, :, :], -1)
        return mixture.log_prob(x)

    def terms(x, eps):
        stats = encoder(x)
        loc, scale = stats[:, :LATENT], positive_scale(stats[:, LATENT:])
        z = loc + scale * eps
        kl = 0.5 * tf.reduce_sum(scale**2 + loc**2 - 1.0 - 2.0 * tf.math.log(scale), -1)
        log_q = tf.reduce_sum(-0.5 * eps**2 - tf.math.log(scale), -1)
        log_p = tf.reduce_sum(-0.5 * z**2, -1)
        return log_px(decoder(z), x), kl, log_q, log_p

    @tf.function(reduce_retracing=True)
    def step(x):
        with tf.GradientTape() as tape:
            rec, kl, _, _ = terms(x, tf.random.normal((tf.shape(x)[0], LATENT)))
            loss = tf.reduce_mean(kl - rec)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    @tf.function(reduce_retracing=True)
    def elbo(x):
        rec, kl, _, _ = terms(x, tf.random.normal((tf.shape(x)[0], LATENT)))
        return rec - kl

    @tf.function(reduce_retracing=True)
    def log_weights(x):  # k importance weights of one image, batched
        xs = tf.repeat(x, 100, axis=0)
        rec, _, log_q, log_p = terms(xs, tf.random.normal((100, LATENT)))
        return rec + log_p - log_q  # the Gaussians' constants cancel

    def bits(log_likelihood):
        return float(-np.mean(log_likelihood) / (np.prod(SHAPE) * math.log(2.0)))

    def write(result):
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)

    budget, start, epochs, steps, history = 60.0 * args.minutes, time.perf_counter(), 0, 0, []
    rng = np.random.default_rng(0)
    while time.perf_counter() - start < budget:
        order = rng.permutation(len(x_train))
        for i in range(0, len(order) - 63, 64):
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                break
            optimizer.learning_rate = 2e-3 * 0.5 * (1.0 + math.cos(math.pi * elapsed / budget))
            loss = step(tf.constant(augment(x_train[order[i:i + 64]], rng)
                                     if args.augment else x_train[order[i:i + 64]]))
            steps += 1
        epochs += 1
        test = bits(np.concatenate([elbo(tf.constant(x_test[j:j + 100])).numpy()
                                    for j in range(0, 200, 100)]))
        history.append({"epoch": epochs, "steps": steps,
                        "minutes": round((time.perf_counter() - start) / 60, 1),
                        "test_bits_elbo": round(test, 3)})
        print(f"epoch {epochs}: {steps} steps, {history[-1]['minutes']} min, "
              f"train loss {float(loss):.0f} nats, test ELBO {test:.3f} bits/dim", flush=True)
        write({"neighbours": n, "augment": args.augment, "cross_channel": args.cross_channel,
               "scale_context": args.scale_context, "history": history})  # as it goes
    minutes = (time.perf_counter() - start) / 60.0
    test_elbo = bits(np.concatenate([elbo(tf.constant(x_test[j:j + 100])).numpy()
                                     for j in range(0, 200, 100)]))
    train_elbo = bits(np.concatenate([elbo(tf.constant(x_train[j:j + 100])).numpy()
                                      for j in range(0, 200, 100)]))
    rounds = max(1, args.k // 100)
    test_is = []
    for image in x_test:
        weights = np.concatenate([log_weights(tf.constant(image[None])).numpy()
                                  for _ in range(rounds)])
        test_is.append(float(np.logaddexp.reduce(weights) - math.log(len(weights))))
    result = {"neighbours": n, "augment": args.augment, "cross_channel": args.cross_channel,
              "scale_context": args.scale_context, "minutes": round(minutes, 1),
              "epochs": epochs, "steps": steps,
              "k": 100 * rounds, "test_bits_is": round(bits(test_is), 3),
              "test_bits_elbo": round(test_elbo, 3), "train_bits_elbo": round(train_elbo, 3),
              "parameters": int(sum(np.prod(v.shape) for v in variables)),
              "history": history}
    print(json.dumps(result))
    write(result)


if __name__ == "__main__":
    main()
