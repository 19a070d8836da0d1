"""Train the MNIST classifier whose features measure sample quality.

    python benchmarks/train_mnist_classifier.py      # writes keras_vae/assets/

The network is `keras_vae.evaluation.quality.classifier_network()`: two 3×3
convolutions (32 and 64 channels) and a 64-unit penultimate layer, whose activations are the
features of the Fréchet distance and of precision/recall
(`keras_vae.evaluation.quality`). Trained on the 60 000 bundled training images (grey
levels in [0, 1]) with a fixed seed; the test accuracy on the 10 000 test
images is written beside the weights and must be at least 99%.
"""

import argparse
import json
import os
import sys

import keras
import numpy as np

import keras_vae
from keras_vae.evaluation import quality

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(HERE, os.pardir, "keras_vae", "assets"))
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = keras_vae.data.load_mnist()
    x_train, x_test = (x[..., None].astype("float32") / 255.0 for x in (x_train, x_test))
    model = quality.classifier_network()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, verbose=2,
              validation_data=(x_test, y_test))
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test))
    os.makedirs(args.out, exist_ok=True)
    model.save_weights(os.path.join(args.out, quality.WEIGHTS))
    with open(os.path.join(args.out, quality.CARD), "w") as f:
        json.dump({"test_accuracy": accuracy, "epochs": args.epochs, "seed": 0,
                   "trained_on": "the 60000 MNIST training images in [0, 1]",
                   "command": "python benchmarks/train_mnist_classifier.py"}, f, indent=2)
    print(f"test accuracy {accuracy:.4f}")
    return 0 if accuracy >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
