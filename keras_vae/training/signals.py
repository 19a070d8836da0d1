"""Stops asked for by a signal wait until the epoch's files are written.

The command line turns SIGINT and SIGTERM into an exception
(`keras_vae.cli.failures`). Raised while `model.keras` or the backup is being
written, it would leave a half-written file; `EpochEndGuard` marks the
end-of-epoch writes as a section during which the stop waits, and raises it
as soon as they are done.
"""

import contextlib
import threading

import keras

_STATE = threading.local()


def deferring():
    """Whether a stop must wait (inside a deferred section)."""
    return getattr(_STATE, "depth", 0) > 0


def defer(stop):
    """Keep `stop` (an exception) to raise when the deferred section ends."""
    _STATE.pending = stop


def enter():
    """Open a section that a signal's stop does not interrupt."""
    _STATE.depth = getattr(_STATE, "depth", 0) + 1


def leave(raise_pending=True):
    """Close a section; at the outermost, raise a stop asked for inside it
    (or, with `raise_pending=False`, forget it: an error is on its way)."""
    _STATE.depth = max(0, getattr(_STATE, "depth", 0) - 1)
    if _STATE.depth == 0:
        stop, _STATE.pending = getattr(_STATE, "pending", None), None
        if stop is not None and raise_pending:
            raise stop


@contextlib.contextmanager
def deferred():
    """`with deferred():` a section that a signal's stop does not interrupt."""
    enter()
    try:
        yield
    except BaseException:
        leave(raise_pending=False)
        raise
    leave()


class EpochEndGuard:
    """A pair of callbacks around the others' `on_epoch_end`:
    `callbacks = [guard.opening, *others, guard.closing]`; call `close()`
    after `fit` (in a `finally`), which closes a section that an error left
    open."""

    def __init__(self):
        self.open = False
        self.opening = _Opening(self)
        self.closing = _Closing(self)

    def close(self):
        if self.open:
            self.open = False
            leave(raise_pending=False)


class _Opening(keras.callbacks.Callback):
    def __init__(self, guard):
        super().__init__()
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        enter()
        self.guard.open = True


class _Closing(keras.callbacks.Callback):
    def __init__(self, guard):
        super().__init__()
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.open:
            self.guard.open = False
            leave()
