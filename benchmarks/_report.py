"""The parts every benchmark report shares: its provenance and its writing."""

import datetime
import os
import platform
import sys

import keras
import tensorflow as tf

import keras_vae


def provenance(script, argv=None):
    """Markdown lines: the command that reproduces the report, date, machine."""
    arguments = sys.argv[1:] if argv is None else argv
    return [
        f"Command: `python benchmarks/{script} {' '.join(arguments)}`  ",
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
