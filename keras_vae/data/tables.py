"""Numeric tables as data: `csv:<path>` and `parquet:<path>` sources.

Each row is an example of shape `(columns,)`, float32, in the file's own
units: the model standardises them with statistics it keeps
(`keras_vae.distributions.standardized`), so exports take raw rows. The
optional label column (`label_column`) gives a normal/anomaly flag or a
class: its values, of any type, become the integers 0..K−1 in sorted
order (`Splits.class_names` keeps them). A table has no test split of its
own: a seeded tenth of the rows is held out, as for arrays.

Refused, with the row or column named: an empty file, a column that is not
numeric, and a missing value (NaN, an empty cell). Missing values are
refused rather than masked: a row with a gap cannot be scored by the
exported model either, so the data is fixed once, before training.
"""

import os

import numpy as np

KINDS = ("csv", "parquet")


def read(kind, path, label_column=None):
    """`(x, labels, columns, class_names)` of a table: x float32 `(rows,
    columns)`, labels int32 or None."""
    frame = _frame(kind, path)
    if label_column is not None and label_column not in frame.columns:
        raise ValueError(f"{path} has no column {label_column!r} for the labels; its "
                         f"columns are {list(map(str, frame.columns))}.")
    labels, class_names = None, None
    if label_column is not None:
        values = frame.pop(label_column)
        _check_missing(values.to_frame(), path)
        class_names = sorted(values.unique().tolist(), key=str)
        index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([index[v] for v in values], "int32")
        class_names = [str(name) for name in class_names]
    if frame.shape[1] == 0:
        raise ValueError(f"{path} has no feature column"
                         + (f" beside the label column {label_column!r}" if label_column
                            else "") + ".")
    text = [str(c) for c in frame.columns if not _numeric(frame[c])]
    if text:
        raise ValueError(
            f"{path}: the column(s) {text} are not numeric (for example "
            f"{frame[text[0]].iloc[0]!r}). A table's columns must hold numbers: encode "
            "categories as numbers, drop text columns, or name the label column with "
            "--label-column.")
    _check_missing(frame, path)
    x = frame.to_numpy(dtype="float64")
    # float32 holds at most about ±3.4e38: a larger finite value would be inf.
    representable = np.abs(x) <= np.finfo(np.float32).max
    if not np.all(representable):
        row, column = np.argwhere(~representable)[0]
        what = "an infinite value" if np.isinf(x[row, column]) else \
            f"the value {x[row, column]:g}, beyond float32's ±3.4e38,"
        raise ValueError(f"{path}: row {row + 1} has {what} in column "
                         f"{frame.columns[column]!r}. Fix or drop the row.")
    return x.astype("float32"), labels, [str(c) for c in frame.columns], class_names


def _frame(kind, path):
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(f"{kind}: sources need pandas and pyarrow: "
                          "pip install 'keras-vae[tables]'.") from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {kind} file at {path}.")
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: a table needs a header row and data "
                         "rows.") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise ValueError(f"{path} cannot be read as {kind}: {error}") from None
    if len(frame) == 0:
        raise ValueError(f"{path} has a header but no data rows.")
    return frame


def _numeric(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series)  # booleans are numbers (0 and 1)


def _check_missing(frame, path):
    missing = frame.isna().to_numpy()
    if missing.any():
        row, column = np.argwhere(missing)[0]
        raise ValueError(
            f"{path}: row {row + 1} has no value in column {frame.columns[column]!r} "
            f"({int(missing.sum())} missing value(s) in all). Missing values are refused: "
            "fill or drop them before training (the exported model scores whole rows).")


def load(kind, path, label_column=None, test_fraction=0.1, seed=0):
    """The `Splits` of a table (a seeded `test_fraction` of the rows held
    out), with its `columns`."""
    from keras_vae.data.splits import Splits, array_split

    x, labels, columns, class_names = read(kind, path, label_column)
    if len(x) < 2:
        raise ValueError(f"{path} has {len(x)} row(s); at least 2 are needed to keep "
                         "one for testing.")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    pick = (lambda idx: None) if labels is None else (lambda idx: labels[idx])
    name = f"{kind}:{path}"
    return Splits(array_split(f"{name} train", x[train], pick(train)),
                  array_split(f"{name} test", x[test], pick(test)), name, class_names,
                  columns)
