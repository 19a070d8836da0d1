"""Keep TensorFlow's start-up noise out of the user's way.

TensorFlow's C++ runtime prints banners (oneDNN, missing CUDA drivers) to
file descriptor 2 before any Python logging setting applies. We capture that
descriptor while TensorFlow starts and replay every line that is not one of
these banners, so real errors still show. Set KERAS_VAE_SHOW_TF_LOGS=1 to see
everything.
"""

import contextlib
import os
import sys
import tempfile

_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "cuda_executor.cc",
    "Unable to register cu",
    "computation_placer.cc",
    "This TensorFlow binary is optimized",
    "rebuild TensorFlow with the appropriate compiler flags",
    "TF-TRT Warning",
)


def started_as_command_line():
    """Whether this process is the `keras-vae` command (the console script,
    or `python -m keras_vae` while the package is being found): only then
    does `import keras_vae` filter TensorFlow's banners. A library user's
    process (a notebook, a script, a test run) is left alone."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    return program == "-m" or program.startswith("keras-vae")


def tensorflow_banners_hidden():
    """Capture fd 2 during the block and replay all but TensorFlow's banners."""
    return native_stderr_filtered(_NOISE)


def converter_logs_hidden():
    """Drop the C++ log lines of the LiteRT converter (errors still raise)."""
    return native_stderr_filtered(None)


@contextlib.contextmanager
def native_stderr_filtered(noise):
    """Capture fd 2 during the block; replay the lines matching no `noise`.

    `noise=None` drops every line.
    """
    if os.environ.get("KERAS_VAE_SHOW_TF_LOGS"):
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            if noise is not None:
                _replay(capture.read().decode(errors="replace"), noise)


def _replay(text, noise):
    kept = [
        line
        for line in text.splitlines()
        if line.strip() and not any(pattern in line for pattern in noise)
    ]
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")
