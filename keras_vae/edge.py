"""Generating images, and scoring inputs for anomalies, on a device from a
LiteRT file, without TensorFlow.

This module imports only NumPy, the standard library and `ai_edge_litert`,
so `export/edge_sample.py` can load it on a device where TensorFlow is not
installed. Inputs are checked here, because LiteRT has no assert op.
"""

import json
import os
import re
import struct
import sys
import zlib

import numpy as np

#: The largest n the exported `sample` signatures accept, as
#: `keras_vae.export.MAX_SAMPLES` builds it into the files (this module runs
#: without the package, so it keeps its own copy; a test checks they agree).
MAX_SAMPLES = 4096


class LiteRTGenerator:
    """Run the fixed-shape `decode_<B>` and `sample_<B>` signatures of an
    exported `.tflite` file, for any number of images: whole batches of the
    file's batch sizes, the last one padded and trimmed.

    Args:
        path: the `.tflite` file written by `keras_vae.export.export_litert`.
        num_threads: the interpreter's CPU threads (None: its default).

    Example:

    ```python
    generator = LiteRTGenerator("vae_float32.tflite")
    images = generator.sample(16)                       # fresh draws
    images = generator.decode(generator.prior_z(16, seed=0))  # reproducible
    ```
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        if not os.path.isfile(path):
            raise FileNotFoundError(f"No LiteRT model at {path}.")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(
                num_threads, int) or num_threads < 1):
            raise ValueError(f"Expected num_threads: a positive int, or None for the "
                             f"runtime's default. Received: {num_threads!r}")
        self.path = path
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise ValueError(
                f"{path} is not a LiteRT model ({error}): it may be truncated or "
                "another kind of file. Export it again with keras-vae export."
            ) from None
        self._runners = runners = _signature_runners(self.interpreter, path)
        #: The batch sizes of the file's signatures.
        self.batch_sizes = sorted(runners[("decode", None)])
        #: The fitted samplers built into the file (`sample(n, sampler=name)`).
        self.samplers = sorted(name for kind, name in runners if kind == "sample" and name)
        inputs = runners[("decode", None)][self.batch_sizes[0]].get_input_details()
        self.latent_dim = int(inputs["z"]["shape"][-1])
        #: Whether the model is a ConditionalVAE, which needs labels.
        self.conditional = "labels" in inputs

    def prior_z(self, n, seed=None):
        """n draws from the standard normal prior, made with NumPy."""
        _check_count(n)
        return np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype("float32")

    def decode(self, z, labels=None):
        """Images `(n, height, width, channels)` for codes z `(n, latent_dim)`
        (and, for a conditional model, one label per code)."""
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim or not len(z):
            raise ValueError(
                f"Expected z of shape (n, {self.latent_dim}) with n >= 1: latent_dim is "
                f"{self.latent_dim}. Received: z.shape={z.shape}"
            )
        return self._run(("decode", None), len(z), z=z, labels=self._labels(labels, len(z)))

    def sample(self, n, labels=None, sampler=None, temperature=1.0):
        """n images from codes drawn inside the model (fresh on every call),
        from the prior or from the fitted sampler named `sampler`, the noise
        scaled by `temperature` (1: the prior or sampler itself; below 1:
        closer to the means)."""
        _check_count(n)
        if ("sample", sampler) not in self._runners:
            raise ValueError(f"{self.path} has no sampler {sampler!r}; it has the prior "
                             f"(None) and {self.samplers}.")
        if isinstance(temperature, bool) or not isinstance(
                temperature, (int, float, np.number)) or not 0 <= temperature < float("inf"):
            raise ValueError(f"Expected a temperature >= 0 (1: the prior itself). "
                             f"Received: temperature={temperature!r}")
        return self._run(("sample", sampler), n, labels=self._labels(labels, n),
                         temperature=np.float32(temperature))

    def score(self, x, labels=None):
        """The anomaly detector's `{"score", "threshold", "is_anomaly"}` of
        each example of x `(n,) + image_shape` (a file exported from a model
        with a detector: `keras-vae fit-detector`)."""
        if ("score", None) not in self._runners:
            raise ValueError(f"{self.path} has no score signatures: its model had no "
                             "anomaly detector. Fit one (keras-vae fit-detector RUN) and "
                             "export again.")
        shape = tuple(self._runners[("score", None)][self.batch_sizes[0]]
                      .get_input_details()["x"]["shape"][1:])
        x = np.asarray(x, dtype="float32")
        if x.ndim != len(shape) + 1 or x.shape[1:] != shape or not len(x):
            raise ValueError(f"Expected x of shape (n, {', '.join(map(str, shape))}) with "
                             f"n >= 1. Received: x.shape={x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"x has {int(np.sum(~np.isfinite(x)))} NaN or infinite "
                             "values; a score needs finite inputs.")
        return self._run(("score", None), len(x), outputs=("score", "threshold",
                                                           "is_anomaly"),
                         x=x, labels=self._labels(labels, len(x)))

    def _run(self, key, n, outputs=("images",), **inputs):
        """Run whole batches of the signatures `key` for n rows of `inputs`
        (scalars go to every batch; None: not an input), padding the last
        batch and trimming; the array of `outputs[0]`, or a dict of several."""
        parts = {name: [] for name in outputs}
        for start, size in batch_plan(n, self.batch_sizes):
            feed = {name: value if np.ndim(value) == 0
                    else _padded(value[start: start + size], size)
                    for name, value in inputs.items() if value is not None}
            result = self._runners[key][size](**feed)
            for name in outputs:
                parts[name].append(result[name][: min(size, n - start)])
        joined = {name: np.concatenate(values) for name, values in parts.items()}
        return joined[outputs[0]] if len(outputs) == 1 else joined

    def _labels(self, labels, n):
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"{self.path} is not a conditional model: it takes no labels.")
            return None
        if labels is None:
            raise ValueError(f"{self.path} is a conditional model: pass labels (one int or n).")
        labels = np.broadcast_to(np.asarray(labels, dtype="int32"), (n,))
        if labels.min() < 0:
            raise ValueError(f"Expected labels >= 0. Received: {labels.min()}")
        return np.ascontiguousarray(labels)


#: `decode_16`, `sample_16`, `sample_gmm_16`, `score_16`: kind, sampler, batch size.
_SIGNATURE = re.compile(r"(decode|sample|score)(?:_([A-Za-z_]\w*?))?_(\d+)")


def _signature_runners(interpreter, path):
    """`{(kind, sampler): {batch size: runner}}` of the file's signatures."""
    runners = {}
    for key in interpreter.get_signature_list():
        match = _SIGNATURE.fullmatch(key)
        if match:
            kind, name, size = match.groups()
            runners.setdefault((kind, name), {})[int(size)] = (
                interpreter.get_signature_runner(key))
    if ("decode", None) not in runners or ("sample", None) not in runners:
        raise ValueError(
            f"{path} has the signatures {sorted(interpreter.get_signature_list())}; expected "
            "decode_<B> and sample_<B> with fixed batch sizes B. Export it again with "
            "keras-vae export (older exports had a dynamic batch dimension).")
    return runners


