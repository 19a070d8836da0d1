"""Generate a PNG grid of images on a device from a keras_vae LiteRT file.

Needs only NumPy and ai_edge_litert (`pip install ai-edge-litert numpy`), no
TensorFlow:

    python export/edge_sample.py runs/demo/export/vae_float32.tflite --num 16 --out samples.png
    python export/edge_sample.py vae_int8.tflite --seed 0      # reproducible z

The logic lives in keras_vae/edge.py, loaded here by path so that the
keras_vae package (which imports TensorFlow) is not imported. On a device,
copy edge.py beside this script.
"""

import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = (os.path.join(_HERE, "edge.py"),
               os.path.join(_HERE, os.pardir, "keras_vae", "edge.py"))


def _load_edge():
    for path in _CANDIDATES:
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("keras_vae_edge", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    sys.exit(f"edge_sample.py needs keras_vae/edge.py: copy it beside {__file__}.")


if __name__ == "__main__":
    sys.exit(_load_edge().main())
