"""Train the default MLP VAE on the bundled MNIST and draw samples.

    python examples/train_mnist.py --epochs 10 --out runs/mnist

Pixels are scaled to [0, 1] and fed to the Bernoulli likelihood as grey
levels. Prints the test-set negative ELBO in nats and writes
`samples.png` (16 draws from the prior) and `vae.keras` to `--out`.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow start-up

import keras  # noqa: E402

import keras_vae  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/mnist")
    parser.add_argument("--limit", type=int, default=None,
                        help="train on the first LIMIT images only (quick runs)")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = keras_vae.data.load_mnist()
    x_train, x_test = x_train[: args.limit] / 255.0, x_test / 255.0

    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=args.latent_dim,
                        encoder="mlp", decoder="mlp", likelihood="bernoulli",
                        seed=args.seed)
    vae.compile(optimizer="adam")
    start = time.time()
    vae.fit(x_train, epochs=args.epochs, batch_size=args.batch_size,
            validation_data=(x_test,))
    minutes = (time.time() - start) / 60
    logs = vae.evaluate(x_test, batch_size=500, verbose=0, return_dict=True)

    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, "vae.keras")
    vae.save(model_path)
    samples_path = keras_vae.plotting.image_grid(
        vae.sample(16, seed=args.seed), os.path.join(args.out, "samples.png"),
        title=f"Samples after {args.epochs} epochs",
    )
    print(
        f"\nTest negative ELBO: {logs['loss']:.2f} nats "
        f"(reconstruction {logs['reconstruction_loss']:.2f}, "
        f"KL {logs['kl_loss']:.2f}) after {args.epochs} epochs "
        f"in {minutes:.1f} min.\nWrote {model_path}\nWrote {samples_path}"
    )


if __name__ == "__main__":
    main()