def batch_plan(n, sizes):
    """`[(start, size)]`: whole batches of the given sizes that cover n rows:
    the largest size while more rows than that remain, then the smallest
    size that holds the rest (padded, and trimmed after)."""
    plan, start = [], 0
    while start < n:
        rest = n - start
        size = max(sizes) if rest >= max(sizes) else min(s for s in sizes if s >= rest)
        plan.append((start, size))
        start += size
    return plan


def _padded(rows, size):
    """`rows` with zero rows added up to `size`."""
    if len(rows) == size:
        return np.ascontiguousarray(rows)
    padding = np.zeros((size - len(rows),) + rows.shape[1:], rows.dtype)
    return np.concatenate([rows, padding])


def _check_count(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(
            f"Expected an integer n in [1, {MAX_SAMPLES}]. Received: n={n!r}. "
            f"Ask for several batches to get more than {MAX_SAMPLES} images."
        )


def grid(images, columns=None, padding=2, scale=1):
    """Tile images `(n, h, w, c)` with values in [0, 1] into one uint8 array.

    `scale` enlarges each pixel to a `scale × scale` block (easier to see).
    """
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    n, height, width, channels = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    canvas = np.ones((rows * (height + padding) + padding,
                      columns * (width + padding) + padding, channels), "float32")
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top: top + height, left: left + width] = image
    canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.round(canvas * 255).astype("uint8")


def write_png(array, path):
    """Write a uint8 array `(h, w, 1 or 3)` as a PNG file, atomically."""
    height, width, channels = array.shape
    colour_type = {1: 0, 3: 2}[channels]
    rows = b"".join(b"\x00" + array[row].tobytes() for row in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    temporary = f"{path}.partial"
    with open(temporary, "wb") as f:
        f.write(png)
    os.replace(temporary, path)
    return path


def main(argv=None):
    """Command line of `export/edge_sample.py`."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Generate a PNG grid of images from a keras_vae .tflite file "
                    "with ai_edge_litert and NumPy only.")
    parser.add_argument("model", help="a .tflite file from keras-vae export")
    parser.add_argument("--num", type=int, default=16, help="images to generate")
    parser.add_argument("--seed", type=int, default=None,
                        help="draw z with NumPy from this seed (reproducible)")
    parser.add_argument("--out", default="samples.png", help="the PNG to write")
    parser.add_argument("--label", type=int, default=None,
                        help="the class to generate, for a conditional model")
    parser.add_argument("--scale", type=int, default=3,
                        help="enlarge each pixel to SCALE x SCALE (default 3)")
    parser.add_argument("--sampler", default=None,
                        help="a fitted sampler built into the file (e.g. gmm); default: prior")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="scale of the noise drawn on the device (default 1: the prior)")
    args = parser.parse_args(argv)
    try:
        generator = LiteRTGenerator(args.model)
        labels = args.label
        if args.seed is None or args.sampler:
            images = generator.sample(args.num, labels=labels, sampler=args.sampler,
                                      temperature=args.temperature)
        else:
            images = generator.decode(generator.prior_z(args.num, seed=args.seed),
                                      labels=labels)
        write_png(grid(images, scale=args.scale), args.out)
    except (ValueError, OSError) as error:
        print(f"edge_sample: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"model": args.model, "images": int(len(images)), "png": args.out}))
    return 0
