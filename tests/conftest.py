"""Test set-up: two logical CPUs (for MirroredStrategy tests) and small data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# `make test` runs one worker process per core (pytest-xdist): each worker's
# TensorFlow then uses one thread for an op's work instead of one per core,
# which only made the two workers compete (the matrix's cells: 21% faster).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(_threads))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Must run before TensorFlow initialises its devices.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

import keras_vae  # noqa: E402


@pytest.fixture(scope="session")
def mnist():
    """The first 2000 training and 500 test MNIST images, scaled to [0, 1]."""
    (x_train, y_train), (x_test, y_test) = keras_vae.data.load_mnist()
    scale = np.float32(1 / 255)
    return (
        (x_train[:2000] * scale, y_train[:2000]),
        (x_test[:500] * scale, y_test[:500]),
    )


@pytest.fixture
def small_data():
    """64 random 6×6 grey images in [0, 1]: fast models for mechanics tests."""
    return np.random.default_rng(0).uniform(size=(64, 6, 6, 1)).astype("float32")


def small_vae(**kwargs):
    """A tiny VAE on 6×6×1 images with fixed initial weights."""
    keras.utils.set_random_seed(kwargs.pop("init_seed", 5))
    config = dict(input_shape=(6, 6, 1), latent_dim=3, hidden_units=(8,), seed=7)
    config.update(kwargs)
    if "latent_dims" in config:  # several stochastic layers
        config.pop("latent_dim")
        return keras_vae.HierarchicalVAE(**config)
    return keras_vae.VAE(**config)


@pytest.fixture(scope="session")
def strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session:
    two strategies on the same devices would share collective keys."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def run_edge_sample(*args):
    """`export/edge_sample.py ARGS` in a fresh process where importing
    TensorFlow, Keras, TFP or keras_vae fails (as on a device); returns the
    `subprocess.CompletedProcess`."""
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "export", "edge_sample.py")
    code = ("import runpy, sys\n"
            "for name in ('tensorflow', 'keras', 'keras_vae', 'tensorflow_probability'):\n"
            "    sys.modules[name] = None\n"
            f"sys.argv = {[script, *map(str, args)]!r}\n"
            f"runpy.run_path({script!r}, run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def dynamic_dimensions(path):
    """`[(where, shape)]` of every tensor of a LiteRT file, signature inputs
    and outputs included, with a dynamic (-1) dimension."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    found = [(t["name"], list(t["shape_signature"])) for t in interpreter.get_tensor_details()
             if -1 in list(t["shape_signature"])]
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        for kind, details in (("input", runner.get_input_details()),
                              ("output", runner.get_output_details())):
            found += [(f"{key} {kind} {name}", list(d["shape_signature"]))
                      for name, d in details.items() if -1 in list(d["shape_signature"])]
    return found


def has_bfloat16_units():
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16),
    where oneDNN rounds products to nearest even; elsewhere TensorFlow
    emulates them and rounds more coarsely (seen on an AMD EPYC)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


#: The modules that take longest, run first: `make test` hands whole modules to
#: its two workers (--dist loadscope) in collection order, and a long module
#: handed out last keeps one worker busy while the other waits.
LONGEST_FIRST = ("test_matrix_model.py", "test_matrix_export.py", "test_cli.py",
                 "test_journeys.py", "test_options.py", "test_export.py", "test_bad_input.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: each module's own order is kept
