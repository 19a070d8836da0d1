"""Stops asked for by a signal wait until the epoch's files are written.

The command line turns SIGINT and SIGTERM into an exception
(`keras_vae.failures`). Raised while `model.keras` or the backup is being
written, it would leave a half-written file; `EpochEndGuard` marks the
end-of-epoch writes as a section during which the stop waits, and raises it
as soon as they are done.
"""

import contextlib
import threading

import keras

_STATE = threading.local()


def deferring():
    """Whether a stop must wait (inside `deferred()`)."""
    return getattr(_STATE, "depth", 0) > 0


def defer(stop):
    """Keep `stop` (an exception) to raise when the deferred section ends."""
    _STATE.pending = stop


@contextlib.contextmanager
def deferred():
    """A section that a signal's stop does not interrupt; a stop asked for
    inside it is raised when it ends."""
    _STATE.depth = getattr(_STATE, "depth", 0) + 1
    try:
        yield
    finally:
        _STATE.depth -= 1
        if _STATE.depth == 0:
            _raise_pending()


def _raise_pending():
    stop = getattr(_STATE, "pending", None)
    _STATE.pending = None
    if stop is not None:
        raise stop


class EpochEndGuard:
    """A pair of callbacks around the others' `on_epoch_end`:
    `callbacks = [guard.opening, *others, guard.closing]`."""

    def __init__(self):
        self._section = None
        self.opening = _Opening(self)
        self.closing = _Closing(self)


class _Opening(keras.callbacks.Callback):
    def __init__(self, guard):
        super().__init__()
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        self.guard._section = deferred()
        self.guard._section.__enter__()


class _Closing(keras.callbacks.Callback):
    def __init__(self, guard):
        super().__init__()
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        section, self.guard._section = self.guard._section, None
        if section is not None:
            section.__exit__(None, None, None)
