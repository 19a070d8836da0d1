"""Make the natural-photo dataset, offline: random crops of the colour photos
that scikit-image (train) and scikit-learn (test) install with themselves,
split by photo (`keras_vae.data.photos`).

    python examples/make_photos.py data/photos32                 # TFRecord shards
    python examples/make_photos.py data/photos64 --size 64
    python examples/make_photos.py /tmp/photos --format images   # PNG folders

`--format tfrecord` (the default) writes `train-*.tfrecord`, `test-*.tfrecord`
and `dataset.json` through `keras-vae convert`, so that `--dataset
tfrecord:OUT` trains on the train photos' crops and evaluates on the held-out
photos' crops (examples/photos.yaml). `--format images` writes OUT/train and
OUT/test, each a folder of PNG files for `--dataset images:OUT/train`.
`--format npz` writes OUT/photos.npz (x_train, y_train, x_test, y_test).
"""

import argparse
import os
import tempfile

import numpy as np

from keras_vae import files
from keras_vae.data import photos


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, default=32, help="crop side in pixels (32)")
    parser.add_argument("--train", type=int, default=20_000, help="training crops (20000)")
    parser.add_argument("--test", type=int, default=1_000, help="test crops (1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("tfrecord", "images", "npz"), default="tfrecord")
    args = parser.parse_args(argv)
    arrays = photos.make_arrays(args.size, args.train, args.test, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    if args.format == "npz":
        with files.replacing(os.path.join(args.out_dir, "photos.npz")) as partial:
            with open(partial, "wb") as f:
                np.savez(f, **arrays)
    elif args.format == "images":
        write_pngs(arrays, args.out_dir)
    else:
        from keras_vae.runs import convert

        with tempfile.TemporaryDirectory() as work:
            source = os.path.join(work, "photos.npz")
            np.savez(source, **arrays)
            convert(f"npz:{source}", args.out_dir, overwrite=True, seed=args.seed)
    print(f"{args.format}: {len(arrays['x_train'])} train and {len(arrays['x_test'])} test "
          f"crops of {args.size}x{args.size} in {args.out_dir}")


def write_pngs(arrays, out_dir):
    """OUT/train/<photo>_<i>.png and OUT/test/<photo>_<i>.png."""
    import keras
    from PIL import Image

    for split, names in (("train", photos.TRAIN_PHOTOS), ("test", photos.TEST_PHOTOS)):
        folder = os.path.join(out_dir, split)
        os.makedirs(folder, exist_ok=True)
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        bar = keras.utils.Progbar(len(x), unit_name="image")
        for i, (image, owner) in enumerate(zip(x, y, strict=True)):
            path = os.path.join(folder, f"{names[owner]}_{i:06d}.png")
            with files.replacing(path) as partial:
                Image.fromarray(image).save(partial, format="PNG")
            bar.update(i + 1)


if __name__ == "__main__":
    main()
