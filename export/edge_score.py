"""Score inputs for anomalies on a device with a keras_vae LiteRT file.

Needs only NumPy and ai_edge_litert (`pip install ai-edge-litert numpy`), no
TensorFlow. The file must come from a model with an anomaly detector
(`keras-vae fit-detector RUN`, then `keras-vae export RUN`):

    python export/edge_score.py runs/demo/export/vae_float32.tflite images.npy --out scores.csv

Inputs: a `.npy` file, or an `.npz` file's `x` array, of examples shaped as
the model takes them; uint8 arrays are scaled by 1/255 (8-bit images), other
arrays are taken as they are. Writes a CSV of index, score, threshold and
is_anomaly (1 or 0), to `--out` or to standard output.

The logic lives in keras_vae/edge.py (`LiteRTGenerator.score`), loaded here
by path so that the keras_vae package (which imports TensorFlow) is not
imported. On a device, copy edge.py and edge_sample.py beside this script.
"""

import argparse
import io
import os
import sys

import numpy as np

# The loader of keras_vae/edge.py is edge_sample.py's, beside this script
# (Python puts the script's folder first on its path).
from edge_sample import _load_edge  # noqa: E402


def _inputs(path):
    if not os.path.isfile(path):
        raise ValueError(f"No input file at {path}: give a .npy file, or an .npz with x.")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays:
                raise ValueError(f"{path} has the arrays {sorted(arrays)}; expected x.")
            x = arrays["x"]
    else:
        x = np.load(path, allow_pickle=False)
    if x.dtype == np.uint8:
        return x.astype("float32") / 255.0
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{path}: x has dtype {x.dtype}; expected numbers.")
    return x.astype("float32")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Score inputs for anomalies with a keras_vae .tflite file, with "
                    "ai_edge_litert and NumPy only.")
    parser.add_argument("model", help="a .tflite file from keras-vae export of a model "
                                      "with a detector")
    parser.add_argument("inputs", help="a .npy file, or an .npz file with an x array")
    parser.add_argument("--label", type=int, default=None,
                        help="the class of every input, for a conditional model")
    parser.add_argument("--out", help="the CSV to write (default: standard output)")
    args = parser.parse_args(argv)
    edge = _load_edge()
    try:
        result = edge.LiteRTGenerator(args.model).score(_inputs(args.inputs),
                                                        labels=args.label)
    except (ValueError, OSError) as error:
        print(f"edge_score: error: {error}", file=sys.stderr)
        return 2
    text = io.StringIO()
    text.write("index,score,threshold,is_anomaly\n")
    for index, (score, threshold, flag) in enumerate(zip(
            result["score"], result["threshold"], result["is_anomaly"], strict=True)):
        text.write(f"{index},{score:.9g},{threshold:.9g},{int(flag)}\n")
    if args.out:
        temporary = f"{args.out}.partial"  # no half-written file on a crash
        with open(temporary, "w") as f:
            f.write(text.getvalue())
        os.replace(temporary, args.out)
    else:
        sys.stdout.write(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
