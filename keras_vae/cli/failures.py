"""What the command line says when something fails: one message that names
the input and the fix, an exit code, and never a traceback.

    2    a bad input (option, file, data, folder) or a refused size
    3    training met a NaN or infinite loss (model.keras keeps the last good epoch)
    4    the disk is full (the run can be resumed once space is freed)
    130  stopped by Ctrl-C (SIGINT), 143 stopped by SIGTERM: the run can be resumed
"""

import errno
import signal
import threading


class Stopped(Exception):
    """Raised in the main thread when the process gets SIGINT or SIGTERM."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_on_signals():
    """Turn SIGINT and SIGTERM into `Stopped`, so that a stopped run can say
    how to resume it. Returns the previous handlers."""
    from keras_vae.training import signals

    def handler(signum, frame):
        if signals.deferring():  # files of the epoch are being written
            signals.defer(Stopped(signum))
            return
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers
    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def restore_signals(previous):
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def describe(error, command, run_dir=None):
    """`(message, exit code)` for `error`, or None for an error we do not know
    (a bug: let it show)."""
    resume = (f" Continue it with `keras-vae train --resume {run_dir}`."
              if command == "train" and run_dir else "")
    if isinstance(error, Stopped):
        saved = " The last finished epoch is saved." if command == "train" else ""
        return f"stopped by {error}.{saved}{resume}", 128 + error.signum
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        detail = error.strerror or ""  # the disk guard's estimate, where it gave one
        detail = f" ({detail.split(': ', 1)[1]})" if ": " in detail else ""
        return (f"no space left on the device while writing {error.filename or 'a file'}"
                f"{detail}. Free some space.{resume}", 4)
    if isinstance(error, (ValueError, FileNotFoundError, FileExistsError,
                          NotADirectoryError, IsADirectoryError)):
        return str(error), 2
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return (f"cannot use{where}: {error.strerror or error}. Choose a place you "
                "can read and write, or fix its permissions.", 2)
    return _tensorflow(error)


def _tensorflow(error):
    import tensorflow as tf

    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "No space left on device" in str(error):  # TensorFlow's writers say it so
        import re

        written = re.findall(r"(/\S+?)(?:[;:)]|$)", first)
        where = written[-1] if written else "a file"
        return f"no space left on the device while writing {where}. Free some space.", 4
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return (f"out of memory ({first[:200]}). Use a smaller batch_size, latent_dim or "
                "hidden_units, or fewer samples.", 2)
    if isinstance(error, tf.errors.PermissionDeniedError):
        return f"permission denied: {first}. Choose a place you can write.", 2
    if isinstance(error, tf.errors.OpError):
        return f"TensorFlow refused the input: {first}", 2
    return None
