"""The parts every benchmark report shares: its provenance and its writing."""

import argparse
import datetime
import os
import platform
import shlex
import sys

import keras
import tensorflow as tf

import keras_vae


def provenance(script, argv=None):
    """Markdown lines: the command that reproduces the report, date, machine."""
    arguments = sys.argv[1:] if argv is None else argv
    return [
        f"Command: `python benchmarks/{script} {shlex.join(arguments)}`  ",
        f"Date: {datetime.date.today()}; machine: {platform.machine()}, {os.cpu_count()} CPU "
        f"cores; TensorFlow {tf.__version__}, Keras {keras.__version__}, keras_vae "
        f"{keras_vae.__version__}.  ",
    ]


def write(path, lines):
    """Write the report's lines to `path` (creating its folder) and print them."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def epochs_arguments(argv, doc, epochs, quick, out):
    """`(args, epochs, limit)` of a benchmark that trains for `--epochs`, or
    with `--quick` for `quick = (epochs, images)`, and writes `--out`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--quick", action="store_true",
                        help=f"{quick[0]} epochs on {quick[1]} images")
    parser.add_argument("--out", default=out)
    args = parser.parse_args(argv)
    return (args, *quick) if args.quick else (args, args.epochs, None)
