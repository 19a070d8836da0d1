"""Score inputs for anomalies on a device with a keras_vae LiteRT file.

Needs only NumPy and ai_edge_litert (`pip install ai-edge-litert numpy`), no
TensorFlow. The file must come from a model with an anomaly detector
(`keras-vae fit-detector RUN`, then `keras-vae export RUN`):

    python export/edge_score.py runs/demo/export/vae_float32.tflite images.npy --out scores.csv

Inputs: a `.npy` file, or an `.npz` file's `x` array, of examples shaped as
the model takes them; uint8 arrays are scaled by 1/255 (8-bit images), other
arrays are taken as they are. Or, for a model of a table, a `.csv` file with
a header: the model's columns (named in the export's `<name>_metadata.json`
beside the file) are taken by name, in the model's order, and any other
column (a label, an id) is left out; each cell must be a finite number
within float32's range (about ±3.4e38).
Writes a CSV of index, score, threshold and is_anomaly (1 or 0), to `--out`
or to standard output.

The logic lives in keras_vae/edge.py (`LiteRTGenerator.score`), loaded here
by path so that the keras_vae package (which imports TensorFlow) is not
imported. On a device, copy edge.py and edge_sample.py beside this script.
"""

import argparse
import csv
import io
import json
import os
import sys

import numpy as np

# The loader of keras_vae/edge.py is edge_sample.py's, beside this script
# (Python puts the script's folder first on its path).
from edge_sample import _load_edge  # noqa: E402

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _model_columns(model):
    """The table columns of the export beside `model`, or None."""
    stem = os.path.basename(model).rsplit("_", 1)[0]
    metadata = os.path.join(os.path.dirname(model), f"{stem}_metadata.json")
    if not os.path.isfile(metadata):
        return None
    with open(metadata) as f:
        return json.load(f).get("columns")


def _csv_rows(path, columns):
    """The rows of a CSV file with a header, as float32, `columns` by name."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM too
        reader = csv.reader(f)
        try:
            return _read_rows(path, reader, columns)
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not UTF-8 text ({error}); expected a CSV file. "
                             "Save it as CSV UTF-8.") from None
        except csv.Error as error:
            raise ValueError(f"{path}, line {reader.line_num}: {error}; expected a CSV "
                             "file of numbers. Fix or drop the row.") from None


def _read_rows(path, reader, columns):
    header = next(reader, None)
    if not header:
        raise ValueError(f"{path} is empty; expected a header line and rows.")
    wanted = header if columns is None else columns
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"{path} has the columns {header}; the model needs {wanted} "
                         f"(missing: {missing}). Rename or add them.")
    indices = [header.index(c) for c in wanted]
    rows = []
    for row in reader:
        if not row:  # a blank line
            continue
        values = [_float32(row[i]) if i < len(row) else None for i in indices]
        if None in values:
            raise ValueError(f"{path}, line {reader.line_num}, column "
                             f"{wanted[values.index(None)]!r}: expected a finite number "
                             "(float32). Fix or drop the row.")
        rows.append(values)
    if not rows:
        raise ValueError(f"{path} has a header and no rows; expected rows to score.")
    return np.asarray(rows, "float32")


def _float32(text):
    """The cell as a finite float32, or None (not a number, or beyond float32)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if abs(value) <= FLOAT32_MAX else None  # NaN compares False


def _inputs(path, model):
    if not os.path.isfile(path):
        raise ValueError(f"No input file at {path}: give a .npy file, an .npz with x, "
                         "or a .csv with a header.")
    if path.endswith(".csv"):
        return _csv_rows(path, _model_columns(model))
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
    parser.add_argument("inputs", help="a .npy file, an .npz file with an x array, or a "
                                       ".csv file of a table's rows with a header")
    parser.add_argument("--label", type=int, default=None,
                        help="the class of every input, for a conditional model")
    parser.add_argument("--out", help="the CSV to write (default: standard output)")
    args = parser.parse_args(argv)
    edge = _load_edge()
    try:
        result = edge.LiteRTGenerator(args.model).score(_inputs(args.inputs, args.model),
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
